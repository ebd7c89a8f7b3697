package api_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestEnrollmentSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	other := e.fixture("other") // same e-mail domain pattern, another tenant
	for _, m := range []string{"b@acme.example.com", "c@acme.example.com", "D@Acme.example.com"} {
		e.must(201, "POST", "/v1/enrollments", f.key, map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": m}})
	}
	d := e.must(200, "GET", "/v1/enrollments?email="+url.QueryEscape("d@acme.example.com"), f.key, nil)["data"].([]any)
	if len(d) != 1 || d[0].(map[string]any)["contact"].(map[string]any)["email"] != "D@acme.example.com" || d[0].(map[string]any)["sequence_key"] != "welcome" {
		t.Fatalf("search by email (case-insensitive): %v", d)
	}
	cancelled := d[0].(map[string]any)["id"].(string)
	e.must(200, "POST", "/v1/enrollments/"+cancelled+"/cancel", f.key, nil)
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/pause", f.key, nil)

	count := func(q string) int {
		t.Helper()
		n, cursor := 0, ""
		for {
			path := "/v1/enrollments?limit=2&" + q
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			m := e.must(200, "GET", path, f.key, nil)
			n += len(m["data"].([]any))
			c, ok := m["next_cursor"].(string)
			if !ok {
				return n
			}
			cursor = c
		}
	}
	for q, want := range map[string]int{
		"":                                   4,
		"sequence_key=welcome":               4,
		"sequence_key=nope":                  0,
		"state=active":                       2,
		"state=paused":                       1,
		"state=paused&pause_reason=operator": 1,
		"pause_reason=step_failed":           0,
		"state=cancelled":                    1,
		"stop_reason=replied":                0,
		"adapter_id=" + f.adapterA:           4,
		"adapter_id=" + other.adapterA:       0,
	} {
		if got := count(q); got != want {
			t.Errorf("GET /v1/enrollments?%s: %d results, want %d", q, got, want)
		}
	}
	if got := count("email=lead@other.example.com"); got != 0 {
		t.Fatalf("another tenant's enrollment found: %d", got)
	}
	assertProblem(t, e.do("GET", "/v1/enrollments?state=sleeping", f.key, nil), 422, "invalid_value", "state")
	assertProblem(t, e.do("GET", "/v1/enrollments?adapter_id=x", f.key, nil), 422, "invalid_value", "adapter_id")
}

func TestEnrollmentPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	path := "/v1/enrollments/" + f.enrollment
	e.must(200, "PATCH", path, f.key, map[string]any{"first_name": "Ada", "vars": map[string]any{"plan": "pro", "seats": 5}})
	m := e.must(200, "PATCH", path, f.key, map[string]any{"company": "Analytical", "vars": map[string]any{"plan": nil}})
	c := m["contact"].(map[string]any)
	if c["first_name"] != "Ada" || c["company"] != "Analytical" || c["email"] != "lead@acme.example.com" {
		t.Fatalf("contact after two patches: %v", c)
	}
	if v := c["vars"].(map[string]any); len(v) != 1 || v["seats"] != "5" {
		t.Fatalf("vars merged key by key: %v", v)
	}
	assertProblem(t, e.do("PATCH", path, f.key, map[string]any{"timezone": "Mars/Olympus"}), 422, "invalid_timezone", "timezone")
	assertProblem(t, e.do("PATCH", path, f.key, map[string]any{"nickname": "x"}), 422, "unknown_field", "nickname")
	if got := e.must(200, "GET", path, f.key, nil)["contact"].(map[string]any); got["timezone"] != nil {
		t.Fatalf("a rejected patch changed the contact: %v", got)
	}
	e.must(200, "POST", path+"/cancel", f.key, nil)
	assertProblem(t, e.do("PATCH", path, f.key, map[string]any{"first_name": "Late"}), 409, "invalid_state", "")
	other := e.tenant("other")
	assertProblem(t, e.do("PATCH", path, other, map[string]any{"first_name": "X"}), 404, "not_found", "")
}

// TestEnrollmentShowsItsBlock: a contact held back by an adapter-level cap
// says so on GET /v1/enrollments/{id} (policy, adapter, until), and its due
// execution is never shown with defer_reason null.
func TestEnrollmentShowsItsBlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET daily_cap = 1 WHERE id = $1::uuid`, f.adapterA)
	dbtest.Exec(t, e.dbURL, `INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
		SELECT 'acme', $1::uuid, (now() AT TIME ZONE 'UTC')::date, v.id, 1 FROM sequence_versions v WHERE v.sequence_id = $2::uuid`, f.adapterA, f.seq)
	m := e.must(200, "GET", "/v1/enrollments/"+f.enrollment, f.key, nil)
	b, ok := m["block"].(map[string]any)
	if !ok {
		t.Fatalf("no block on a capped contact: %v", m)
	}
	// The cap binds, unless the default Monday–Friday window is closed now.
	if p := b["policy"]; (p != "ramp_cap" && p != "send_window") || b["adapter_id"] != f.adapterA {
		t.Fatalf("block %v", b)
	}
	until, err := time.Parse(time.RFC3339Nano, b["until"].(string))
	if err != nil || !until.After(time.Now()) {
		t.Fatalf("block until %v", b["until"])
	}
	x := m["executions"].([]any)[0].(map[string]any)
	if x["defer_reason"] != b["policy"] || x["defer_until"] == nil {
		t.Fatalf("execution held by %v shows defer_reason %v", b["policy"], x["defer_reason"])
	}
	// Without the cap nothing holds it (inside the window).
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET daily_cap = NULL WHERE id = $1::uuid`, f.adapterA)
	m = e.must(200, "GET", "/v1/enrollments/"+f.enrollment, f.key, nil)
	if b, ok := m["block"].(map[string]any); ok && b["policy"] != "send_window" {
		t.Fatalf("uncapped contact still blocked: %v", b)
	}
}

func TestSequenceStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	for _, m := range []string{"b@acme.example.com", "c@acme.example.com"} {
		e.must(201, "POST", "/v1/enrollments", f.key, map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": m}})
	}
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/cancel", f.key, nil)
	// One send and a reply, recorded as the dispatcher and ingest would.
	dbtest.Exec(t, e.dbURL, `UPDATE step_executions x SET state = 'sent', sent_at = now(), out_message_id = '<s1@acme>'
		FROM enrollments en WHERE en.id = x.enrollment_id AND en.email = 'b@acme.example.com'`)
	dbtest.Exec(t, e.dbURL, `INSERT INTO message_events (tenant_key, id, type, adapter_id, enrollment_id, sequence_version_id, occurred_at)
		SELECT 'acme', gen_random_uuid(), t, $1::uuid, NULL, v.id, now()
		FROM sequence_versions v, unnest(ARRAY['sent','replied','ooo','ooo','bounced','complained','unsubscribed']) t
		WHERE v.sequence_id = $2::uuid`, f.adapterA, f.seq)
	other := e.fixture("other")
	st := e.must(200, "GET", "/v1/sequences/"+f.seq+"/stats", f.key, nil)
	vs := st["versions"].([]any)
	if len(vs) != 1 {
		t.Fatalf("versions: %v", st)
	}
	v := vs[0].(map[string]any)
	byState := v["by_state"].(map[string]any)
	if v["enrollments"] != float64(3) || byState["active"] != float64(2) || byState["cancelled"] != float64(1) || byState["stopped"] != float64(0) {
		t.Fatalf("enrollments by state: %v", v)
	}
	steps := v["steps"].([]any)
	s1, s2 := steps[0].(map[string]any), steps[1].(map[string]any)
	if s1["key"] != "intro" || s1["sent"] != float64(1) || s1["scheduled"] != float64(1) || s1["failed"] != float64(0) || s2["scheduled"] != float64(0) {
		t.Fatalf("steps: %v", steps)
	}
	for k, want := range map[string]float64{"replies": 1, "ooo": 2, "bounces": 1, "complaints": 1, "unsubscribes": 1} {
		if v[k] != want {
			t.Errorf("%s = %v, want %v", k, v[k], want)
		}
	}
	assertProblem(t, e.do("GET", "/v1/sequences/"+other.seq+"/stats", f.key, nil), 404, "not_found", "")
}
