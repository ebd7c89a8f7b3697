package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/localpg"
	"github.com/dripdrop/dripdrop/internal/syncbuf"
	"github.com/dripdrop/dripdrop/vault"
)

// TestDatabaseOutage stops PostgreSQL under a running engine: every API
// route that needs the database answers 503 database_unavailable with
// Retry-After (never 500), the dispatcher, leader and listener each log the
// outage once when it starts and once when it ends, and the engine serves
// again once the database is back. It runs its own throwaway cluster.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a dedicated PostgreSQL cluster")
	}
	dir := filepath.Join(t.TempDir(), "outagepg")
	ctx := context.Background()
	t.Cleanup(func() {
		if err := localpg.Remove(context.Background(), dir); err != nil {
			t.Errorf("removing the outage cluster: %v", err)
		}
	})
	cluster, err := localpg.Ensure(ctx, dir, localpg.Options{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDatabase(ctx, cluster.URL("postgres"), "dripdrop"); err != nil {
		t.Fatal(err)
	}
	url := cluster.URL("dripdrop")
	if _, err := db.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}

	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	box, err := vault.ParseKey(vault.GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	cfg := serveConfig{DatabaseURL: url, ListenAddr: "127.0.0.1:0", AdminToken: "outage-admin-token-0123456789abcdef",
		Workers: 2, Lease: time.Minute, SendTimeout: 5 * time.Second, PollInterval: 50 * time.Millisecond,
		RescueEvery: time.Second, DrainTimeout: 5 * time.Second}
	runCtx, stop := context.WithCancel(ctx)
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(runCtx, cfg, box, log, func(a string) { addrc <- a }) }()
	t.Cleanup(func() { stop(); <-errc })
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}

	call := func(method, path, token, body string) (int, http.Header, map[string]any) {
		t.Helper()
		var rdr io.Reader
		if body != "" {
			rdr = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rdr)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, res.Header, m
	}
	status, _, tenant := call("POST", "/v1/tenants", cfg.AdminToken, `{"tenant_key":"acme","name":"Acme"}`)
	if status != 201 {
		t.Fatalf("create tenant: %d %v", status, tenant)
	}
	key := tenant["api_key"].(map[string]any)["key"].(string)
	if status, _, _ := call("GET", "/v1/adapters", key, ""); status != 200 {
		t.Fatalf("before the outage: %d", status)
	}

	if _, err := localpg.Stop(ctx, dir); err != nil {
		t.Fatal(err)
	}
	// Every route that reads or writes the database.
	bodies := map[string]string{"/v1/tenants": `{"tenant_key":"beta","name":"Beta"}`, "/v1/tenants/{tenant_key}/keys": `{"name":"k"}`}
	checked := 0
	for _, rt := range api.New(api.Config{}).Routes() {
		if !strings.HasPrefix(rt.Path, "/v1/") && rt.Path != "/readyz" {
			continue // operations and documentation routes, no database behind them
		}
		path := strings.NewReplacer("{id}", "0190a4e2-0000-7000-8000-000000000001", "{adapter_id}", "0190a4e2-0000-7000-8000-000000000002",
			"{n}", "1", "{tenant_key}", "acme", "{provider}", "mailgun").Replace(rt.Path)
		if strings.HasPrefix(rt.Path, "/v1/inbound/events/") {
			path += "?tenant=acme" // signature-authenticated: the tenant is named, its material read from the database
		}
		token := key
		if strings.HasPrefix(rt.Path, "/v1/tenants") {
			token = cfg.AdminToken
		}
		body := ""
		if rt.Method != "GET" && rt.Method != "DELETE" {
			body = "{}"
			if b, ok := bodies[rt.Path]; ok {
				body = b
			}
		}
		status, h, doc := call(rt.Method, path, token, body)
		if status != 503 || doc["code"] != "database_unavailable" || h.Get("Retry-After") == "" {
			t.Errorf("%s %s during the outage: %d %v Retry-After %q", rt.Method, rt.Path, status, doc, h.Get("Retry-After"))
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("only %d routes checked", checked)
	}

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	loops := []string{"dispatcher", "leader", "listener"}
	for _, l := range loops {
		waitFor(l+" outage line", func() bool {
			return logs.Count(`msg="database unavailable; retrying quietly until it answers" loop=`+l) > 0
		})
	}

	if _, err := localpg.Ensure(ctx, dir, localpg.Options{Fast: true}); err != nil {
		t.Fatal(err)
	}
	waitFor("the API to answer again", func() bool { s, _, _ := call("GET", "/v1/adapters", key, ""); return s == 200 })
	for _, l := range loops {
		waitFor(l+" recovery line", func() bool { return logs.Count(`msg="database available again" loop=`+l) > 0 })
	}
	for _, l := range loops {
		if n := logs.Count(`msg="database unavailable; retrying quietly until it answers" loop=` + l); n != 1 {
			t.Errorf("%s logged the outage start %d times, want once", l, n)
		}
		if n := logs.Count(`msg="database available again" loop=` + l); n != 1 {
			t.Errorf("%s logged the recovery %d times, want once", l, n)
		}
	}
	if n := logs.Count("level=ERROR"); n != 0 {
		t.Errorf("%d ERROR lines during the outage:\n%s", n, logs.String())
	}
}
