package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// TestRecordOutboxRowsMatchTheEvents: the record statement writes the
// outbox rows of its "sent" and "completed" events itself, built from the
// rows it records. They must equal, row for row, the events emitted in
// process (evSent's and evEnrollment's metadata, {"count": 1}), be
// no_match while the tenant has no active subscription and pending once it
// has one; and each sent message event's data must name the send's
// Message-ID and attempt.
func TestRecordOutboxRowsMatchTheEvents(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	const sent, completed = "dripdrop.dispatch.sent", "dripdrop.enrollment.completed"
	outbox := func(name, status string) []string {
		t.Helper()
		var out []string
		for _, r := range dbtest.Query(t, w.url, `SELECT metadata, measurements FROM telemetry_outbox
			WHERE tenant_key = $1 AND name = $2 AND status = $3 ORDER BY id`, w.tenant, name, status) {
			if m := r[1].(map[string]any); len(m) != 1 || m["count"] != float64(1) {
				t.Fatalf("%s measurements %v", name, m)
			}
			b, _ := json.Marshal(r[0])
			out = append(out, string(b))
		}
		return out
	}
	emitted := func(name string) []string {
		var out []string
		for _, m := range w.ev.Named(name) {
			b, _ := json.Marshal(m)
			out = append(out, string(b))
		}
		return out
	}
	same := func(rows, evs []string) {
		t.Helper()
		rows, evs = slices.Sorted(slices.Values(rows)), slices.Sorted(slices.Values(evs))
		if !slices.Equal(rows, evs) {
			t.Fatalf("outbox rows and emitted events differ:\n rows    %v\n emitted %v", rows, evs)
		}
	}
	for i := range 4 {
		w.enroll(fmt.Sprintf("c%d@example.com", i), nil)
	}
	w.run()
	if n := len(w.sink.Messages()); n != 12 {
		t.Fatalf("%d messages, want 12 (3 steps × 4)", n)
	}
	if len(outbox(sent, "no_match")) != 12 || len(outbox(completed, "no_match")) != 4 {
		t.Fatalf("%d sent and %d completed no_match rows, want 12 and 4", len(outbox(sent, "no_match")), len(outbox(completed, "no_match")))
	}
	same(outbox(sent, "no_match"), emitted(sent))
	same(outbox(completed, "no_match"), emitted(completed))
	for _, r := range dbtest.Query(t, w.url, `SELECT e.data, x.out_message_id, x.attempt FROM message_events e
		JOIN step_executions x ON x.tenant_key = e.tenant_key AND x.id = e.step_execution_id
		WHERE e.tenant_key = $1 AND e.type = 'sent'`, w.tenant) {
		d := r[0].(map[string]any)
		if len(d) != 2 || d["out_message_id"] != r[1] || d["attempt"] != float64(r[2].(int32)) {
			t.Fatalf("sent event data %v, want the send's Message-ID %v and attempt %v", d, r[1], r[2])
		}
	}

	hook := "https://hooks.example.com/dripdrop"
	if _, err := w.store.CreateSubscription(context.Background(), w.tenant, db.SubscriptionInput{URL: &hook}); err != nil {
		t.Fatal(err)
	}
	w.ev.Reset()
	w.enroll("late@example.com", nil)
	w.run()
	if len(outbox(sent, "pending")) != 3 || len(outbox(completed, "pending")) != 1 || len(outbox(sent, "no_match")) != 12 {
		t.Fatalf("after subscribing: %d sent and %d completed pending rows, want 3 and 1", len(outbox(sent, "pending")), len(outbox(completed, "pending")))
	}
	same(outbox(sent, "pending"), emitted(sent))
	same(outbox(completed, "pending"), emitted(completed))
}
