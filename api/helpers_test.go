package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/vault"
)

const adminToken = "test-admin-token"

var testUnsubKey = []byte("unsubscribe key for the api tests")

type env struct {
	t      testing.TB
	events *testkit.Recorder
	dbURL  string
	store  *db.Store
	server *api.Server
	http   *httptest.Server
}

func newEnv(t *testing.T) *env { return newBenchEnv(t) }

func newBenchEnv(t testing.TB) *env { return newEnvConfig(t, nil) }

// newEnvConfig is newEnv with a hook to adjust the server's configuration.
func newEnvConfig(t testing.TB, adjust func(*api.Config)) *env {
	t.Helper()
	opts := append([]testkit.Option{testkit.SystemClock(), testkit.WithoutTenant()}, onCitus(t)...)
	if _, bench := t.(*testing.B); bench {
		opts = append(opts, testkit.WithURL(dbtest.DurableURL(t))) // benchmarks measure durable commits (fsync on)
	}
	k := testkit.NewWorld(t, opts...)
	url, rec, store := k.URL, k.Events, k.Store
	cfg := api.Config{Store: store, AdminToken: adminToken, UnsubscribeKey: testUnsubKey, Verify: verifySMTP}
	if adjust != nil {
		adjust(&cfg)
	}
	srv := api.New(cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, events: rec, dbURL: url, store: store, server: srv, http: hs}
}

// onCitus puts the store of a test named TestCitus… (TestCitusAPI's
// subtests) on a distributed database (docs/scaling.md#testing-on-citus);
// it skips without a Citus build.
func onCitus(t testing.TB) []testkit.Option {
	if !strings.HasPrefix(t.Name(), "TestCitus") {
		return nil
	}
	return []testkit.Option{testkit.WithURL(dbtest.CitusURL(t))}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request; body may be nil, a string/[]byte (sent raw) or any
// value (sent as JSON).
func (e *env) do(method, path, key string, body any, headers ...string) resp {
	e.t.Helper()
	var rdr io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rdr = strings.NewReader(b)
	case []byte:
		rdr = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rdr = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rdr)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	checkContract(e.t, req, res.StatusCode, res.Header, b)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails the test unless the status matches.
func (e *env) must(status int, method, path, key string, body any) map[string]any {
	e.t.Helper()
	r := e.do(method, path, key, body)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.status, status, r.body)
	}
	if len(r.body) == 0 {
		return nil
	}
	return r.json(e.t)
}

// tenant creates a tenant and returns its first API key.
func (e *env) tenant(key string) string {
	e.t.Helper()
	m := e.must(201, "POST", "/v1/tenants", adminToken, map[string]any{"tenant_key": key, "name": key})
	return m["api_key"].(map[string]any)["key"].(string)
}

// assertProblem checks a problem+json answer's status, code and field.
func assertProblem(t *testing.T, r resp, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d\n%s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	m := r.json(t)
	if m["code"] != code {
		t.Fatalf("code %v, want %q\n%s", m["code"], code, r.body)
	}
	if field != "*" && m["field"] != field && !(field == "" && m["field"] == nil) {
		t.Fatalf("field %v, want %q\n%s", m["field"], field, r.body)
	}
	if m["status"] != float64(status) || m["title"] == "" || m["detail"] == "" || m["type"] == "" {
		t.Fatalf("incomplete problem document: %s", r.body)
	}
}

// fixture is a small world of one tenant: two adapters, a pool and a sequence.
type fixture struct {
	key                string
	adapterA, adapterB string
	pool, seq          string
	enrollment         string
}

func (e *env) fixture(tenant string) fixture {
	e.t.Helper()
	f := fixture{key: e.tenant(tenant)}
	for i, from := range []string{"a@" + tenant + ".example.com", "b@" + tenant + ".example.com"} {
		a := e.must(201, "POST", "/v1/adapters", f.key, map[string]any{
			"name": "mailbox", "provider": "smtp", "from_address": from,
			"credentials": map[string]any{"host": "smtp.example.com", "port": 587, "username": "u", "password": "secret-pw-" + tenant},
		})
		if i == 0 {
			f.adapterA = a["id"].(string)
		} else {
			f.adapterB = a["id"].(string)
		}
	}
	p := e.must(201, "POST", "/v1/pools", f.key, map[string]any{"name": "main", "members": []any{map[string]any{"adapter_id": f.adapterA, "weight": 3}}})
	f.pool = p["id"].(string)
	s := e.must(201, "POST", "/v1/sequences", f.key, map[string]any{
		"key": "welcome", "name": "Welcome", "pool_id": f.pool,
		"steps": []any{
			map[string]any{"key": "intro", "subject": "Hi {{first_name|there}}", "body_text": "{Hello|Hi} there"},
			map[string]any{"key": "bump", "delay_seconds": 86400, "body_text": "Bumping this"},
		},
	})
	f.seq = s["id"].(string)
	en := e.must(201, "POST", "/v1/enrollments", f.key, map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": "lead@" + tenant + ".example.com"}})
	f.enrollment = en["id"].(string)
	return f
}

// restart returns a second server, with its own store and connection pool,
// on the same database: another replica, or the same one after a restart.
func (e *env) restart() *env {
	e.t.Helper()
	box, _ := vault.ParseKey(vault.GenerateKey())
	store, err := db.Open(context.Background(), e.dbURL, db.Options{Vault: box, Telemetry: e.events.StrictBus()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(store.Close)
	srv := api.New(api.Config{Store: store, AdminToken: adminToken, UnsubscribeKey: testUnsubKey})
	hs := httptest.NewServer(srv)
	e.t.Cleanup(hs.Close)
	return &env{t: e.t, events: e.events, dbURL: e.dbURL, store: store, server: srv, http: hs}
}

func mustParse(t *testing.T, id string) uuid.UUID {
	t.Helper()
	u, err := uuid.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// feed reads the tenant's event feed (GET /v1/telemetry/events) filtered by
// a name prefix until it lists at least want events or 5 s pass. The feed
// lists an event only once every older writer has ended (its never-skip
// order), so a concurrent transaction (an ANALYZE, another request) can
// hold it back for a moment.
func (e *env) feed(key, prefix string, want int) []map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var out []map[string]any
		for _, d := range e.must(200, "GET", "/v1/telemetry/events?limit=1000&prefix="+url.QueryEscape(prefix), key, nil)["data"].([]any) {
			out = append(out, d.(map[string]any))
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}
