package db_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/vault"
)

// TestSendPathPlansIgnoreStaleStatistics: statistics are taken while the
// tables are nearly empty (as when a tenant starts, before autovacuum's
// next ANALYZE), then 10 000 contacts are enrolled over 100 adapters with
// a gap, in batches small enough that the store leaves the statistics to
// autovacuum. Claiming, reserving and recording 100 sends (and what
// follows: a reply, a bounce, the health sweep, the outbox's fan-out) must
// then cost in proportion to the sends and the tables, never to their
// product: every plan, nested statements included, is read as executed
// (auto_explain), and no statement may visit (return, or read and filter
// out) 250 000 rows or more — a tenth of sends × enrollments. Before the
// statements reached their rows by key from the ids, the claim and the
// reservation visited 2 to 6 million rows here, and a fleet's first round
// stalled for half a minute.
func TestSendPathPlansIgnoreStaleStatistics(t *testing.T) {
	t.Parallel()
	const adapters, contacts, limit = 100, 10_000, 250_000
	ctx := context.Background()
	url := dbtest.URL(t)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	box, _ := vault.ParseKey(vault.GenerateKey())
	store, plans := explained(t, url, db.Options{Vault: box, Clock: dripdrop.ClockFunc(func() time.Time { return now })})
	key := bulkTenant(t, store, adapters)
	// Statistics as of now (nearly empty tables), kept so: autovacuum
	// would otherwise refresh them at some point of the test.
	for _, table := range []string{"enrollments", "step_executions", "adapters", "adapter_due", "message_events", "pool_members", "wdrr_counters"} {
		dbtest.Exec(t, url, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`)
	}
	dbtest.Exec(t, url, `ANALYZE`)
	// In batches too small for the store to refresh the statistics itself
	// (a bulk enrollment does, see TestBulkEnrollmentRefreshesStatistics).
	enroll(t, store, key, 0, contacts, 500)

	plans.record(true)
	claimed, err := store.Claim(ctx, []db.ClaimRequest{{Tenant: "acme", Limit: adapters}}, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != adapters {
		t.Fatalf("claimed %d, want one per adapter (%d)", len(claimed), adapters)
	}
	res, err := store.ReserveClaimed(ctx, claimed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var sent []db.Sent
	for _, r := range res {
		if r.Outcome == db.Reserved {
			sent = append(sent, db.Sent{Job: r.Job, ProviderID: "p-" + r.Job.ExecutionID.String(), Subject: "Hi", HandedOver: now})
		}
	}
	if len(sent) != adapters {
		t.Fatalf("reserved %d of %d", len(sent), adapters)
	}
	ok, err := store.MarkSentBatch(ctx, sent)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range ok {
		if !o {
			t.Fatalf("send %d was not recorded", i)
		}
	}
	// What follows a send: a reply to one, a hard bounce of another, the
	// health sweep and the outbox's fan-out.
	reply, err := store.Ingest(ctx, "acme", ingest.InboundInput{Message: &ingest.Message{
		MessageID: "r1@example.com", From: sent[0].Job.Contact.Email, InReplyTo: strings.Trim(sent[0].Job.MessageID, "<>"),
		Subject: "Re: Hi", BodyText: "Sounds good, let's talk.", ReceivedAt: now}})
	if err != nil || reply.EnrollmentID == nil || *reply.EnrollmentID != sent[0].Job.EnrollmentID {
		t.Fatalf("reply: %+v, %v", reply, err)
	}
	bounce, err := store.Ingest(ctx, "acme", ingest.InboundInput{Intent: ingest.Bounce, Message: &ingest.Message{
		MessageID: "b1@mailer.example.com", From: "mailer-daemon@example.com", InReplyTo: strings.Trim(sent[1].Job.MessageID, "<>"),
		Subject: "Undelivered", BodyText: "550 5.1.1 no such user", ReceivedAt: now}})
	if err != nil || bounce.EnrollmentID == nil || *bounce.EnrollmentID != sent[1].Job.EnrollmentID {
		t.Fatalf("bounce: %+v, %v", bounce, err)
	}
	if _, err := store.HealthSweep(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.FanOut(ctx, "acme", 500); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, p := range plans.take() {
		names[p.name] = true
		if p.generated {
			t.Logf("%s: %.0f rows visited", p.name, p.visits)
		}
		if p.visits >= limit {
			t.Errorf("%s visited %.0f rows to handle %d sends (limit %d); plan:\n%s", p.name, p.visits, adapters, limit, p.json)
		}
	}
	// The plans seen are the send path's own.
	for _, want := range []string{"ClaimReady", "LoadSendsLocked", "BatchPolicyInputs", "ReserveSends", "RecordSent"} {
		if !names[want] {
			t.Errorf("no plan of %s was seen (saw %v)", want, names)
		}
	}
}

// statementName is a generated statement's sqlc name ("-- name: X"), or
// the start of its text.
func statementName(q string) string {
	if _, rest, ok := strings.Cut(q, "-- name: "); ok {
		return strings.Fields(rest)[0]
	}
	q = strings.Join(strings.Fields(q), " ")
	return q[:min(60, len(q))]
}

// planLog collects the plans of an explained store's statements while
// recording.
type planLog struct {
	t         *testing.T
	mu        sync.Mutex
	recording bool
	plans     []string
}

// explainedPlan is one statement's plan as executed.
type explainedPlan struct {
	name      string // statementName
	generated bool   // a sqlc query (not a trigger's or a hand-written one)
	visits    float64
	json      string
}

// explained opens a store on url whose every statement's plan, as
// executed, goes to the returned log (db.OpenExplained); the test is
// skipped when this database user cannot load auto_explain.
func explained(t *testing.T, url string, opts db.Options) (*db.Store, *planLog) {
	t.Helper()
	l := &planLog{t: t}
	store, err := db.OpenExplained(context.Background(), url, opts, func(js string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.recording {
			l.plans = append(l.plans, js)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Ping(context.Background()); err != nil {
		t.Skipf("auto_explain cannot be loaded by this database user: %v", err)
	}
	return store, l
}

func (l *planLog) record(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recording = on
}

// take stops recording and returns the plans recorded.
func (l *planLog) take() []explainedPlan {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recording = false
	out := make([]explainedPlan, 0, len(l.plans))
	for _, js := range l.plans {
		var p struct {
			Query string         `json:"Query Text"`
			Plan  map[string]any `json:"Plan"`
		}
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			l.t.Fatalf("auto_explain output: %v\n%s", err, js)
		}
		out = append(out, explainedPlan{name: statementName(p.Query), generated: strings.HasPrefix(p.Query, "-- name: "), visits: visits(p.Plan), json: js})
	}
	return out
}

// visits is how many rows a plan's nodes returned or read and filtered out,
// over all their loops.
func visits(node map[string]any) float64 {
	num := func(k string) float64 { f, _ := node[k].(float64); return f }
	v := (num("Actual Rows") + num("Rows Removed by Filter") + num("Rows Removed by Join Filter") + num("Rows Removed by Index Recheck")) * max(num("Actual Loops"), 1)
	if kids, ok := node["Plans"].([]any); ok {
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				v += visits(m)
			}
		}
	}
	return v
}

// bulkTenant creates tenant "acme" with adapters adapters (a 60 s gap
// each) in one pool and a one-step sequence on it, and returns the
// sequence's key.
func bulkTenant(t *testing.T, store *db.Store, adapters int) string {
	t.Helper()
	ctx := context.Background()
	if _, _, err := store.CreateTenant(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	gap, prov := 60, "smtp"
	var members []dripdrop.MemberInput
	for i := range adapters {
		name, from := fmt.Sprintf("m%d", i), fmt.Sprintf("m%d@acme.example.com", i)
		a, err := store.CreateAdapter(ctx, "acme", dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from, MinGapSeconds: &gap,
			Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: 2525, TLS: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, dripdrop.MemberInput{AdapterID: &a.ID})
	}
	pn := "main"
	pool, err := store.CreatePool(ctx, "acme", dripdrop.PoolInput{Name: &pn, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	key, sname, skey, subject, body, delay := "welcome", "Welcome", "intro", "Hi", "Hello {{first_name|there}}", int64(0)
	if _, err := store.CreateSequence(ctx, "acme", dripdrop.SequenceInput{Key: &key, Name: &sname, VersionInput: dripdrop.VersionInput{
		PoolID: &pool.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"},
		Steps: []dripdrop.StepInput{{Key: &skey, Subject: &subject, BodyText: &body, DelaySeconds: &delay}},
	}}); err != nil {
		t.Fatal(err)
	}
	return key
}

// enroll enrolls contacts c<from>… c<from+n-1>@example.com in batches of
// size.
func enroll(t *testing.T, store *db.Store, key string, from, n, size int) {
	t.Helper()
	for start := from; start < from+n; start += size {
		in := make([]dripdrop.ContactInput, min(size, from+n-start))
		for i := range in {
			email := fmt.Sprintf("c%d@example.com", start+i)
			in[i] = dripdrop.ContactInput{Email: &email}
		}
		if _, err := store.EnrollBatch(context.Background(), "acme", key, in); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBulkEnrollmentRefreshesStatistics: with the planner's statistics
// taken on empty tables and autovacuum off, a batch of 2 000 contacts has
// the store analyze the enrollment tables itself, without waiting for
// autovacuum: the planner's row counts of both tables follow (all 2 999
// rows). A batch under the threshold (999) before it leaves them alone.
func TestBulkEnrollmentRefreshesStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	box, _ := vault.ParseKey(vault.GenerateKey())
	store, err := db.Open(ctx, url, db.Options{Vault: box})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := bulkTenant(t, store, 2)
	for _, table := range []string{"enrollments", "step_executions"} {
		dbtest.Exec(t, url, `ALTER TABLE `+table+` SET (autovacuum_enabled = false)`)
	}
	dbtest.Exec(t, url, `ANALYZE`)
	planned := func() (enrollments, executions float64) {
		for _, r := range dbtest.Query(t, url, `SELECT relname::text, reltuples::float8 FROM pg_class WHERE relname IN ('enrollments', 'step_executions')`) {
			if r[0] == "enrollments" {
				enrollments = r[1].(float64)
			} else {
				executions = r[1].(float64)
			}
		}
		return
	}
	enroll(t, store, key, 0, 999, 999)
	store.WaitStatsRefresh()
	if e, x := planned(); e != 0 || x != 0 {
		t.Fatalf("after 999 contacts the planner counts %.0f enrollments and %.0f executions, want them left to autovacuum (0)", e, x)
	}
	enroll(t, store, key, 999, 2000, 2000)
	store.WaitStatsRefresh()
	if e, x := planned(); e != 2999 || x != 2999 {
		t.Fatalf("after 2 999 contacts the planner counts %.0f enrollments and %.0f executions, want 2 999 each", e, x)
	}
}

// TestTodayCountsReadToday: the dashboard's overview counts the tenant's
// message events since UTC midnight. With 40 days of events (200 000, in
// time order as they are written), the count must read today's pages, not
// the table: fewer than 50 000 rows visited (a whole-table scan visits all
// 200 000).
func TestTodayCountsReadToday(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	store, plans := explained(t, url, db.Options{Clock: dripdrop.ClockFunc(func() time.Time { return now })})
	if _, _, err := store.CreateTenant(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	dbtest.Exec(t, url, `INSERT INTO message_events (tenant_key, id, type, adapter_id, occurred_at)
		SELECT 'acme', gen_random_uuid(), CASE WHEN g % 50 = 0 THEN 'replied' ELSE 'sent' END, gen_random_uuid(),
		       $1::timestamptz - interval '40 days' + g * interval '40 days' / 200000
		FROM generate_series(1, 200000) g`, now)
	dbtest.Exec(t, url, `VACUUM ANALYZE message_events`)
	plans.record(true)
	day, err := store.TenantToday(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// Today (10 h of 40 days) holds 2 084 of the events (17.28 s apart), 42
	// of them replies (every 50th).
	if got := day.Events["sent"] + day.Events["replied"]; got != 2084 || day.Events["replied"] != 42 {
		t.Fatalf("today's events: %v", day.Events)
	}
	seen := false
	for _, p := range plans.take() {
		if p.name != "TenantEventCounts" {
			continue
		}
		seen = true
		if p.visits >= 50_000 {
			t.Errorf("TenantEventCounts visited %.0f rows for a day's 2 084 events; plan:\n%s", p.visits, p.json)
		}
	}
	if !seen {
		t.Fatal("no plan of TenantEventCounts was seen")
	}
}
