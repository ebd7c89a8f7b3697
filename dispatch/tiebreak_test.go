package dispatch_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// Executions of one adapter due at the same instant go in enrollment
// order (then execution id), whatever the rows' physical order: the claim
// takes them so and the reservation evaluates them so, the order the
// forecast replays (docs/forecast.md). The rows are first rewritten in reverse
// enrollment order (updates of an indexed column, which move them), and a
// daily cap lets two of the four claimed through.
func TestSameInstantTiesGoInEnrollmentOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	w.enrollBatch(w.tenant, 12, "c")
	var execs []uuid.UUID // in enrollment order
	for _, r := range dbtest.Query(t, w.url, `SELECT id, enrollment_id, scheduled_for = $1 FROM step_executions ORDER BY enrollment_id`, w.clock.Now()) {
		if !r[2].(bool) {
			t.Fatal("the batch's executions should all be due at the same instant")
		}
		execs = append(execs, uuid.UUID(r[0].([16]uint8)))
	}
	for _, id := range slices.Backward(execs) {
		dbtest.Exec(t, w.url, `UPDATE step_executions SET scheduled_for = scheduled_for - interval '1 hour' WHERE id = $1`, id)
		dbtest.Exec(t, w.url, `UPDATE step_executions SET scheduled_for = scheduled_for + interval '1 hour' WHERE id = $1`, id)
	}
	dbtest.Exec(t, w.url, `UPDATE adapters SET daily_cap = 2 WHERE id = $1`, w.adapter.ID)

	claimed, err := claimTenant(w.store, context.Background(), w.tenant, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for _, c := range claimed {
		got = append(got, c.ID)
	}
	slices.SortFunc(got, func(a, b uuid.UUID) int { return slices.Index(execs, a) - slices.Index(execs, b) })
	if !slices.Equal(got, execs[:4]) {
		t.Fatalf("claimed %v, want the first four in enrollment order %v", got, execs[:4])
	}
	// Evaluated in claim order whatever order the claims come in.
	slices.Reverse(claimed)
	res, err := w.store.ReserveClaimed(context.Background(), claimed, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := map[uuid.UUID]db.Outcome{execs[0]: db.Reserved, execs[1]: db.Reserved, execs[2]: db.Deferred, execs[3]: db.Released}
	for i, r := range res {
		if r.Outcome != want[claimed[i].ID] {
			t.Errorf("execution %d in enrollment order: %s, want %s", slices.Index(execs, claimed[i].ID), r.Outcome, want[claimed[i].ID])
		}
	}
}
