package dispatch_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
)

// A hard bounce of the last step stops the completed enrollment as bounced
// (the address is bad; the sequence did not succeed); a reply to it leaves
// it completed.
func TestHardBounceOfTheLastStepStopsTheEnrollment(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Hello", 0))
	bounced := f.enroll("gone@example.com")
	replied := f.enroll("bob@example.com")
	f.run()
	for _, id := range []string{bounced, replied} {
		if e := f.enrollment(uuid.MustParse(id)); e.State != dripdrop.EnrollmentCompleted {
			t.Fatalf("after the last step: %s", e.State)
		}
	}
	res := f.inbound(201, map[string]any{"message_id": "<dsn-1@mx.example.com>", "in_reply_to": f.sentMessageID("gone@example.com"),
		"from": "mailer-daemon@mx.example.com", "subject": "Undelivered Mail Returned to Sender",
		"body_text": "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown", "intent": "bounce"})
	fx := res["effects"].(map[string]any)
	if fmt.Sprint(fx["stopped"]) != fmt.Sprint([]any{bounced}) || fx["suppressed"] != true {
		t.Fatalf("effects of the bounce: %v", fx)
	}
	if e := f.enrollment(uuid.MustParse(bounced)); e.State != dripdrop.EnrollmentStopped || e.StopReason == nil || *e.StopReason != dripdrop.StopBounced {
		t.Fatalf("bounced enrollment: %s %v", e.State, e.StopReason)
	}
	if got := f.feed([]string{"dripdrop.enrollment.stopped"})["dripdrop.enrollment.stopped"]; len(got) != 1 ||
		got[0]["metadata"].(map[string]any)["reason"] != "bounced" || got[0]["metadata"].(map[string]any)["enrollment_id"] != bounced {
		t.Fatalf("stopped events in the feed: %v", got)
	}
	f.inbound(201, map[string]any{"message_id": "<reply-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
		"from": "bob@example.com", "subject": "Re: Hi", "body_text": "Thanks, not now."})
	if e := f.enrollment(uuid.MustParse(replied)); e.State != dripdrop.EnrollmentCompleted {
		t.Fatalf("a reply after completion changed the enrollment to %s", e.State)
	}
}
