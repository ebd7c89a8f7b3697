package ingest

import (
	"time"

	"github.com/dripdrop/dripdrop"
)

// Target is what the effects of a correlated inbound message depend on:
// the enrollment the message answers and its version's settings.
type Target struct {
	State              dripdrop.EnrollmentState
	Email              string
	StopOnReply        bool
	StopCompanyOnReply bool
	// Location is the contact's time zone (else the sending window's): an
	// out-of-office return is 09:00 there.
	Location *time.Location
}

// Plan is what a correlated inbound message does, decided without I/O; the
// store carries it out in the transaction that stores the message
// (docs/ingest.md#what-each-intent-does).
type Plan struct {
	// Log is the message event to record (replied, ooo, auto_reply,
	// bounced, complained, unsubscribed), LogSubtype its hard/soft for a
	// bounce.
	Log, LogSubtype string
	// Stop is the stop reason for the enrollment, "" to keep it; with
	// Suppress the address is suppressed as well (the recipient's own
	// outcomes: a hard bounce, a complaint, an unsubscribe).
	Stop     string
	Suppress bool
	// CompanyDomain, when set, stops the tenant's other live enrollments at
	// that e-mail domain (company_replied).
	CompanyDomain string
	// HealthInput runs the sending adapter's health check (a hard bounce or
	// a complaint counts against it).
	HealthInput bool
	// SenderFault: the bounce was the sender's failure. The step fails for
	// the sender, the enrollment waits (sender_rejected) and the adapter
	// counts an adapter error with FaultReason; the prospect is kept.
	SenderFault bool
	FaultReason string
	// RescheduleTo, when set, moves the enrollment's pending executions to
	// the out-of-office return (and fences later steps behind it).
	RescheduleTo *time.Time
}

// PlanEffects decides the effects of classification c on target t at now:
// a reply stops the enrollment when its version stops on reply (and the
// company's other enrollments when it stops companies, never for free-mail
// domains); an out-of-office reply of a live enrollment reschedules it to
// its return; a hard bounce of the address, a complaint and an unsubscribe
// suppress the address and stop the enrollment (bounces and complaints
// also feed the adapter's health); a bounce that is the sender's failure
// keeps the prospect; anything else is only recorded.
func PlanEffects(c Classification, t Target, now time.Time) Plan {
	switch c.Intent {
	case Reply:
		p := Plan{Log: "replied"}
		if t.StopOnReply {
			p.Stop = dripdrop.StopReplied
		}
		if t.StopCompanyOnReply {
			if domain := dripdrop.EmailDomain(t.Email); domain != "" && !FreeMail(domain) {
				p.CompanyDomain = domain
			}
		}
		return p
	case OOO:
		p := Plan{Log: "ooo"}
		if t.State == dripdrop.EnrollmentActive || t.State == dripdrop.EnrollmentPaused {
			loc := t.Location
			if loc == nil {
				loc = time.UTC
			}
			at := ReturnAt(c.ReturnDate, c.HasReturnDate, loc, now).UTC()
			p.RescheduleTo = &at
		}
		return p
	case Bounce:
		if c.Fault == FaultSender {
			return Plan{Log: "bounced", LogSubtype: "soft", SenderFault: true, FaultReason: c.FaultReason}
		}
		p := Plan{Log: "bounced", LogSubtype: c.Bounce}
		if c.Bounce == "hard" {
			p.Stop, p.Suppress, p.HealthInput = dripdrop.StopBounced, true, true
		}
		return p
	case Complaint:
		return Plan{Log: "complained", Stop: dripdrop.StopComplained, Suppress: true, HealthInput: true}
	case Unsubscribe:
		return Plan{Log: "unsubscribed", Stop: dripdrop.StopUnsubscribed, Suppress: true}
	}
	return Plan{Log: "auto_reply"}
}
