package dispatch_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/ingest"
)

// An out-of-office reply that moves a follow-up after a dispatcher claimed
// it (and before the reservation) wins: the claimed follow-up is not sent
// before the return day.
func TestOOOAfterClaimIsNotSent(t *testing.T) {
	w := newWorld(t, dripdrop.AdapterInput{}, step("intro", "Hello", "First note.", 0), step("bump", "", "Second note.", 86400))
	en := w.enroll("ooo@client.example", nil)
	w.run()
	first := w.enrollment(en.ID).Executions[0]
	if first.State != "sent" || first.OutMessageID == nil {
		t.Fatalf("first step: %s", first.State)
	}
	w.clock.Add(24 * time.Hour)
	ctx := context.Background()
	claims, err := w.store.ClaimTenant(ctx, w.tenant, 10, time.Minute)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim: %d, %v", len(claims), err)
	}
	back := w.clock.Now().AddDate(0, 0, 7)
	ret := ingest.Date{Year: back.Year(), Month: back.Month(), Day: back.Day()}
	res, err := w.store.Ingest(ctx, w.tenant, db.InboundInput{Intent: ingest.OOO, ReturnAt: &ret, Message: &ingest.Message{
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
