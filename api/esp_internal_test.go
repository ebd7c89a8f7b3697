package api

import (
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/ingest/esp"
)

// TestESPMessageMapping: what a provider bounce becomes for Ingest — hard
// only for a permanent recipient failure; temporary and sender-side
// failures are soft (class 4, subject and detail kept) and never suppress.
func TestESPMessageMapping(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		ev     esp.Event
		status string
		bounce string
		fault  string
	}{
		{"permanent user unknown", esp.Event{Permanent: true, Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 user unknown"}, "5.1.1", "hard", "recipient"},
		{"permanent without a status", esp.Event{Permanent: true}, "5.0.0", "hard", "recipient"},
		{"permanent with the code in the text", esp.Event{Permanent: true, Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound"}, "5.1.10", "hard", "recipient"},
		{"permanent but over quota", esp.Event{Permanent: true, Status: "5.2.2", Diagnostic: "552 5.2.2 mailbox full, over quota"}, "4.2.2", "soft", "recipient"},
		{"permanent but DMARC", esp.Event{Permanent: true, Status: "5.7.1", Diagnostic: "550 5.7.1 rejected by DMARC policy"}, "4.7.1", "soft", "sender"},
		{"permanent but blocklisted IP", esp.Event{Permanent: true, Diagnostic: "554 5.7.1 Client host blocked using zen.spamhaus.org"}, "4.7.1", "soft", "sender"},
		{"provider says sender's", esp.Event{Permanent: true, SenderSide: true, Status: "5.1.1"}, "4.1.1", "soft", "sender"},
		{"temporary", esp.Event{Status: "4.4.7", Diagnostic: "delivery expired"}, "4.4.7", "soft", "sender"},
		{"temporary mailbox", esp.Event{Status: "4.2.1", Diagnostic: "mailbox busy"}, "4.2.1", "soft", "recipient"},
	} {
		c.ev.Kind, c.ev.ID, c.ev.Recipient, c.ev.MessageID = esp.KindBounce, "e1", "a@x.example", "ours@us.example"
		m, intent, fault := espMessage("test", c.ev, now)
		got := ingest.Complete(m, intent)
		if intent != ingest.Bounce || m.Report.Recipients[0].Status != c.status || got.Bounce != c.bounce || string(fault) != c.fault ||
			m.MessageID != "e1" || m.Report.OriginalMessageID != "ours@us.example" {
			t.Errorf("%s: status %s bounce %s fault %s, want %s %s %s", c.name, m.Report.Recipients[0].Status, got.Bounce, fault, c.status, c.bounce, c.fault)
		}
	}
	for kind, want := range map[esp.Kind]ingest.Intent{esp.KindComplaint: ingest.Complaint, esp.KindUnsubscribe: ingest.Unsubscribe} {
		m, intent, _ := espMessage("test", esp.Event{Kind: kind, ID: "e2", Recipient: "a@x.example", MessageID: "ours@us.example"}, now)
		if got := ingest.Complete(m, intent); intent != want || got.Intent != want || len(m.Candidates()) != 1 || m.Candidates()[0].ID != "ours@us.example" {
			t.Errorf("%s: %s %+v %v", kind, intent, got, m.Candidates())
		}
	}
}
