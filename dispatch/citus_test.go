package dispatch_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

// TestCitusSmoke drives the engine on a distributed schema (a Citus
// coordinator with two workers, tenants on different workers): the HTTP
// API creates a sequence and enrolls, the dispatcher sends the three steps
// of each thread, a reply stops a second enrollment, and each tenant's feed
// lists what happened. It skips without a Citus build.
func TestCitusSmoke(t *testing.T) {
	t.Parallel()
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "citus", 2)
	k := testkit.NewWorld(t, testkit.WithURL(url), testkit.WithTenant(tenants[0]))
	w := &world{World: k, t: t, url: k.URL, clock: k.Clock, store: k.Store, sink: k.Sink, ev: k.Events,
		adapter: k.Adapter, pool: k.Pool, tenant: k.Tenant, box: k.Box}
	var err error
	w.disp, err = dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Telemetry: k.Bus, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(api.Config{Store: w.store}))
	t.Cleanup(hs.Close)
	keys := map[string]string{tenants[0]: k.APIKey}
	secondKey, _, _ := w.AddTenant(tenants[1], dripdrop.AdapterInput{})
	keys[tenants[1]] = secondKey

	for _, tn := range tenants {
		f := &feedWorld{world: w, http: hs, key: keys[tn]}
		// POST /v1/sequences: a second sequence through the API.
		pool := f.call(200, "GET", "/v1/pools", nil)["data"].([]any)[0].(map[string]any)["id"]
		f.call(201, "POST", "/v1/sequences", map[string]any{"key": "api", "name": "API", "pool_id": pool,
			"send_window": map[string]any{"days": []int{0, 1, 2, 3, 4, 5, 6}, "start": "00:00", "end": "23:59", "timezone": "UTC"},
			"steps":       []map[string]any{{"key": "one", "subject": "Hi", "body_text": "One.", "delay_seconds": 0}}})
		f.enroll("bob-" + tn + "@example.com")
	}
	w.run()
	for _, tn := range tenants {
		n := 0
		for _, m := range w.sink.Messages() {
			if slices.Contains(m.To, "bob-"+tn+"@example.com") {
				n++
			}
		}
		if n != 3 {
			t.Errorf("tenant %s: the sink got %d messages for its contact, want the 3 steps", tn, n)
		}
	}
	// A reply to the first step stops a second enrollment before its
	// follow-ups.
	for _, tn := range tenants {
		f := &feedWorld{world: w, http: hs, key: keys[tn]}
		seq, name := "welcome", "Carol"
		email := "carol-" + tn + "@example.com"
		en, _, err := w.store.Enroll(context.Background(), tn, dripdrop.EnrollInput{SequenceKey: &seq, Contact: dripdrop.ContactInput{Email: &email, FirstName: &name}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.disp.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		w.disp.Drain()
		mid := f.sentMessageID(email)
		f.inbound(201, map[string]any{"message_id": "<reply-" + tn + "@example.com>", "from": email, "subject": "Re: Hello", "body_text": "Thanks, let's talk.", "in_reply_to": mid})
		w.run()
		n := 0
		for _, m := range w.sink.Messages() {
			if slices.Contains(m.To, email) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("tenant %s: %d messages to the contact who replied, want only the first", tn, n)
		}
		got, err := w.store.GetEnrollment(context.Background(), tn, en.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != dripdrop.EnrollmentStopped || got.StopReason == nil || *got.StopReason != "replied" {
			t.Errorf("tenant %s: after a reply the enrollment is %s (%v), want stopped by the reply", tn, got.State, got.StopReason)
		}
		evs := f.feed([]string{"dripdrop.dispatch.sent", "dripdrop.ingest.inbound_message", "dripdrop.enrollment.stopped"})
		if len(evs["dripdrop.dispatch.sent"]) < 4 {
			t.Errorf("tenant %s: the feed lists %d sends, want at least 4", tn, len(evs["dripdrop.dispatch.sent"]))
		}
	}
}
