package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
)

// A delivery report that is the sender's failure (the sending domain's
// DMARC) keeps the prospect: no suppression, no stop; the step fails for
// the sender, the enrollment waits paused (sender_rejected), the adapter
// counts an adapter error, and once the sender is fixed a retry sends the
// step again before the sequence goes on.
func TestSenderFaultBounceKeepsTheProspect(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0), step("bump", "", "Bump", 86400))
	id := f.enroll("bob@example.com")
	f.run()
	first := f.sentMessageID("bob@example.com")
	res := f.inbound(201, map[string]any{"message_id": "<dsn-dmarc@mx.example.com>", "in_reply_to": first,
		"from": "mailer-daemon@mx.example.com", "subject": "Undelivered Mail Returned to Sender", "intent": "bounce",
		"body_text": "<bob@example.com>: host mx.example.com said: 550 5.7.26 Unauthenticated email from acme.example.com is not accepted due to domain's DMARC policy"})
	fx := res["effects"].(map[string]any)
	if fx["sender_fault"] != true || fx["fault_reason"] != "auth_rejected" || fx["suppressed"] != false || len(fx["stopped"].([]any)) != 0 {
		t.Fatalf("effects: %v", fx)
	}
	if sup, _ := f.store.IsSuppressed(context.Background(), f.tenant, "bob@example.com"); sup {
		t.Fatal("the prospect was suppressed for the sender's failure")
	}
	e := f.enrollment(uuid.MustParse(id))
	if e.State != dripdrop.EnrollmentPaused || e.PauseReason == nil || *e.PauseReason != "sender_rejected" {
		t.Fatalf("enrollment %s %v, want paused sender_rejected", e.State, e.PauseReason)
	}
	h := f.call(200, "GET", "/v1/adapters/"+f.adapter.ID.String()+"/health", nil)
	if h["adapter_failures"] != float64(1) {
		t.Fatalf("adapter failures %v, want 1", h["adapter_failures"])
	}
	got := f.feed([]string{"dripdrop.ingest.inbound_message", "dripdrop.dispatch.adapter_error", "dripdrop.enrollment.paused"})
	if md := got["dripdrop.ingest.inbound_message"][0]["metadata"].(map[string]any); md["fault"] != "sender" || md["intent"] != "bounce" {
		t.Fatalf("inbound_message %v", md)
	}
	if md := got["dripdrop.dispatch.adapter_error"][0]["metadata"].(map[string]any); md["reason"] != "auth_rejected" {
		t.Fatalf("adapter_error %v", md)
	}

	// The sender is fixed: retry sends the step again (a new attempt
	// window, a new Message-ID), once the adapter's backoff is over.
	f.call(200, "POST", "/v1/enrollments/"+id+"/retry", nil)
	f.clock.Add(2 * time.Minute)
	f.run()
	msgs := f.sink.Messages()
	if len(msgs) != 2 || msgs[1].MessageID == first || msgs[1].Header().Get("In-Reply-To") != "" {
		t.Fatalf("%d messages after the retry (want the first step again, a new first message)", len(msgs))
	}
	e = f.enrollment(uuid.MustParse(id))
	if e.State != dripdrop.EnrollmentActive {
		t.Fatalf("after the retry: %s", e.State)
	}
	var sent, failed, pending int
	for _, x := range e.Executions {
		switch {
		case x.StepKey == "intro" && x.State == "failed" && x.ErrorCode != nil && *x.ErrorCode == "sender_rejected":
			failed++
		case x.StepKey == "intro" && x.State == "sent":
			sent++
		case x.StepKey == "bump" && x.State == "scheduled":
			pending++
		}
	}
	if failed != 1 || sent != 1 || pending != 1 {
		t.Fatalf("executions: %d failed for the sender, %d resent, %d next pending; want 1 each: %+v", failed, sent, pending, e.Executions)
	}
}
