package api_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

// pool creates n sink adapters in one pool with the given weights and a
// sequence on it; it returns the adapter ids in member order.
func (e *env) weightedPool(key, policy string, weights ...int) (adapters []string, pool string) {
	e.t.Helper()
	var members []any
	for i, w := range weights {
		a := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": fmt.Sprint("m", i), "provider": "sink", "from_address": fmt.Sprintf("m%d@acme.example.com", i)})
		adapters = append(adapters, a["id"].(string))
		members = append(members, map[string]any{"adapter_id": a["id"], "weight": w})
	}
	p := e.must(201, "POST", "/v1/pools", key, map[string]any{"name": "pool-" + policy, "on_pin_unavailable": policy, "members": members})
	pool = p["id"].(string)
	e.must(201, "POST", "/v1/sequences", key, map[string]any{
		"key": "seq-" + policy, "name": "S", "pool_id": pool,
		"steps": []any{map[string]any{"key": "one", "subject": "Hi", "body_text": "B", "delay_seconds": 3600}, map[string]any{"key": "two", "body_text": "B2", "delay_seconds": 60}},
	})
	return adapters, pool
}

func (e *env) enroll(key, seq, email string) (int, map[string]any) {
	e.t.Helper()
	r := e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": seq, "contact": map[string]any{"email": email, "first_name": "Ada"}})
	return r.status, r.json(e.t)
}

func TestEnrollPinsAndSchedules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 1)
	before := time.Now()
	status, en := e.enroll(key, "seq-pause", "Ada@Example.com")
	if status != 201 {
		t.Fatalf("enroll: %d %v", status, en)
	}
	if en["adapter_id"] != adapters[0] || en["state"] != "active" || en["thread"] != float64(1) {
		t.Fatalf("enrollment: %v", en)
	}
	xs := en["executions"].([]any)
	if len(xs) != 1 {
		t.Fatalf("executions: %v", xs)
	}
	x := xs[0].(map[string]any)
	at, _ := time.Parse(time.RFC3339Nano, x["scheduled_for"].(string))
	if x["state"] != "scheduled" || x["step_key"] != "one" || at.Before(before.Add(3599*time.Second)) || at.After(time.Now().Add(3601*time.Second)) {
		t.Fatalf("first execution: %v (want step one at now+1h)", x)
	}
	ev := e.events.Named("dripdrop.dispatch.adapter_pinned")
	if len(ev) != 1 || ev[0]["enrollment_id"] != en["id"] || ev[0]["adapter_id"] != adapters[0] || ev[0]["tenant_key"] != "acme" || ev[0]["sequence_version_id"] == nil || len(ev[0]) != 4 {
		t.Fatalf("adapter_pinned events: %v", ev)
	}
	// The same contact again: 200 with the same enrollment, nothing new.
	counts := dbtest.RowCounts(t, e.dbURL)
	status, again := e.enroll(key, "seq-pause", "ada@example.COM")
	if status != 200 || again["id"] != en["id"] {
		t.Fatalf("re-enroll: %d %v", status, again)
	}
	if after := dbtest.RowCounts(t, e.dbURL); after["enrollments"] != counts["enrollments"] || after["step_executions"] != counts["step_executions"] {
		t.Fatal("re-enrolling stored rows")
	}
	if len(e.events.Named("dripdrop.dispatch.adapter_pinned")) != 1 {
		t.Fatal("re-enrolling emitted adapter_pinned again")
	}
	got := e.must(200, "GET", "/v1/enrollments/"+en["id"].(string), key, nil)
	if got["contact"].(map[string]any)["email"] != "Ada@example.com" || got["sequence_key"] != "seq-pause" {
		t.Fatalf("GET enrollment: %v", got)
	}
}

func TestEnrollRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	e.weightedPool(key, "pause", 1)
	e.must(201, "POST", "/v1/suppressions", key, map[string]any{"email": "blocked@example.com"})
	e.must(201, "POST", "/v1/suppressions", key, map[string]any{"domain": "blocked.example"})
	before := dbtest.RowCounts(t, e.dbURL)
	for _, email := range []string{"blocked@example.com", "anyone@blocked.example"} {
		assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": email}}), 422, "suppressed", "contact.email")
	}
	assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "nope", "contact": map[string]any{"email": "a@b.example"}}), 404, "not_found", "sequence_key")
	assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": "not-an-email"}}), 422, "invalid_email", "contact.email")
	assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": "a@b.example", "timezone": "Mars/Olympus"}}), 422, "invalid_timezone", "contact.timezone")
	assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": "a@b.example", "vars": map[string]any{"bad key": "x"}}}), 422, "invalid_value", "contact.vars.bad key")
	assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": "a@b.example", "vars": map[string]any{"list": []int{1}}}}), 422, "invalid_type", "contact.vars.list")
	if after := dbtest.RowCounts(t, e.dbURL); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("rejected enrolls stored rows:\n%v\n%v", before, after)
	}
}

func TestWDRRIsPersistedAcrossRestarts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 3, 1)
	name := map[string]string{adapters[0]: "a", adapters[1]: "b"}
	var got strings.Builder
	for i := 0; i < 4; i++ {
		_, en := e.enroll(key, "seq-pause", fmt.Sprintf("c%d@example.com", i))
		got.WriteString(name[en["adapter_id"].(string)])
	}
	// A "restart": a second server process on the same database continues
	// the same sequence.
	e2 := e.restart()
	for i := 4; i < 8; i++ {
		_, en := e2.enroll(key, "seq-pause", fmt.Sprintf("c%d@example.com", i))
		got.WriteString(name[en["adapter_id"].(string)])
	}
	if got.String() != "aabaaaba" {
		t.Fatalf("3:1 picks = %s, want aabaaaba", got.String())
	}
}

func TestWDRRUnderConcurrentEnrolls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 5, 3, 2)
	e2 := e.restart() // a second replica with its own connection pool
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	const workers, each = 8, 25
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := e
			if w%2 == 1 {
				srv = e2
			}
			for i := 0; i < each; i++ {
				r := srv.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": fmt.Sprintf("w%d-%d@example.com", w, i)}})
				if r.status != 201 {
					t.Errorf("enroll: %d %s", r.status, r.body)
					return
				}
				mu.Lock()
				counts[r.json(t)["adapter_id"].(string)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Picks are serialised per pool and counters persisted, so 200 picks of
	// 5:3:2 are exactly 100/60/40 whatever the interleaving.
	if counts[adapters[0]] != 100 || counts[adapters[1]] != 60 || counts[adapters[2]] != 40 {
		t.Fatalf("5:3:2 over 200 concurrent enrolls = %d/%d/%d, want 100/60/40", counts[adapters[0]], counts[adapters[1]], counts[adapters[2]])
	}
}

func TestPoolExhausted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 1, 1)
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET health_state = 'resting', resting_until = now() + interval '1 day' WHERE id = $1::uuid`, adapters[0])
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET daily_cap = 3 WHERE id = $1::uuid`, adapters[1])
	dbtest.Exec(t, e.dbURL, `INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
		VALUES ('acme', $1::uuid, (now() AT TIME ZONE 'UTC')::date, gen_random_uuid(), 3)`, adapters[1])
	before := dbtest.RowCounts(t, e.dbURL)
	r := e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-pause", "contact": map[string]any{"email": "x@example.com"}})
	assertProblem(t, r, 409, "pool_exhausted", "*")
	m := r.json(t)
	ids := fmt.Sprint(m["evicted_adapter_ids"])
	if !strings.Contains(ids, adapters[0]) || !strings.Contains(ids, adapters[1]) {
		t.Fatalf("evicted_adapter_ids %v", m["evicted_adapter_ids"])
	}
	reasons := fmt.Sprint(m["evicted"])
	if !strings.Contains(reasons, "resting") || !strings.Contains(reasons, "daily_cap_reached") {
		t.Fatalf("evicted reasons %v", m["evicted"])
	}
	// Nothing is stored but the refusal's own event, which reaches the feed.
	after := dbtest.RowCounts(t, e.dbURL)
	if after["telemetry_outbox"] != before["telemetry_outbox"]+1 {
		t.Fatalf("outbox rows %d → %d, want one more (pool_exhausted)", before["telemetry_outbox"], after["telemetry_outbox"])
	}
	delete(after, "telemetry_outbox")
	delete(before, "telemetry_outbox")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("an exhausted enroll stored rows")
	}
	if d := e.feed(key, "dripdrop.dispatch.pool_exhausted", 1); len(d) != 1 {
		t.Fatalf("feed: %v", d)
	}
	ev := e.events.Named("dripdrop.dispatch.pool_exhausted")
	if len(ev) != 1 || len(ev[0]["evicted_adapter_ids"].([]string)) != 2 || len(ev[0]) != 4 {
		t.Fatalf("pool_exhausted events: %v", ev)
	}
}

func TestReassignPoolFallsBackToLeastLoaded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "reassign", 1, 1)
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET health_state = 'resting', resting_until = now() + interval '1 day' WHERE id = $1::uuid`, adapters[0])
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET daily_cap = 1 WHERE id = $1::uuid`, adapters[1])
	dbtest.Exec(t, e.dbURL, `INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
		VALUES ('acme', $1::uuid, (now() AT TIME ZONE 'UTC')::date, gen_random_uuid(), 1)`, adapters[1])
	status, en := e.enroll(key, "seq-reassign", "x@example.com")
	if status != 201 || en["adapter_id"] != adapters[1] {
		t.Fatalf("reassign fallback: %d %v (want the capped, non-resting member)", status, en)
	}
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET health_state = 'resting', resting_until = now() + interval '1 day' WHERE id = $1::uuid`, adapters[1])
	assertProblem(t, e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "seq-reassign", "contact": map[string]any{"email": "y@example.com"}}), 409, "pool_exhausted", "*")
}

func TestElapsedRestMovesToProbingBeforePick(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 1)
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET health_state = 'resting', resting_until = now() - interval '1 minute' WHERE id = $1::uuid`, adapters[0])
	status, en := e.enroll(key, "seq-pause", "x@example.com")
	if status != 201 || en["adapter_id"] != adapters[0] {
		t.Fatalf("enroll: %d %v", status, en)
	}
	a := e.must(200, "GET", "/v1/adapters/"+adapters[0], key, nil)
	if a["health_state"] != "probing" {
		t.Fatalf("health_state %v, want probing", a["health_state"])
	}
	ev := e.events.Named("dripdrop.health.state_changed")
	if len(ev) != 1 || ev[0]["from"] != "resting" || ev[0]["to"] != "probing" || ev[0]["reason"] != "resting_elapsed" {
		t.Fatalf("state_changed: %v", ev)
	}
}

func TestEnrollmentActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 1, 1)
	_, en := e.enroll(key, "seq-pause", "x@example.com")
	id := en["id"].(string)
	p := e.must(200, "POST", "/v1/enrollments/"+id+"/pause", key, nil)
	if p["state"] != "paused" || p["pause_reason"] != "operator" {
		t.Fatalf("pause: %v", p)
	}
	assertProblem(t, e.do("POST", "/v1/enrollments/"+id+"/pause", key, nil), 409, "invalid_state", "")
	// Resume schedules the pending step no earlier than now.
	dbtest.Exec(t, e.dbURL, `UPDATE step_executions SET scheduled_for = now() - interval '2 days' WHERE enrollment_id = $1::uuid`, id)
	r := e.must(200, "POST", "/v1/enrollments/"+id+"/resume", key, nil)
	at, _ := time.Parse(time.RFC3339Nano, r["executions"].([]any)[0].(map[string]any)["scheduled_for"].(string))
	if r["state"] != "active" || at.Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("resume: %v", r)
	}
	// Repin: new thread, audit entry, event.
	other := adapters[0]
	if en["adapter_id"] == other {
		other = adapters[1]
	}
	rp := e.must(200, "POST", "/v1/enrollments/"+id+"/repin", key, map[string]any{"adapter_id": other, "reason": "compliance_request"})
	if rp["adapter_id"] != other || rp["thread"] != float64(2) {
		t.Fatalf("repin: %v", rp)
	}
	if x := rp["executions"].([]any)[0].(map[string]any); x["adapter_id"] != other {
		t.Fatalf("the pending execution must follow the new pin: %v", x)
	}
	ev := e.events.Named("dripdrop.enrollment.sender_reassigned")
	if len(ev) != 1 || ev[0]["old_adapter_id"] != en["adapter_id"] || ev[0]["new_adapter_id"] != other || ev[0]["reason"] != "compliance_request" || len(ev[0]) != 5 {
		t.Fatalf("sender_reassigned: %v", ev)
	}
	audit, err := e.store.Audit(t.Context(), "acme", "enrollment", mustParse(t, id))
	if err != nil || len(audit) == 0 || audit[len(audit)-1].Action != "sender_reassigned" {
		t.Fatalf("audit: %v %v", audit, err)
	}
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET health_state = 'resting', resting_until = now() + interval '1 day' WHERE id = $1::uuid`, en["adapter_id"])
	assertProblem(t, e.do("POST", "/v1/enrollments/"+id+"/repin", key, map[string]any{"adapter_id": en["adapter_id"]}), 409, "invalid_state", "adapter_id")
	otherTenant := e.tenant("other")
	foreign := e.must(201, "POST", "/v1/adapters", otherTenant, map[string]any{"name": "f", "provider": "sink", "from_address": "f@other.example.com"})
	assertProblem(t, e.do("POST", "/v1/enrollments/"+id+"/repin", key, map[string]any{"adapter_id": foreign["id"]}), 404, "not_found", "adapter_id")
	c := e.must(200, "POST", "/v1/enrollments/"+id+"/cancel", key, nil)
	if c["state"] != "cancelled" || c["executions"].([]any)[0].(map[string]any)["state"] != "cancelled" {
		t.Fatalf("cancel: %v", c)
	}
	assertProblem(t, e.do("POST", "/v1/enrollments/"+id+"/resume", key, nil), 409, "invalid_state", "")
}

func TestForceDeleteAppliesPoolPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	pa, _ := e.weightedPool(key, "pause", 1)
	ra, _ := e.weightedPool(key, "reassign", 1, 1)
	_, p1 := e.enroll(key, "seq-pause", "p@example.com")
	_, r1 := e.enroll(key, "seq-reassign", "r@example.com")
	assertProblem(t, e.do("DELETE", "/v1/adapters/"+pa[0], key, nil), 409, "in_use", "")
	e.must(204, "DELETE", "/v1/adapters/"+pa[0]+"?force=true", key, nil)
	got := e.must(200, "GET", "/v1/enrollments/"+p1["id"].(string), key, nil)
	if got["state"] != "paused" || got["pause_reason"] != "pinned_adapter_unavailable" {
		t.Fatalf("pause pool: %v", got)
	}
	if ev := e.events.Named("dripdrop.enrollment.paused_pin_unavailable"); len(ev) != 1 || ev[0]["adapter_id"] != pa[0] || len(ev[0]) != 3 {
		t.Fatalf("paused_pin_unavailable: %v", ev)
	}
	pinned := r1["adapter_id"].(string)
	e.must(204, "DELETE", "/v1/adapters/"+pinned+"?force=true", key, nil)
	got = e.must(200, "GET", "/v1/enrollments/"+r1["id"].(string), key, nil)
	if got["state"] != "active" || got["adapter_id"] == pinned || got["thread"] != float64(2) {
		t.Fatalf("reassign pool: %v", got)
	}
	ids := []string{ra[0], ra[1]}
	sort.Strings(ids)
	ev := e.events.Named("dripdrop.enrollment.sender_reassigned")
	if len(ev) != 1 || ev[0]["reason"] != "auto_rebind" || ev[0]["old_adapter_id"] != pinned {
		t.Fatalf("auto_rebind: %v", ev)
	}
}

func TestBatchEnroll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	adapters, _ := e.weightedPool(key, "pause", 1, 1)
	e.must(201, "POST", "/v1/suppressions", key, map[string]any{"email": "blocked@example.com"})
	_, existing := e.enroll(key, "seq-pause", "old@example.com")
	contacts := []any{
		map[string]any{"email": "one@example.com", "first_name": "One"},
		map[string]any{"email": "not an email"},
		map[string]any{"email": "ONE@example.com"},
		map[string]any{"email": "blocked@example.com"},
		map[string]any{"email": "old@example.com"},
		map[string]any{"email": "two@example.com", "vars": map[string]any{"plan": "pro", "seats": 12}},
	}
	m := e.must(200, "POST", "/v1/enrollments/batch", key, map[string]any{"sequence_key": "seq-pause", "contacts": contacts})
	res := m["results"].([]any)
	status := func(i int) string { return res[i].(map[string]any)["status"].(string) }
	want := []string{"created", "error", "existing", "error", "existing", "created"}
	for i, w := range want {
		if status(i) != w {
			t.Fatalf("row %d: %v, want %s (all: %v)", i, res[i], w, res)
		}
	}
	if m["created"] != float64(2) || m["existing"] != float64(2) || m["errors"] != float64(2) {
		t.Fatalf("summary: %v", m)
	}
	if res[1].(map[string]any)["error"].(map[string]any)["field"] != "contacts[1].email" || res[3].(map[string]any)["error"].(map[string]any)["code"] != "suppressed" {
		t.Fatalf("row errors: %v %v", res[1], res[3])
	}
	if res[2].(map[string]any)["enrollment_id"] != res[0].(map[string]any)["enrollment_id"] || res[4].(map[string]any)["enrollment_id"] != existing["id"] {
		t.Fatal("existing rows must point at the enrollment they matched")
	}
	// The two created rows alternate between the equal-weight members.
	a0, a1 := res[0].(map[string]any)["adapter_id"], res[5].(map[string]any)["adapter_id"]
	if a0 == a1 || (a0 != adapters[0] && a0 != adapters[1]) {
		t.Fatalf("batch pins %v %v", a0, a1)
	}
	two := e.must(200, "GET", "/v1/enrollments/"+res[5].(map[string]any)["enrollment_id"].(string), key, nil)
	if v := two["contact"].(map[string]any)["vars"].(map[string]any); v["plan"] != "pro" || v["seats"] != "12" || len(two["executions"].([]any)) != 1 {
		t.Fatalf("batch row stored: %v", two)
	}
	// CSV with an unknown column that becomes a var.
	csv := "email,first_name,Plan\nthree@example.com,Three,gold\nbad,,\n"
	r := e.do("POST", "/v1/enrollments/batch?sequence_key=seq-pause", key, csv, "Content-Type", "text/csv")
	if r.status != 200 {
		t.Fatalf("csv: %d %s", r.status, r.body)
	}
	cm := r.json(t)
	if cm["created"] != float64(1) || cm["errors"] != float64(1) {
		t.Fatalf("csv summary: %v", cm)
	}
	three := e.must(200, "GET", "/v1/enrollments/"+cm["results"].([]any)[0].(map[string]any)["enrollment_id"].(string), key, nil)
	if three["contact"].(map[string]any)["vars"].(map[string]any)["plan"] != "gold" {
		t.Fatalf("csv vars: %v", three["contact"])
	}
	assertProblem(t, e.do("POST", "/v1/enrollments/batch", key, map[string]any{"sequence_key": "seq-pause", "contacts": make([]any, 10001)}), 422, "out_of_range", "contacts")
}
