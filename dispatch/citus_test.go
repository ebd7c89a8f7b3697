package dispatch_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
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
	rec := dbtest.NewStatementRecorder()
	k := testkit.NewWorld(t, testkit.WithURL(url), testkit.WithTenant(tenants[0]),
		testkit.WithStoreOptions(func(o *db.Options) { o.StatementHook = rec.Add }))
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
		var thread []string // Message-IDs, in the order sent
		for _, m := range w.sink.Messages() {
			if !slices.Contains(m.To, "bob-"+tn+"@example.com") {
				continue
			}
			if len(thread) > 0 {
				// A follow-up answers the message before it, referencing
				// the whole thread.
				if h := m.Header(); h.Get("In-Reply-To") != thread[len(thread)-1] || h.Get("References") != strings.Join(thread, " ") {
					t.Errorf("tenant %s: follow-up In-Reply-To %q, References %q; want the thread %v", tn, h.Get("In-Reply-To"), h.Get("References"), thread)
				}
			}
			thread = append(thread, m.MessageID)
		}
		if len(thread) != 3 {
			t.Errorf("tenant %s: the sink got %d messages for its contact, want the 3 steps", tn, len(thread))
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
	// The API's reads and operator actions, each tenant on its worker.
	for _, tn := range tenants {
		f := &feedWorld{world: w, http: hs, key: keys[tn]}
		ad := f.call(200, "GET", "/v1/adapters", nil)["data"].([]any)[0].(map[string]any)["id"].(string)
		for _, path := range []string{"/v1/adapters/" + ad, "/v1/adapters/" + ad + "/capacity", "/v1/adapters/" + ad + "/health",
			"/v1/pools", "/v1/sequences", "/v1/suppressions", "/v1/telemetry/subscriptions", "/v1/enrollments?sequence_key=welcome"} {
			f.call(200, "GET", path, nil)
		}
		seq := f.call(200, "GET", "/v1/sequences", nil)["data"].([]any)[0].(map[string]any)["id"].(string)
		f.call(200, "GET", "/v1/sequences/"+seq, nil)
		f.call(200, "GET", "/v1/sequences/"+seq+"/stats", nil)
		batch := f.call(200, "POST", "/v1/enrollments/batch", map[string]any{"sequence_key": "welcome", "contacts": []map[string]any{
			{"email": "dan-" + tn + "@example.com", "first_name": "Dan"}, {"email": "eve-" + tn + "@example.com", "first_name": "Eve"}}})
		results := batch["results"].([]any)
		if len(results) != 2 || results[0].(map[string]any)["status"] != "created" {
			t.Fatalf("tenant %s: batch results %v", tn, results)
		}
		id := results[0].(map[string]any)["enrollment_id"].(string)
		f.call(200, "GET", "/v1/enrollments/"+id, nil)
		f.call(200, "GET", "/v1/enrollments/"+id+"/explain", nil)
		if st := f.call(200, "POST", "/v1/enrollments/"+id+"/pause", nil)["state"]; st != "paused" {
			t.Errorf("tenant %s: paused enrollment is %v", tn, st)
		}
		if st := f.call(200, "POST", "/v1/enrollments/"+id+"/resume", nil)["state"]; st != "active" {
			t.Errorf("tenant %s: resumed enrollment is %v", tn, st)
		}
		if st := f.call(200, "POST", "/v1/enrollments/"+results[1].(map[string]any)["enrollment_id"].(string)+"/cancel", nil)["state"]; st != "cancelled" {
			t.Errorf("tenant %s: cancelled enrollment is %v", tn, st)
		}
		// A health signal from outside (a score: the adapter keeps sending).
		f.call(200, "POST", "/v1/adapters/"+ad+"/health", map[string]any{"health_score": 0.8, "source": "smoke"})
		if h := f.call(200, "GET", "/v1/adapters/"+ad+"/health", nil); h["score"] != 0.8 && h["health_score"] != 0.8 {
			t.Errorf("tenant %s: health after the signal %v, want score 0.8", tn, h)
		}
		f.call(201, "POST", "/v1/suppressions", map[string]any{"email": "blocked-" + tn + "@example.com"})
		f.call(201, "POST", "/v1/telemetry/subscriptions", map[string]any{"url": "https://hooks.example.com/" + tn})
	}
	// The resumed batch enrollment sends its three steps.
	before := len(w.sink.Messages())
	w.run()
	if got := len(w.sink.Messages()) - before; got != 2*3 {
		t.Errorf("after the batch: %d more messages, want 3 for each tenant's resumed enrollment", got)
	}
	// The leader's duties and the dispatcher's wait, as the loops call them.
	ctx := context.Background()
	if ok, err := w.store.TryLeadership(ctx, "dripdrop-leader", "smoke", time.Minute); !ok || err != nil {
		t.Fatalf("leadership: %t %v", ok, err)
	}
	for _, tn := range tenants {
		if n, err := w.store.RescueStale(ctx, tn); err != nil || n != 0 {
			t.Errorf("tenant %s: rescue %d, %v; want nothing stale", tn, n, err)
		}
		if _, err := w.store.HealthSweep(ctx, tn); err != nil {
			t.Errorf("tenant %s: health sweep: %v", tn, err)
		}
	}
	next, err := w.store.NextDue(ctx, tenants)
	if err != nil {
		t.Errorf("next due: %v", err)
	}
	for _, tn := range tenants {
		row := dbtest.Query(t, url, "SELECT min(due_at) FROM adapter_due WHERE tenant_key = $1 AND due_at < 'infinity'", tn)[0][0]
		at, queued := next[tn]
		if want, ok := row.(time.Time); ok != queued || (ok && !want.Equal(at)) {
			t.Errorf("tenant %s: next due %v (%t), the ready queue says %v", tn, at, queued, row)
		}
	}
	if err := w.store.ResignLeadership(ctx, "dripdrop-leader", "smoke"); err != nil {
		t.Fatal(err)
	}
	t.Run("every statement is a router query", func(t *testing.T) { dbtest.RequireRouterPlans(t, url, rec) })
}
