package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/internal/syncbuf"
)

// An out-of-office reply that moves a follow-up after a dispatcher claimed
// it (and before the reservation) wins: the claimed follow-up is not sent
// before the return day.
func TestOOOAfterClaimIsNotSent(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("intro", "Hello", "First note.", 0), step("bump", "", "Second note.", 86400))
	en := w.enroll("ooo@client.example", nil)
	w.run()
	first := w.enrollment(en.ID).Executions[0]
	if first.State != "sent" || first.OutMessageID == nil {
		t.Fatalf("first step: %s", first.State)
	}
	w.clock.Add(24 * time.Hour)
	ctx := context.Background()
	claims, err := claimTenant(w.store, ctx, w.tenant, 10, time.Minute)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim: %d, %v", len(claims), err)
	}
	back := w.clock.Now().AddDate(0, 0, 7)
	ret := ingest.Date{Year: back.Year(), Month: back.Month(), Day: back.Day()}
	res, err := w.store.Ingest(ctx, w.tenant, ingest.InboundInput{Intent: ingest.OOO, ReturnAt: &ret, Message: &ingest.Message{
		MessageID: "ooo-1@client.example", From: "ooo@client.example", InReplyTo: strings.Trim(*first.OutMessageID, "<>"),
		Subject: "Automatic reply", BodyText: "Out of the office.", ReceivedAt: w.clock.Now()}})
	if err != nil || res.Effects.Rescheduled != 1 {
		t.Fatalf("ooo: %+v, %v", res, err)
	}
	out, err := w.store.ReserveClaimed(ctx, claims, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Outcome != db.Released {
		t.Fatalf("reservation after the ooo: %s, want %s", out[0].Outcome, db.Released)
	}
	next := w.enrollment(en.ID).Executions[1]
	if next.State != "scheduled" || !next.ScheduledFor.After(w.clock.Now().AddDate(0, 0, 6)) {
		t.Fatalf("follow-up: %s at %v", next.State, next.ScheduledFor)
	}
	w.run()
	if n := len(w.sink.Messages()); n != 1 {
		t.Fatalf("sink got %d messages before the return day, want 1", n)
	}
}

// max_in_flight holds over processes: a claim counts the adapter's sends
// in flight anywhere, and a reservation (under the adapter's lock) takes no
// more places than are left, whatever claims were made before.
func TestMaxInFlightAcrossProcesses(t *testing.T) {
	t.Parallel()
	two := 2
	w := newWorld(t, dripdrop.AdapterInput{MaxInFlight: dripdrop.Nullable[int]{Set: true, Valid: true, Value: two}}, step("only", "Hi", "Note.", 0))
	for _, e := range []string{"a@x.example", "b@x.example", "c@x.example", "d@x.example", "e@x.example"} {
		w.enroll(e, nil)
	}
	ctx := context.Background()
	// Two processes claim before either reserves: each sees two places.
	a, err := claimTenant(w.store, ctx, w.tenant, 10, time.Minute)
	if err != nil || len(a) != 2 {
		t.Fatalf("first claim: %d, %v", len(a), err)
	}
	b, err := claimTenant(w.store, ctx, w.tenant, 10, time.Minute)
	if err != nil || len(b) != 2 {
		t.Fatalf("second claim: %d, %v", len(b), err)
	}
	outcomes := func(claims []db.Claimed) (n map[db.Outcome]int) {
		out, err := w.store.ReserveClaimed(ctx, claims, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		n = map[db.Outcome]int{}
		for _, r := range out {
			n[r.Outcome]++
		}
		return n
	}
	if got := outcomes(a); got[db.Reserved] != 2 {
		t.Fatalf("first reservation: %v", got)
	}
	if got := outcomes(b); got[db.Reserved] != 0 || got[db.Released] != 2 {
		t.Fatalf("second reservation with both places taken: %v", got)
	}
	// A third process's claim counts the two sends in flight: nothing.
	if c, err := claimTenant(w.store, ctx, w.tenant, 10, time.Minute); err != nil || len(c) != 0 {
		t.Fatalf("claim with both places taken: %d, %v", len(c), err)
	}
	if n := dbtest.Query(t, w.url, `SELECT count(*) FROM step_executions WHERE state = 'sending'`)[0][0].(int64); n != 2 {
		t.Fatalf("%d sending, want 2", n)
	}
	// A lease that ran out frees its place.
	w.clock.Add(2 * time.Minute)
	if c, err := claimTenant(w.store, ctx, w.tenant, 10, time.Minute); err != nil || len(c) != 2 {
		t.Fatalf("claim after the leases ran out: %d, %v", len(c), err)
	}
}

// A reservation that waited for another process's reservation of the same
// adapter counts the sends that one put in flight: it reads them after the
// adapter's lock is its own, not from a snapshot taken before.
func TestMaxInFlightAfterWaitingForTheLock(t *testing.T) {
	t.Parallel()
	two := 2
	w := newWorld(t, dripdrop.AdapterInput{MaxInFlight: dripdrop.Nullable[int]{Set: true, Valid: true, Value: two}}, step("only", "Hi", "Note.", 0))
	for _, e := range []string{"a@x.example", "b@x.example", "c@x.example", "d@x.example"} {
		w.enroll(e, nil)
	}
	ctx := context.Background()
	claims, err := claimTenant(w.store, ctx, w.tenant, 10, time.Minute)
	if err != nil || len(claims) != 2 {
		t.Fatalf("claim: %d, %v", len(claims), err)
	}
	// Another process holds the adapter and puts the two other executions
	// in flight.
	other := dbtest.Connect(t, w.url)
	other.Query("BEGIN")
	other.Query("SELECT id FROM adapters WHERE id = $1 FOR NO KEY UPDATE", w.adapter.ID)
	other.Query(`UPDATE step_executions SET state = 'sending', out_message_id = '<' || id || '@x.example>',
		lease_expires_at = $1 WHERE state = 'scheduled' AND claimed_until IS NULL`, w.clock.Now().Add(time.Hour))
	other.Query("UPDATE adapters SET last_send_at = $2 WHERE id = $1", w.adapter.ID, w.clock.Now())
	type result struct {
		out []db.Reservation
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := w.store.ReserveClaimed(ctx, claims, time.Minute)
		done <- result{out, err}
	}()
	// The reservation waits for the adapter's lock.
	for {
		if n := dbtest.Query(t, w.url, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%LockAdapters%'`)[0][0].(int64); n == 1 {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("the reservation did not wait for the lock: %v", r.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	other.Query("COMMIT")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for i, res := range r.out {
		if res.Outcome != db.Released {
			t.Errorf("claim %d: %s, want %s (both places were taken while it waited)", i, res.Outcome, db.Released)
		}
	}
	if n := dbtest.Query(t, w.url, `SELECT count(*) FROM step_executions WHERE state = 'sending'`)[0][0].(int64); n != 2 {
		t.Fatalf("%d sending, want 2", n)
	}
}

// Enrolling, one contact or a batch, announces the new work on the work
// channel (after the transaction commits), so a dispatcher wakes at once.
func TestEnrollingWakesTheDispatcher(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woken := make(chan string, 16)
	go w.store.Listen(ctx, func(tenant string) { woken <- tenant })
	// Wait until the listener's LISTEN has run.
	for dbtest.Query(t, w.url, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %dripdrop_work%'`)[0][0].(int64) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	expect := func(what string) {
		t.Helper()
		select {
		case tenant := <-woken:
			if tenant != w.tenant {
				t.Fatalf("%s: woken for %q", what, tenant)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}
	w.enroll("one@x.example", nil)
	expect("enroll")
	email := "two@x.example"
	if _, err := w.store.EnrollBatch(ctx, w.tenant, "welcome", []dripdrop.ContactInput{{Email: &email}}); err != nil {
		t.Fatal(err)
	}
	expect("batch")
}

// A send gives its slot back when its SMTP conversation ends, not when its
// record commits: with one worker, the second contact is sent while the
// first one's record waits for a lock on its enrollment. The first send
// is recorded once the lock goes, and nothing is sent twice.
func TestSlotFreedBeforeTheRecord(t *testing.T) {
	// Not parallel: it times a held record against the 2 s slow-record
	// threshold.
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Note.", 0))
	first := w.enroll("first@x.example", nil)
	w.enroll("second@x.example", nil)
	// Another session holds the first enrollment: its record (which
	// locks the enrollment to complete it) waits.
	other := dbtest.Connect(t, w.url)
	other.Query("BEGIN")
	other.Query("SELECT id FROM enrollments WHERE id = $1 FOR UPDATE", first.ID)
	logs := &syncbuf.Buffer{}
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 1, Lease: time.Minute, SendTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		other.Query("ROLLBACK") // a failed test must not leave the record waiting
		cancel()
		<-done
	}()
	deadline := time.Now().Add(30 * time.Second)
	for len(w.sink.Messages()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("with the first record waiting, the sink got %d messages, want 2", len(w.sink.Messages()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if to := w.sink.Messages()[0].To[0]; to != "first@x.example" {
		t.Fatalf("first message to %s, want first@x.example", to)
	}
	if state := w.enrollment(first.ID).Executions[0].State; state != "sending" {
		t.Fatalf("first execution %s while its enrollment is locked, want sending", state)
	}
	// Held well past the slow-record threshold (2 s), the record is
	// reported.
	time.Sleep(time.Until(w.sink.Messages()[0].ReceivedAt.Add(3500 * time.Millisecond)))
	other.Query("ROLLBACK")
	for w.enrollment(first.ID).Executions[0].State != "sent" {
		if time.Now().After(deadline) {
			t.Fatal("the first send was not recorded after the lock went")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(w.sink.Messages()); n != 2 {
		t.Fatalf("sink got %d messages, want 2", n)
	}
	if !strings.Contains(logs.String(), "recording sends was slow") {
		t.Fatalf("no slow-record warning in the log:\n%s", logs.String())
	}
}

// An adapter whose due work a claim's limit left unclaimed stays due: the
// next claim, at the same instant, takes it (before, its place in the
// ready queue moved to when the claim's hold would end, 30 s on).
func TestUnclaimedAdapterStaysDue(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Note.", 0))
	ctx := context.Background()
	for i := 1; i < 3; i++ {
		name, prov, from := fmt.Sprintf("m%d", i), "sink", fmt.Sprintf("m%d@acme.example.com", i)
		a, err := w.store.CreateAdapter(ctx, w.tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
			Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.store.AddPoolMember(ctx, w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &a.ID}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		w.enroll(e, nil)
	}
	seen := map[uuid.UUID]bool{}
	for round := 1; round <= 3; round++ {
		claims, err := claimTenant(w.store, ctx, w.tenant, 1, time.Minute)
		if err != nil || len(claims) != 1 {
			t.Fatalf("claim %d: %d claimed, %v; want 1", round, len(claims), err)
		}
		if seen[claims[0].AdapterID] {
			t.Fatalf("claim %d: adapter %s again", round, claims[0].AdapterID)
		}
		seen[claims[0].AdapterID] = true
	}
}

// A reservation leaves the row of an adapter without a gap alone when it
// wrote it less than a second before: its last_send_at (read only by the
// gap policy, which does not apply) is kept to the second.
func TestLastSendAtOfABusyAdapter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Note.", 0))
	for _, e := range []string{"a@x.example", "b@x.example", "c@x.example"} {
		w.enroll(e, nil)
	}
	ctx := context.Background()
	reserveOne := func() time.Time {
		t.Helper()
		claims, err := claimTenant(w.store, ctx, w.tenant, 1, time.Minute)
		if err != nil || len(claims) != 1 {
			t.Fatalf("claim %d, %v", len(claims), err)
		}
		out, err := w.store.ReserveClaimed(ctx, claims, time.Minute)
		if err != nil || out[0].Outcome != db.Reserved {
			t.Fatalf("reserve %+v, %v", out, err)
		}
		a, err := w.store.GetAdapter(ctx, w.tenant, w.adapter.ID)
		if err != nil || a.LastSendAt == nil {
			t.Fatalf("adapter %+v, %v", a.LastSendAt, err)
		}
		return *a.LastSendAt
	}
	first := w.clock.Now()
	if got := reserveOne(); !got.Equal(first) {
		t.Fatalf("first last_send_at %v, want %v", got, first)
	}
	w.clock.Add(500 * time.Millisecond)
	if got := reserveOne(); !got.Equal(first) {
		t.Fatalf("last_send_at half a second on %v, want it kept at %v", got, first)
	}
	w.clock.Add(time.Second)
	if got := reserveOne(); !got.Equal(w.clock.Now()) {
		t.Fatalf("last_send_at over a second on %v, want %v", got, w.clock.Now())
	}
}
