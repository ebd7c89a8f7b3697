package dispatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// TestDeferralCostIsConstant: 10 000 due executions behind one adapter that
// has reached its daily cap. The first tick claims at most one batch and
// blocks the adapter until its next local midnight; later ticks read and
// write nothing for that backlog.
func TestDeferralCostIsConstant(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{DailyCap: dripdrop.Nullable[int]{Set: true, Valid: true, Value: 1}}, step("only", "Hi", "Body", 0))
	var contacts []dripdrop.ContactInput
	for i := 0; i < 10000; i++ {
		email := fmt.Sprintf("c%d@example.com", i)
		contacts = append(contacts, dripdrop.ContactInput{Email: &email})
	}
	if _, err := w.store.EnrollBatch(context.Background(), w.tenant, "welcome", contacts); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	writes := func() (deferredEvents, touched int64) {
		r := dbtest.Query(t, w.url, `SELECT (SELECT count(*) FROM message_events WHERE type = 'deferred'),
			(SELECT count(*) FROM step_executions WHERE defer_reason IS NOT NULL OR state <> 'scheduled')`)
		return r[0][0].(int64), r[0][1].(int64)
	}
	claimed := make([]int, 6)
	for i := range claimed {
		n, err := w.disp.Tick(ctx)
		if err != nil {
			t.Fatal(err)
		}
		w.disp.Drain()
		claimed[i] = n
	}
	ev, touched := writes()
	// Tick 1 sends the one allowed message and defers at most a worker
	// batch (4); ticks 2–6 claim nothing.
	if claimed[0] > 4 || claimed[1]+claimed[2]+claimed[3]+claimed[4]+claimed[5] != 0 {
		t.Fatalf("claims per tick %v: blocked backlog is still being claimed", claimed)
	}
	if ev > 4 || touched > 4 || len(w.sink.Messages()) != 1 {
		t.Fatalf("deferred events %d, executions written %d, sent %d", ev, touched, len(w.sink.Messages()))
	}
	if rc := w.ev.Named("dripdrop.policy.ramp_cap"); len(rc) < 1 || rc[0]["cap"] != 1 || rc[0]["sent_count"] != 1 {
		t.Fatalf("ramp_cap events %v", rc)
	}
	a, err := w.store.GetAdapter(ctx, w.tenant, w.adapter.ID)
	if err != nil || a.NextSendAt == nil || !a.NextSendAt.Equal(w.clock.Now().Truncate(24*60*60*1e9).Add(24*60*60*1e9)) {
		t.Fatalf("adapter next_send_at %v, want the next UTC midnight", a.NextSendAt)
	}
	// At midnight the adapter is ready again and one more goes out.
	w.clock.Add(14*60*60*1e9 + 1e9)
	n, err := w.disp.Tick(ctx)
	w.disp.Drain()
	if err != nil || n == 0 || len(w.sink.Messages()) != 2 {
		t.Fatalf("after midnight: claimed %d, sent %d (%v)", n, len(w.sink.Messages()), err)
	}
}
