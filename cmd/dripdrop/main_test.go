package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/vault"
)

func TestServeRefusesBadEncryptionKey(t *testing.T) {
	url := dbtest.URL(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, key := range map[string]string{"missing": "", "not base64": "%%%", "16 bytes": "AAAAAAAAAAAAAAAAAAAAAA=="} {
		err := runServe(context.Background(), []string{"-database-url", url, "-encryption-key", key, "-listen", "127.0.0.1:0"}, log)
		if err == nil || !strings.Contains(err.Error(), "DRIPDROP_ENCRYPTION_KEY") {
			t.Errorf("%s key: err = %v, want a refusal naming DRIPDROP_ENCRYPTION_KEY", name, err)
		}
	}
}

// TestDevServesDemo runs `dripdrop dev` against a test database: it seeds
// the demo tenant, prints a working API key, and serves GET /v1/adapters.
// A second run reuses the same key and data.
func TestDevServesDemo(t *testing.T) {
	url := dbtest.URL(t)
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run := func(waitForMail bool) (key string, adapters int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		type ready struct{ base, key string }
		readyc := make(chan ready, 1)
		errc := make(chan error, 1)
		go func() {
			errc <- dev(ctx, []string{"-dir", dir, "-database-url", url, "-listen", "127.0.0.1:0", "-sink", "127.0.0.1:0",
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
		req, _ := http.NewRequest("GET", r.base+"/v1/adapters", nil)
		req.Header.Set("Authorization", "Bearer "+r.key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Data []map[string]any `json:"data"`
		}
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&body) != nil {
			t.Fatalf("GET /v1/adapters: %d", res.StatusCode)
		}
		// The seeded demo sends into the sink: /metrics counts the sends.
		deadline := time.Now().Add(40 * time.Second)
		for sent := 0.0; waitForMail && sent < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("demo mail did not flow: %v sends after 40 s", sent)
			}
			time.Sleep(200 * time.Millisecond)
			sent = metricSum(t, r.base+"/metrics", "dripdrop_dispatch_sent_total")
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatalf("dev shutdown: %v", err)
		}
		return r.key, len(body.Data)
	}
	k1, n1 := run(true)
	if n1 != 2 || !strings.HasPrefix(k1, "dd_demo.") {
		t.Fatalf("first run: key %q, %d adapters; want a demo key and 2 adapters", k1, n1)
	}
	k2, n2 := run(false)
	if k2 != k1 || n2 != 2 {
		t.Fatalf("second run: key %q (first %q), %d adapters; the demo must be seeded once", k2, k1, n2)
	}
}

func metricSum(t *testing.T, url, name string) float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	total := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				total += v
			}
		}
	}
	return total
}
