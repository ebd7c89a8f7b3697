package ingest_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/ingest"
)

func TestPlanEffects(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	active := ingest.Target{State: dripdrop.EnrollmentActive, Email: "bob@acme.example", StopOnReply: true, Location: time.UTC}
	company := active
	company.StopCompanyOnReply = true
	freemail := company
	freemail.Email = "bob@gmail.com"
	keep := active
	keep.StopOnReply = false
	done := active
	done.State = dripdrop.EnrollmentCompleted
	ret := ingest.Date{Year: 2026, Month: 12, Day: 3}
	back := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		c    ingest.Classification
		t    ingest.Target
		want ingest.Plan
	}{
		{"reply stops", ingest.Classification{Intent: ingest.Reply}, active, ingest.Plan{Log: "replied", Stop: "replied"}},
		{"reply, no stop_on_reply", ingest.Classification{Intent: ingest.Reply}, keep, ingest.Plan{Log: "replied"}},
		{"reply stops the company", ingest.Classification{Intent: ingest.Reply}, company, ingest.Plan{Log: "replied", Stop: "replied", CompanyDomain: "acme.example"}},
		{"never a free-mail company", ingest.Classification{Intent: ingest.Reply}, freemail, ingest.Plan{Log: "replied", Stop: "replied"}},
		{"ooo reschedules", ingest.Classification{Intent: ingest.OOO, ReturnDate: ret, HasReturnDate: true}, active, ingest.Plan{Log: "ooo", RescheduleTo: &back}},
		{"ooo of a completed enrollment", ingest.Classification{Intent: ingest.OOO, ReturnDate: ret, HasReturnDate: true}, done, ingest.Plan{Log: "ooo"}},
		{"hard bounce of the address", ingest.Classification{Intent: ingest.Bounce, Bounce: "hard", Fault: ingest.FaultRecipient}, active,
			ingest.Plan{Log: "bounced", LogSubtype: "hard", Stop: "bounced", Suppress: true, HealthInput: true}},
		{"soft bounce", ingest.Classification{Intent: ingest.Bounce, Bounce: "soft", Fault: ingest.FaultRecipient}, active, ingest.Plan{Log: "bounced", LogSubtype: "soft"}},
		{"the sender's failure", ingest.Classification{Intent: ingest.Bounce, Bounce: "hard", Fault: ingest.FaultSender, FaultReason: "auth_rejected"}, active,
			ingest.Plan{Log: "bounced", LogSubtype: "soft", SenderFault: true, FaultReason: "auth_rejected"}},
		{"complaint", ingest.Classification{Intent: ingest.Complaint}, active, ingest.Plan{Log: "complained", Stop: "complained", Suppress: true, HealthInput: true}},
		{"unsubscribe", ingest.Classification{Intent: ingest.Unsubscribe}, active, ingest.Plan{Log: "unsubscribed", Stop: "unsubscribed", Suppress: true}},
		{"auto reply", ingest.Classification{Intent: ingest.AutoReply}, active, ingest.Plan{Log: "auto_reply"}},
	}
	for _, c := range cases {
		if got := ingest.PlanEffects(c.c, c.t, now); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
