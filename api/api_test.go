package api_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	auth(t)
}

func auth(t *testing.T) {
	e := newEnv(t)
	key := e.tenant("acme")
	e.must(200, "GET", "/v1/adapters", key, nil)
	for name, k := range map[string]string{
		"missing": "", "malformed": "nope", "unknown secret": "dd_acme.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"other tenant prefix": strings.Replace(key, "dd_acme.", "dd_other.", 1), "admin token": adminToken,
	} {
		t.Run(name, func(t *testing.T) { assertProblem(t, e.do("GET", "/v1/adapters", k, nil), 401, "unauthorized", "") })
	}
	// Tenant keys cannot use admin routes.
	assertProblem(t, e.do("POST", "/v1/tenants", key, map[string]any{"tenant_key": "x"}), 401, "unauthorized", "")
	// Revoked keys stop working at once.
	second := e.must(201, "POST", "/v1/tenants/acme/keys", adminToken, map[string]any{"name": "ci"})
	k2 := second["key"].(string)
	e.must(200, "GET", "/v1/adapters", k2, nil)
	e.must(200, "DELETE", "/v1/tenants/acme/keys/"+second["id"].(string), adminToken, nil)
	assertProblem(t, e.do("GET", "/v1/adapters", k2, nil), 401, "unauthorized", "")
	e.must(200, "GET", "/v1/adapters", key, nil)
	keys := e.must(200, "GET", "/v1/tenants/acme/keys", adminToken, nil)["data"].([]any)
	if len(keys) != 2 {
		t.Fatalf("%d keys, want 2", len(keys))
	}
	for _, k := range keys {
		if _, ok := k.(map[string]any)["key"]; ok {
			t.Fatal("listing returned a key secret")
		}
	}
	assertProblem(t, e.do("POST", "/v1/tenants", adminToken, map[string]any{"tenant_key": "acme"}), 409, "already_exists", "tenant_key")
	assertProblem(t, e.do("POST", "/v1/tenants", adminToken, map[string]any{"tenant_key": "Bad Key"}), 422, "invalid_value", "tenant_key")
}

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.must(200, "GET", "/healthz", "", nil)
	e.must(200, "GET", "/readyz", "", nil)
	if r := e.do("GET", "/metrics", "", nil); r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	key := e.tenant("acme")
	cat := e.must(200, "GET", "/v1/telemetry/catalog", key, nil)["data"].([]any)
	var sent map[string]any
	for _, c := range cat {
		if c.(map[string]any)["name"] == "dripdrop.dispatch.sent" {
			sent = c.(map[string]any)
		}
	}
	if len(cat) < 15 || sent == nil || len(sent["metadata"].([]any)) != 9 || sent["extension"] != false {
		t.Fatalf("catalog: %d events, dispatch.sent %v", len(cat), sent)
	}
	assertProblem(t, e.do("GET", "/v1/nowhere", "", nil), 404, "not_found", "")
	r := e.do("PUT", "/v1/adapters", "", nil)
	assertProblem(t, r, 405, "method_not_allowed", "")
	if !strings.Contains(r.header.Get("Allow"), "GET") {
		t.Fatalf("Allow header %q", r.header.Get("Allow"))
	}
}

func TestAdapterLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	a := e.must(201, "POST", "/v1/adapters", key, map[string]any{
		"name": "Ada", "provider": "smtp", "from_address": "ada@acme.example.com", "from_name": "Ada L.",
		"credentials": map[string]any{"host": "smtp.acme.example.com", "port": 587, "username": "ada", "password": "s3cret-hunter2"},
		"daily_cap":   40, "ramp_floor": 5, "ramp_increment": 3, "min_gap_seconds": 90, "timezone": "Europe/Berlin",
	})
	id := a["id"].(string)
	if a["health_state"] != "ramping" || a["ramp_started_at"] == nil {
		t.Fatalf("an adapter with a ramp starts ramping with ramp_started_at set: %v", a)
	}
	if a["credentials_set"] != true || a["credentials"] != nil {
		t.Fatalf("credentials must be write-only: %v", a)
	}
	got := e.must(200, "GET", "/v1/adapters/"+id, key, nil)
	if bytes.Contains(e.do("GET", "/v1/adapters/"+id, key, nil).body, []byte("hunter2")) {
		t.Fatal("GET returned the password")
	}
	if got["daily_cap"] != float64(40) || got["timezone"] != "Europe/Berlin" {
		t.Fatalf("stored adapter: %v", got)
	}
	plain := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "Plain", "provider": "sink", "from_address": "p@acme.example.com"})
	if plain["health_state"] != "active" {
		t.Fatalf("an adapter without ramp fields starts active: %v", plain)
	}
	// PATCH keeps absent fields, null clears nullable ones.
	p := e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"min_gap_seconds": 120})
	if p["min_gap_seconds"] != float64(120) || p["daily_cap"] != float64(40) || p["name"] != "Ada" {
		t.Fatalf("patch: %v", p)
	}
	p = e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"ramp_increment": nil, "daily_cap": nil})
	if p["daily_cap"] != nil || p["ramp_increment"] != nil {
		t.Fatalf("null must clear: %v", p)
	}
	assertProblem(t, e.do("PATCH", "/v1/adapters/"+id, key, map[string]any{"provider": "sink"}), 422, "invalid_value", "provider")
	// max_in_flight: default null (4, or 1 with a gap), 1..1000, null restores the default.
	if p["max_in_flight"] != nil {
		t.Fatalf("max_in_flight defaults to null: %v", p)
	}
	if p = e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"max_in_flight": 8}); p["max_in_flight"] != float64(8) {
		t.Fatalf("max_in_flight: %v", p)
	}
	assertProblem(t, e.do("PATCH", "/v1/adapters/"+id, key, map[string]any{"max_in_flight": 0}), 422, "out_of_range", "max_in_flight")
	if p = e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"max_in_flight": nil}); p["max_in_flight"] != nil {
		t.Fatalf("null must restore the default: %v", p)
	}
	// The credential is encrypted at rest: pg_dump shows no plaintext.
	dump := pgDump(t, e.dbURL)
	if bytes.Contains(dump, []byte("hunter2")) || bytes.Contains(dump, []byte("s3cret")) {
		t.Fatal("pg_dump contains the plaintext credential")
	}
	if !bytes.Contains(dump, []byte("ada@acme.example.com")) {
		t.Fatal("pg_dump does not contain the adapter row at all; the check above proves nothing")
	}
	creds, err := e.store.AdapterCredentials(t.Context(), "acme", uuid.MustParse(id))
	if err != nil || creds.Password != "s3cret-hunter2" || creds.Host != "smtp.acme.example.com" {
		t.Fatalf("decrypted credentials: %+v, %v", creds, err)
	}
	e.must(204, "DELETE", "/v1/adapters/"+id, key, nil)
	assertProblem(t, e.do("GET", "/v1/adapters/"+id, key, nil), 404, "not_found", "")
	assertProblem(t, e.do("GET", "/v1/adapters/not-a-uuid", key, nil), 404, "not_found", "")
}

func pgDump(t *testing.T, dsn string) []byte {
	t.Helper()
	bin := "pg_dump"
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump"); len(m) > 0 {
		bin = m[len(m)-1]
	}
	out, err := exec.Command(bin, "--data-only", dsn).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	return out
}

func TestPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	for i := 0; i < 5; i++ {
		e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": fmt.Sprint("a", i), "provider": "sink", "from_address": fmt.Sprintf("a%d@acme.example.com", i)})
	}
	var names []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		m := e.must(200, "GET", "/v1/adapters?limit=2"+cursor, key, nil)
		for _, a := range m["data"].([]any) {
			names = append(names, a.(map[string]any)["name"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = "&cursor=" + next
	}
	if strings.Join(names, ",") != "a0,a1,a2,a3,a4" {
		t.Fatalf("pages returned %v", names)
	}
	assertProblem(t, e.do("GET", "/v1/adapters?limit=0", key, nil), 422, "out_of_range", "limit")
	assertProblem(t, e.do("GET", "/v1/adapters?cursor=zzz", key, nil), 400, "invalid_cursor", "cursor")
}

func TestPoolsAndMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	pool := e.must(200, "GET", "/v1/pools/"+f.pool, f.key, nil)
	if pool["on_pin_unavailable"] != "pause" || len(pool["members"].([]any)) != 1 {
		t.Fatalf("pool: %v", pool)
	}
	m := e.must(201, "POST", "/v1/pools/"+f.pool+"/members", f.key, map[string]any{"adapter_id": f.adapterB, "class": "esp_api"})
	if m["weight"] != float64(1) || m["active"] != true || m["class"] != "esp_api" {
		t.Fatalf("member defaults: %v", m)
	}
	assertProblem(t, e.do("POST", "/v1/pools/"+f.pool+"/members", f.key, map[string]any{"adapter_id": f.adapterB}), 409, "already_exists", "adapter_id")
	m = e.must(200, "PATCH", "/v1/pools/"+f.pool+"/members/"+f.adapterB, f.key, map[string]any{"weight": 7, "active": false})
	if m["weight"] != float64(7) || m["active"] != false {
		t.Fatalf("member patch: %v", m)
	}
	assertProblem(t, e.do("PATCH", "/v1/pools/"+f.pool+"/members/"+f.adapterB, f.key, map[string]any{"weight": 0}), 422, "out_of_range", "weight")
	e.must(204, "DELETE", "/v1/pools/"+f.pool+"/members/"+f.adapterB, f.key, nil)
	assertProblem(t, e.do("DELETE", "/v1/pools/"+f.pool+"/members/"+f.adapterB, f.key, nil), 404, "not_found", "")
	p := e.must(200, "PATCH", "/v1/pools/"+f.pool, f.key, map[string]any{"on_pin_unavailable": "reassign"})
	if p["on_pin_unavailable"] != "reassign" || p["name"] != "main" {
		t.Fatalf("pool patch: %v", p)
	}
	e.must(201, "POST", "/v1/pools", f.key, map[string]any{"name": "second"})
	assertProblem(t, e.do("POST", "/v1/pools", f.key, map[string]any{"name": "second"}), 409, "already_exists", "name")
	assertProblem(t, e.do("PATCH", "/v1/pools/"+f.pool, f.key, map[string]any{"name": "second"}), 409, "already_exists", "name")
}

func TestDeleteInUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	// A live enrollment pinned to adapter A through the fixture's sequence.
	dbtest.Exec(t, e.dbURL, `INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, email, adapter_id)
		SELECT 'acme', gen_random_uuid(), s.id, v.id, 'x@y.example.com', $1::uuid
		FROM sequences s JOIN sequence_versions v ON v.sequence_id = s.id WHERE s.id = $2::uuid`, f.adapterA, f.seq)
	assertProblem(t, e.do("DELETE", "/v1/adapters/"+f.adapterA, f.key, nil), 409, "in_use", "")
	assertProblem(t, e.do("DELETE", "/v1/pools/"+f.pool, f.key, nil), 409, "in_use", "")
	e.must(200, "GET", "/v1/adapters/"+f.adapterA, f.key, nil)
	e.must(200, "GET", "/v1/pools/"+f.pool, f.key, nil)
	e.must(204, "DELETE", "/v1/pools/"+f.pool+"?force=true", f.key, nil)
	assertProblem(t, e.do("GET", "/v1/pools/"+f.pool, f.key, nil), 404, "not_found", "")
}

func TestSequenceVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	seq := e.must(200, "GET", "/v1/sequences/"+f.seq, f.key, nil)
	v1 := seq["versions"].([]any)[0].(map[string]any)
	if v1["state"] != "active" || v1["version"] != float64(1) || len(v1["steps"].([]any)) != 2 {
		t.Fatalf("first version: %v", v1)
	}
	w := v1["send_window"].(map[string]any)
	if w["start"] != "08:00" || w["end"] != "18:00" || fmt.Sprint(w["days"]) != "[1 2 3 4 5]" || w["timezone"] != "UTC" {
		t.Fatalf("default window: %v", w)
	}
	if v1["stop_on_reply"] != true {
		t.Fatal("stop_on_reply defaults to true")
	}
	// Active versions are immutable.
	assertProblem(t, e.do("PATCH", "/v1/sequences/"+f.seq+"/versions/1", f.key, map[string]any{"stop_on_reply": false}), 409, "version_immutable", "")
	seq = e.must(201, "POST", "/v1/sequences/"+f.seq+"/versions", f.key, map[string]any{
		"pool_id": f.pool, "send_window": map[string]any{"days": []int{1, 3}, "start": "22:00", "end": "06:00", "timezone": "America/New_York"},
		"steps": []any{map[string]any{"subject": "New", "body_text": "Body {{company}}"}},
	})
	v2 := seq["versions"].([]any)[1].(map[string]any)
	if v2["state"] != "draft" || v2["version"] != float64(2) {
		t.Fatalf("second version: %v", v2)
	}
	seq = e.must(200, "PATCH", "/v1/sequences/"+f.seq+"/versions/2", f.key, map[string]any{"steps": []any{
		map[string]any{"key": "one", "subject": "S1", "body_text": "B1"}, map[string]any{"key": "two", "body_text": "B2", "delay_seconds": 60},
	}})
	v2 = seq["versions"].([]any)[1].(map[string]any)
	if len(v2["steps"].([]any)) != 2 || v2["send_window"].(map[string]any)["start"] != "22:00" {
		t.Fatalf("draft patch: %v", v2)
	}
	seq = e.must(200, "POST", "/v1/sequences/"+f.seq+"/versions/2/activate", f.key, nil)
	vs := seq["versions"].([]any)
	if vs[0].(map[string]any)["state"] != "archived" || vs[1].(map[string]any)["state"] != "active" {
		t.Fatalf("activation: %v", vs)
	}
	b := e.must(200, "PUT", "/v1/sequences/"+f.seq+"/versions/2/budgets/"+f.adapterA, f.key, map[string]any{"max_share_pct": 50})
	if b["max_share_pct"] != float64(50) {
		t.Fatalf("budget: %v", b)
	}
	b = e.must(200, "PUT", "/v1/sequences/"+f.seq+"/versions/2/budgets/"+f.adapterA, f.key, map[string]any{"max_share_pct": 40})
	if b["max_share_pct"] != float64(40) {
		t.Fatalf("budget upsert: %v", b)
	}
	for _, pct := range []int{0, 101} {
		assertProblem(t, e.do("PUT", "/v1/sequences/"+f.seq+"/versions/2/budgets/"+f.adapterA, f.key, map[string]any{"max_share_pct": pct}), 422, "out_of_range", "max_share_pct")
	}
	assertProblem(t, e.do("POST", "/v1/sequences/"+f.seq+"/versions/9/activate", f.key, nil), 404, "not_found", "")
	assertProblem(t, e.do("POST", "/v1/sequences", f.key, map[string]any{"key": "welcome", "name": "Dup", "pool_id": f.pool,
		"steps": []any{map[string]any{"subject": "s", "body_text": "b"}}}), 409, "already_exists", "key")
}

func TestSuppressions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	s := e.must(201, "POST", "/v1/suppressions", key, map[string]any{"email": "Ada@Example.COM", "reason": "unsubscribe", "source": "footer"})
	if s["kind"] != "email" || s["value"] != "ada@example.com" || s["reason"] != "unsubscribe" {
		t.Fatalf("suppression: %v", s)
	}
	again := e.must(201, "POST", "/v1/suppressions", key, map[string]any{"email": "ada@example.com"})
	if again["id"] != s["id"] {
		t.Fatal("re-adding a suppression must return the existing entry")
	}
	e.must(201, "POST", "/v1/suppressions", key, map[string]any{"domain": "Competitor.example"})
	for email, want := range map[string]bool{"ada@example.com": true, "ADA@example.com": true, "bob@competitor.example": true, "bob@example.com": false} {
		got, err := e.store.IsSuppressed(t.Context(), "acme", email)
		if err != nil || got != want {
			t.Errorf("IsSuppressed(%s) = %v, %v; want %v", email, got, err, want)
		}
	}
	l := e.must(200, "GET", "/v1/suppressions?email=ada@example.com", key, nil)["data"].([]any)
	if len(l) != 1 {
		t.Fatalf("filtered list: %v", l)
	}
	e.must(204, "DELETE", "/v1/suppressions?email=ada@example.com", key, nil)
	assertProblem(t, e.do("DELETE", "/v1/suppressions?email=ada@example.com", key, nil), 404, "not_found", "")
	assertProblem(t, e.do("DELETE", "/v1/suppressions", key, nil), 422, "required", "email")
	assertProblem(t, e.do("POST", "/v1/suppressions", key, map[string]any{"email": "x@y.example.com", "domain": "y.example.com"}), 422, "invalid_value", "domain")
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	body := map[string]any{"name": "Once", "provider": "sink", "from_address": "once@acme.example.com"}
	first := e.do("POST", "/v1/adapters", key, body, "Idempotency-Key", "k-1")
	if first.status != 201 {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	var wg sync.WaitGroup
	replays := make([]resp, 8)
	for i := range replays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replays[i] = e.do("POST", "/v1/adapters", key, body, "Idempotency-Key", "k-1")
		}()
	}
	wg.Wait()
	for _, r := range replays {
		if r.status != 201 || !bytes.Equal(r.body, first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %q %s", r.status, r.header.Get("Idempotent-Replayed"), r.body)
		}
	}
	list := e.must(200, "GET", "/v1/adapters", key, nil)["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("%d adapters after 9 identical requests, want 1", len(list))
	}
	body["name"] = "Different"
	assertProblem(t, e.do("POST", "/v1/adapters", key, body, "Idempotency-Key", "k-1"), 422, "idempotency_key_reused", "Idempotency-Key")
	// Keys are per tenant.
	other := e.tenant("other")
	if r := e.do("POST", "/v1/adapters", other, body, "Idempotency-Key", "k-1"); r.status != 201 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("other tenant's key collided: %d %s", r.status, r.body)
	}
}

func TestInvalidSpintaxIsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	before := dbtest.RowCounts(t, e.dbURL)
	body := func(step map[string]any) map[string]any {
		return map[string]any{"pool_id": f.pool, "steps": []any{map[string]any{"subject": "ok", "body_text": "ok"}, step}}
	}
	cases := []struct {
		step   map[string]any
		field  string
		reason string
		offset float64
	}{
		{map[string]any{"body_text": "{Hi|Hello"}, "steps[1].body_text", "unbalanced_braces", 0},
		{map[string]any{"body_text": "ok", "subject": "Re {{first name}}"}, "steps[1].subject", "invalid_variable", 3},
		{map[string]any{"body_text": strings.Repeat("{a|", 33) + strings.Repeat("}", 33)}, "steps[1].body_text", "max_depth", 96},
		{map[string]any{"body_text": strings.Repeat("x", 64<<10+1)}, "steps[1].body_text", "too_large", 65536},
		{map[string]any{"body_text": "ok", "body_html": "<p>{{x</p>", "spintax": false}, "steps[1].body_html", "unterminated_variable", 3},
	}
	for _, c := range cases {
		r := e.do("POST", "/v1/sequences/"+f.seq+"/versions", f.key, body(c.step))
		assertProblem(t, r, 422, "invalid_spintax", c.field)
		m := r.json(t)
		if m["reason"] != c.reason || m["offset"] != c.offset {
			t.Errorf("%s: reason %v offset %v, want %s at %v", c.field, m["reason"], m["offset"], c.reason, c.offset)
		}
	}
	if after := dbtest.RowCounts(t, e.dbURL); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("a rejected template stored rows")
	}
	// With spintax off, braces are plain text (CSS, JSON snippets).
	e.must(201, "POST", "/v1/sequences/"+f.seq+"/versions", f.key, body(map[string]any{"body_text": "a { b | c }", "body_html": "<style>p{color:red}</style>", "spintax": false}))
}

func TestSequenceVersionListUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	// Default: one_click, returned with the version.
	seq := e.must(200, "GET", "/v1/sequences/"+f.seq, f.key, nil)
	if got := seq["versions"].([]any)[0].(map[string]any)["list_unsubscribe"]; got != "one_click" {
		t.Fatalf("default list_unsubscribe %v, want one_click", got)
	}
	steps := []any{map[string]any{"subject": "s", "body_text": "b"}}
	// Unknown values are refused with the field named, on create sequence,
	// create version and draft update alike; nothing is created.
	for _, bad := range []string{"one-click", "ON", "", "none"} {
		body := map[string]any{"key": "other", "name": "Other", "pool_id": f.pool, "steps": steps, "list_unsubscribe": bad}
		assertProblem(t, e.do("POST", "/v1/sequences", f.key, body), 422, "invalid_value", "list_unsubscribe")
		assertProblem(t, e.do("POST", "/v1/sequences/"+f.seq+"/versions", f.key, map[string]any{"pool_id": f.pool, "steps": steps, "list_unsubscribe": bad}),
			422, "invalid_value", "list_unsubscribe")
	}
	assertProblem(t, e.do("POST", "/v1/sequences", f.key, map[string]any{"key": "other", "name": "Other", "pool_id": f.pool, "steps": steps, "list_unsubscribe": true}),
		422, "invalid_type", "*")
	if l := e.must(200, "GET", "/v1/sequences", f.key, nil)["data"].([]any); len(l) != 1 {
		t.Fatalf("a refused sequence was created: %d sequences", len(l))
	}
	// null is absent: the default.
	s := e.must(201, "POST", "/v1/sequences", f.key, map[string]any{"key": "nulled", "name": "Nulled", "pool_id": f.pool, "steps": steps, "list_unsubscribe": nil})
	if got := s["versions"].([]any)[0].(map[string]any)["list_unsubscribe"]; got != "one_click" {
		t.Fatalf("list_unsubscribe null: %v, want the default one_click", got)
	}
	for _, mode := range []string{"mailto", "off", "one_click"} {
		seq = e.must(201, "POST", "/v1/sequences/"+f.seq+"/versions", f.key, map[string]any{"pool_id": f.pool, "steps": steps, "list_unsubscribe": mode})
		vs := seq["versions"].([]any)
		if got := vs[len(vs)-1].(map[string]any)["list_unsubscribe"]; got != mode {
			t.Fatalf("created version list_unsubscribe %v, want %s", got, mode)
		}
	}
	// A draft's setting can change; an unknown value leaves it as it was.
	seq = e.must(200, "PATCH", "/v1/sequences/"+f.seq+"/versions/2", f.key, map[string]any{"list_unsubscribe": "off"})
	if got := seq["versions"].([]any)[1].(map[string]any)["list_unsubscribe"]; got != "off" {
		t.Fatalf("patched draft list_unsubscribe %v, want off", got)
	}
	assertProblem(t, e.do("PATCH", "/v1/sequences/"+f.seq+"/versions/2", f.key, map[string]any{"list_unsubscribe": "never"}), 422, "invalid_value", "list_unsubscribe")
	seq = e.must(200, "GET", "/v1/sequences/"+f.seq, f.key, nil)
	if got := seq["versions"].([]any)[1].(map[string]any)["list_unsubscribe"]; got != "off" {
		t.Fatalf("after a refused patch list_unsubscribe %v, want off", got)
	}
}
