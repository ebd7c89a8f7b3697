package dispatch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/dispatch"
)

// heldTransport holds every send until released, so a test can act while
// a worker has a reserved send in flight.
type heldTransport struct {
	dispatch.Transport
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldTransport) Send(ctx context.Context, d dispatch.Delivery) (dispatch.Receipt, error) {
	h.once.Do(func() { close(h.started) })
	<-h.release
	return h.Transport.Send(ctx, d)
}

// oooReply posts an out-of-office reply to the message the sink received
// for rcpt, returning on the 14th.
func oooReply(f *feedWorld, rcpt string) map[string]any {
	return f.inbound(201, map[string]any{"message_id": "<ooo-" + rcpt + ">", "in_reply_to": f.sentMessageID(rcpt),
		"from": rcpt, "subject": "Out of office", "body_text": "I am out of the office until December 14.", "intent": "ooo"})
}

// firstStepSent: a three-step sequence (the second step due at once, the
// third an hour after it) whose first step went out to bob.
func firstStepSent(t *testing.T) (*feedWorld, uuid.UUID) {
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0), step("bump", "", "Bump", 0), step("last", "", "Last", 3600))
	id := uuid.MustParse(f.enroll("bob@example.com"))
	if _, err := f.disp.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.disp.Drain()
	return f, id
}

// An out-of-office reply cannot race a worker: an execution claimed before
// the reply moves to the return time and the worker drops its claim; a
// send already in flight goes out, and its next step is scheduled no
// earlier than the return.
func TestOutOfOfficeFencesClaimedAndInFlightSends(t *testing.T) {
	t.Parallel()
	returnAt := time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC) // 09:00 on the stated day, the contact's zone (UTC)
	t.Run("claimed", func(t *testing.T) {
		t.Parallel()
		f, id := firstStepSent(t)
		ctx := context.Background()
		claims, err := claimTenant(f.store, ctx, f.tenant, 10, time.Minute)
		if err != nil || len(claims) != 1 {
			t.Fatalf("claim: %v %v", claims, err)
		}
		fx := oooReply(f, "bob@example.com")["effects"].(map[string]any)
		if fx["rescheduled"] != float64(1) {
			t.Fatalf("effects: %v", fx)
		}
		res, err := f.store.ReserveClaimed(ctx, claims, time.Minute)
		if err != nil || len(res) != 1 || res[0].Outcome != db.Released {
			t.Fatalf("the worker's reservation after the reply: %+v %v, want released", res, err)
		}
		f.run()
		if n := len(f.sink.Messages()); n != 1 {
			t.Fatalf("%d messages before the return, want 1", n)
		}
		e := f.enrollment(id)
		x := e.Executions[len(e.Executions)-1]
		if x.State != "scheduled" || !x.ScheduledFor.Equal(returnAt) {
			t.Fatalf("second step %s at %v, want scheduled at %v", x.State, x.ScheduledFor, returnAt)
		}
		f.clock.Add(returnAt.Sub(f.clock.Now()))
		f.run()
		if n := len(f.sink.Messages()); n != 2 {
			t.Fatalf("%d messages at the return, want 2", n)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		t.Parallel()
		f, id := firstStepSent(t)
		held := &heldTransport{Transport: sinkTransport(), started: make(chan struct{}), release: make(chan struct{})}
		disp, err := dispatch.New(dispatch.Config{Store: f.store, Transport: held, Workers: 1, Lease: time.Minute, SendTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := disp.Tick(context.Background())
			disp.Drain()
			done <- err
		}()
		<-held.started // the second step is reserved and in the SMTP conversation
		fx := oooReply(f, "bob@example.com")["effects"].(map[string]any)
		if fx["rescheduled"] != float64(0) || fx["return_at"] != returnAt.Format(time.RFC3339) {
			t.Fatalf("effects with a send in flight: %v", fx)
		}
		close(held.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n := len(f.sink.Messages()); n != 2 {
			t.Fatalf("%d messages, want 2 (the one in flight went out)", n)
		}
		e := f.enrollment(id)
		x := e.Executions[len(e.Executions)-1]
		if x.State != "scheduled" || !x.ScheduledFor.Equal(returnAt) {
			t.Fatalf("third step %s at %v, want scheduled at the return %v (not an hour after the send)", x.State, x.ScheduledFor, returnAt)
		}
	})
}
