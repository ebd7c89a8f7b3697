package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/forecast"
	"github.com/dripdrop/dripdrop/vault"
)

// TestForecastCommand: `dripdrop forecast` against `dripdrop dev`, through
// the API with the demo key and straight from the database, as a table
// and as JSON; a refused request names the field.
func TestForecastCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ready struct{ base, key string }
	readyc := make(chan ready, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- dev(ctx, []string{"-dir", t.TempDir(), "-database-url", url, "-listen", "127.0.0.1:0", "-sink", "127.0.0.1:0",
			"-encryption-key", vault.GenerateKey()}, log, func(b, k string) { readyc <- ready{b, k} })
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-errc:
		t.Fatalf("dev exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not serve within 60 s")
	}
	defer func() { cancel(); <-errc }()

	var table bytes.Buffer
	if err := runForecast(ctx, []string{"-api-url", r.base, "-api-key", r.key, "-days", "3", "-enroll", "demo-welcome:500"}, &table, log); err != nil {
		t.Fatal(err)
	}
	if out := table.String(); !strings.Contains(out, "DAY ") || !strings.Contains(out, "demo-welcome (hypothetical)  500") {
		t.Fatalf("table:\n%s", out)
	}
	var js bytes.Buffer
	if err := runForecast(ctx, []string{"-database-url", url, "-tenant", "demo", "-days", "3", "-json", "-enroll", "demo-welcome:500"}, &js, log); err != nil {
		t.Fatal(err)
	}
	var res forecast.Result
	if err := json.Unmarshal(js.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	sends := 0
	for _, d := range res.Days {
		sends += d.Sends
	}
	// 500 contacts × 3 steps; two demo mailboxes at 200 a day each.
	if len(res.Sequences) != 1 || res.Sequences[0].Hypothetical == nil || res.Sequences[0].Hypothetical.Contacts != 500 || sends < 1000 {
		t.Fatalf("JSON forecast: %d sends, %+v", sends, res.Sequences)
	}
	err := runForecast(ctx, []string{"-api-url", r.base, "-api-key", r.key, "-enroll", "nope:1"}, io.Discard, log)
	if err == nil || !strings.Contains(err.Error(), "changes.enroll[0].sequence_key") {
		t.Fatalf("unknown sequence: %v", err)
	}
}
