package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Resumes and claims of the same adapter take adapter_due and
// step_executions in one order (executions first): run together, neither
// deadlocks. A resume's trigger wakes the adapter's queue row; a
// reservation that releases claims it no longer sends (a paused
// enrollment) wakes it too.
func TestResumesAndClaimsOfOneAdapterDoNotDeadlock(t *testing.T) {
	// Not parallel: it needs the machine's time to make the two sides meet.
	w := newWorld(t, dripdrop.AdapterInput{MaxInFlight: some(16)})
	const n = 120
	ids := make([]dripdrop.Enrollment, n)
	for i := range ids {
		ids[i] = w.enroll(fmt.Sprintf("c%d@example.com", i), nil)
	}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errs sync.Map
	var ops, ticks atomic.Int64
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; ; i = (i + 3) % n {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[i].ID
				if _, err := w.store.PauseEnrollment(ctx, w.tenant, id); err != nil && dripdrop.ErrorCode(err) != dripdrop.ECodeInvalidState {
					errs.Store(fmt.Sprint("pause: ", err), true)
				}
				if _, err := w.store.ResumeEnrollment(ctx, w.tenant, id); err != nil && dripdrop.ErrorCode(err) != dripdrop.ECodeInvalidState {
					errs.Store(fmt.Sprint("resume: ", err), true)
				}
				ops.Add(1)
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.disp.Tick(ctx); err != nil {
				errs.Store(fmt.Sprint("tick: ", err), true)
			}
			w.disp.Drain()
			ticks.Add(1)
		}
	}()
	// Until every message went out (pauses hold them back now and then),
	// at most 10 s.
	for deadline := time.Now().Add(10 * time.Second); len(w.sink.Messages()) < 3*n && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Error(k); return true })
	if ops.Load() < 50 || ticks.Load() < 10 {
		t.Fatalf("only %d pause/resume pairs and %d ticks ran", ops.Load(), ticks.Load())
	}
	w.run()
	for _, e := range ids {
		if got := w.enrollment(e.ID); got.State != dripdrop.EnrollmentCompleted {
			t.Errorf("enrollment %s ended %s, want completed", e.ID, got.State)
		}
	}
	t.Logf("%d pause/resume pairs, %d ticks, %d messages", ops.Load(), ticks.Load(), len(w.sink.Messages()))
}

// A claim never waits for a ready-queue row another transaction holds. A
// record or an enrollment wakes the rows of several adapters in one
// statement, in no fixed order; a claim that waited for one of them while
// holding another deadlocked with it (one of the two aborted after
// PostgreSQL's deadlock timeout, a second of stalled sending). Here a
// transaction that wakes adapter B's row stays open: the claim still
// returns at once with the due work of both adapters, and B's row, left as
// it was, is still due, so nothing of B is lost once the waker commits.
func TestClaimDoesNotWaitForAWokenQueueRow(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	ctx := context.Background()
	name, prov, from := "b", "sink", "b@acme.example.com"
	b, err := w.store.CreateAdapter(ctx, w.tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.AddPoolMember(ctx, w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &b.ID}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	for i := 0; i < n; i++ {
		w.enroll(fmt.Sprintf("c%d@example.com", i), nil)
	}
	perAdapter := func(where string) map[uuid.UUID]int {
		got := map[uuid.UUID]int{}
		for _, r := range dbtest.Query(t, w.url, `SELECT adapter_id, count(*)::int FROM step_executions WHERE tenant_key = $1 AND `+where+` GROUP BY adapter_id`, w.tenant) {
			got[r[0].([16]byte)] = int(r[1].(int32))
		}
		return got
	}
	if got := perAdapter("state = 'scheduled'"); got[w.adapter.ID] == 0 || got[b.ID] < 2 {
		t.Fatalf("scheduled executions per adapter %v: want work on both, two or more on b", got)
	}

	// The waker: moves one of b's executions earlier, which wakes b's queue
	// row (ver + 1) and holds that row until it ends.
	waker, err := pgx.Connect(ctx, w.url)
	if err != nil {
		t.Fatal(err)
	}
	defer waker.Close(ctx)
	tx, err := waker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // ends the transaction when the test failed first
	if tag, err := tx.Exec(ctx, `UPDATE step_executions SET scheduled_for = scheduled_for - interval '1 second'
		WHERE tenant_key = $1 AND id = (SELECT id FROM step_executions WHERE tenant_key = $1 AND adapter_id = $2 AND state = 'scheduled' ORDER BY id LIMIT 1)`,
		w.tenant, b.ID); err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("waker: %v, %v", tag, err)
	}
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT ver > 0 FROM adapter_due WHERE tenant_key = $1 AND adapter_id = $2`, w.tenant, b.ID).Scan(&locked); err != nil || !locked {
		t.Fatalf("the waker did not wake b's queue row: %v %v", locked, err)
	}

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	claimed, err := w.store.Claim(cctx, []db.ClaimRequest{{Tenant: w.tenant, Limit: 2 * n}}, nil, time.Minute)
	if err != nil {
		t.Fatalf("the claim waited for the waker's queue row (%v): %v", time.Since(start).Round(time.Millisecond), err)
	}
	byAdapter := map[uuid.UUID]int{}
	for _, c := range claimed {
		byAdapter[c.AdapterID]++
	}
	// Everything due but the execution the waker holds.
	if want := perAdapter("state = 'scheduled'"); byAdapter[w.adapter.ID] != want[w.adapter.ID] || byAdapter[b.ID] != want[b.ID]-1 {
		t.Fatalf("claimed per adapter %v, want %v less the waker's one of b", byAdapter, want)
	}
	var due bool
	if err := waker.QueryRow(ctx, `SELECT due_at <= $3 FROM adapter_due WHERE tenant_key = $1 AND adapter_id = $2`, w.tenant, b.ID, w.clock.Now()).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !due {
		t.Fatal("b's queue row is not due after the claim left it")
	}
	// The claims expire and all of it is sent (the default sequence has three
	// steps).
	w.clock.Add(2 * time.Minute)
	w.run()
	if got, want := len(w.sink.Messages()), 3*n; got != want {
		t.Fatalf("%d messages sent, want %d", got, want)
	}
}
