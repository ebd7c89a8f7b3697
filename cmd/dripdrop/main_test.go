package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/syncbuf"
	"github.com/dripdrop/dripdrop/vault"
)

func TestServeRefusesBadEncryptionKey(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// TestServeLeavesNothingRunning: serve returns only once every goroutine it
// started has ended, on a failed start as on shutdown, so nothing logs or
// touches the store after it returns. (A dispatcher or leader still logging
// into the caller's buffer after a failed start was a data race in CI.) A
// start that fails on a busy address or a bad certificate fails before any
// engine goroutine runs.
func TestServeLeavesNothingRunning(t *testing.T) {
	// Not parallel: it counts the engine goroutines of the whole process, which other tests serving at once would add to.
	url := dbtest.URL(t)
	box, err := vault.ParseKey(vault.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	missing := filepath.Join(t.TempDir(), "missing.pem")
	base := serveConfig{DatabaseURL: url, ListenAddr: "127.0.0.1:0", InboundSMTPAddr: "127.0.0.1:0", Workers: 2, Lease: time.Minute,
		SendTimeout: 5 * time.Second, PollInterval: 50 * time.Millisecond, RescueEvery: time.Second, HealthEvery: time.Second, DrainTimeout: 10 * time.Second}
	for _, c := range []struct {
		name    string
		cfg     func(*serveConfig)
		wantErr string
	}{
		{"busy API address", func(c *serveConfig) { c.ListenAddr = busy.Addr().String() }, "address already in use"},
		{"bad inbound certificate", func(c *serveConfig) { c.InboundSMTPCert, c.InboundSMTPKey = missing, missing }, "inbound SMTP certificate"},
		{"shutdown", func(*serveConfig) {}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(engineGoroutines())
			cfg := base
			c.cfg(&cfg)
			logs := &syncbuf.Buffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				errc <- serve(ctx, cfg, box, slog.New(slog.NewTextHandler(logs, nil)), func(string) { close(ready) })
			}()
			if c.wantErr == "" {
				select {
				case <-ready:
				case err := <-errc:
					t.Fatalf("serve: %v", err)
				}
				if n := len(engineGoroutines()); n <= before {
					t.Fatalf("a serving engine shows %d engine goroutines, %d before: the check would see nothing", n, before)
				}
				cancel()
			}
			var err error
			select {
			case err = <-errc:
			case <-time.After(60 * time.Second):
				t.Fatal("serve did not return within 60 s")
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("serve: %v; want %q", err, c.wantErr)
			}
			if left := engineGoroutines(); len(left) > before {
				t.Fatalf("serve returned with %d of its goroutines still running:\n%s", len(left)-before, strings.Join(left, "\n\n"))
			}
			if c.wantErr != "" && strings.Contains(logs.String(), "leadership changed") {
				t.Errorf("a failed start ran the engine:\n%s", logs.String())
			}
		})
	}
}

// engineGoroutines returns the stacks of the goroutines running one of the
// engine's loops or listeners.
func engineGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, frame := range []string{"dispatch.(*Dispatcher).Run", "dispatch.(*Leader).Run", "webhook.(*Worker).Run",
			"db.(*Store).listen", "smtpd.(*Server).Serve", "robfig/cron"} {
			if strings.Contains(g, frame) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
