package dispatch_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

// TestCitusTwoPhaseCommits counts the transactions that commit in two
// phases across workers (pg_dist_transaction) for two tenants on different
// workers: batch imports (COPY, in two phases on one worker) and single
// enrollments commit on the tenant's worker alone, a claim for both tenants on each tenant's worker alone,
// and so does every reservation and every record (RecordSentSteps and VALUES
// inserts on Citus, docs/scaling.md#writing-queries-that-shard). The count is
// checked to see a transaction over both tenants' workers.
func TestCitusTwoPhaseCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "twopc", 2)
	var records, reserves, batches atomic.Int64
	hook := func(sql string, _ []any) {
		switch {
		case strings.HasPrefix(sql, "-- name: RecordSentSteps "):
			records.Add(1)
		case strings.HasPrefix(sql, "-- name: ReserveSendsSteps "):
			reserves.Add(1)
		case strings.HasPrefix(sql, `COPY "enrollments" `) || strings.HasPrefix(sql, "-- name: BulkEnroll "):
			batches.Add(1)
		}
	}
	steps := []dripdrop.StepInput{step("one", "Hi", "One.", 0), step("two", "Again", "Two.", 0)}
	k := testkit.NewWorld(t, testkit.WithURL(url), testkit.WithTenant(tenants[0]), testkit.WithSteps(steps...),
		testkit.WithStoreOptions(func(o *db.Options) { o.StatementHook = hook }))
	w := &world{World: k, t: t, url: k.URL, clock: k.Clock, store: k.Store, sink: k.Sink, ev: k.Events,
		adapter: k.Adapter, pool: k.Pool, tenant: k.Tenant, box: k.Box}
	w.AddTenant(tenants[1], dripdrop.AdapterInput{}, steps...)
	// Transactions committed in two phases (pg_dist_transaction: a row per
	// participating worker), on one worker and across workers.
	twoPhase := func() (oneWorker, across int64) {
		row := dbtest.Query(t, url, `SELECT count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1) FROM (
			SELECT regexp_replace(gid, '_[0-9]+$', ''), count(DISTINCT groupid) AS n FROM pg_dist_transaction GROUP BY 1) x`)[0]
		return row[0].(int64), row[1].(int64)
	}
	oneBefore, before := twoPhase()
	// Batch imports (two per tenant, the second repeating a contact of the
	// first) and single enrollments.
	const contacts = 12
	for _, tn := range tenants {
		w.enrollBatch(tn, contacts-2, tn+"-c")
		repeat, extra := tn+"-c0@example.com", tn+"-extra@example.com"
		res, err := w.store.EnrollBatch(ctx, tn, "welcome", []dripdrop.ContactInput{{Email: &repeat}, {Email: &extra}})
		if err != nil || res[0].Status != "existing" || res[1].Status != "created" {
			t.Fatalf("second batch: %+v, %v; want the repeat existing and the new contact created", res, err)
		}
		seq, email := "welcome", tn+"-single@example.com"
		if _, _, err := w.store.Enroll(ctx, tn, dripdrop.EnrollInput{SequenceKey: &seq, Contact: dripdrop.ContactInput{Email: &email}}); err != nil {
			t.Fatal(err)
		}
	}
	if batches.Load() != 4 {
		t.Fatalf("%d batch writes of enrollments, want 4", batches.Load())
	}
	// A batch import copies its rows (COPY), which Citus commits in two
	// phases on the one worker it wrote to.
	one, across := twoPhase()
	if one-oneBefore != 4 || across != before {
		t.Fatalf("4 batch imports and 2 enrollments: %d two-phase commits on one worker, %d across workers; want 4 on one worker (the imports' COPY), none across",
			one-oneBefore, across-before)
	}
	oneBefore = one
	claimed, err := w.store.Claim(ctx, []db.ClaimRequest{{Tenant: tenants[0], Limit: 8}, {Tenant: tenants[1], Limit: 8}}, nil, time.Minute)
	per := map[string]int{}
	for _, c := range claimed {
		per[c.Tenant]++
	}
	if err != nil || per[tenants[0]] == 0 || per[tenants[1]] == 0 {
		t.Fatalf("claim: %v, %v; want work of each tenant", per, err)
	}
	if one, across := twoPhase(); one != oneBefore || across != before {
		t.Fatalf("a claim for two tenants committed %d transactions in two phases on one worker and %d across workers, want none", one-oneBefore, across-before)
	}
	for _, c := range claimed {
		if err := w.store.ReleaseClaim(ctx, c.Tenant, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	records.Store(0)
	reserves.Store(0)
	w.disp, err = dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 16, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.run()
	if got := len(w.sink.Messages()); got != len(tenants)*contacts*len(steps) {
		t.Fatalf("the sink got %d messages, want %d", got, len(tenants)*contacts*len(steps))
	}
	one, across = twoPhase()
	t.Logf("%d sends: %d reservations and %d records; %d transactions committed in two phases on one worker, %d across workers",
		len(w.sink.Messages()), reserves.Load(), records.Load(), one-oneBefore, across-before)
	if reserves.Load() == 0 || records.Load() == 0 || one != oneBefore || across != before {
		t.Fatalf("%d reservations and %d records: %d transactions committed in two phases on one worker, %d across workers; want none",
			reserves.Load(), records.Load(), one-oneBefore, across-before)
	}

	// The count sees a transaction over both tenants' workers.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if _, err := tx.Exec(ctx, "INSERT INTO telemetry_outbox (tenant_key, name, occurred_at, status) VALUES ($1, 'dripdrop.enrollment.paused', now(), 'no_match')", tn); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, got := twoPhase(); got != across+1 {
		t.Fatalf("a transaction over both workers moved the count to %d, want %d: the check sees nothing", got-before, across-before+1)
	}
}
