package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/webhook"
)

// received is one request a receiver accepted, after verifying it.
type received struct {
	id, timestamp string
	event         map[string]any
	verified      bool
}

// receiver is an httptest server that verifies Standard Webhooks signatures
// with its own HMAC code (not the engine's) and answers with the statuses
// queued in answers (then 200).
type receiver struct {
	*httptest.Server
	secret  string
	mu      sync.Mutex
	got     []received
	answers []int
}

// verify is an independent Standard Webhooks verifier: the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>", the key the base64 after
// "whsec_", the header a space-separated list of "v1,<base64 sig>".
func verify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := m.Sum(nil)
	for _, s := range strings.Fields(h.Get("webhook-signature")) {
		v, sig, ok := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if ok && v == "v1" && err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		r.mu.Lock()
		rec := received{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"), event: ev, verified: verify(r.secret, req.Header, body)}
		r.got = append(r.got, rec)
		status := 200
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

type world struct {
	t      *testing.T
	clock  *testkit.Clock
	store  *db.Store
	worker *webhook.Worker
	events *testkit.Recorder
	url    string
}

func newWorld(t *testing.T, tenants ...string) *world {
	t.Helper()
	k := testkit.NewWorld(t, testkit.WithoutTenant(), testkit.WithStoreOptions(func(o *db.Options) { o.AllowPrivateTargets = true }))
	w := &world{t: t, clock: k.Clock, store: k.Store, events: k.Events, url: k.URL}
	for _, tn := range tenants {
		w.seed(tn)
	}
	w.worker = webhook.New(webhook.Config{Store: w.store, AllowPrivate: true, Jitter: func() float64 { return 0.5 }})
	return w
}

// seed creates a tenant with an adapter, a pool and a one-step sequence.
func (w *world) seed(tenant string) {
	ctx := context.Background()
	if _, _, err := w.store.CreateTenant(ctx, tenant, ""); err != nil {
		w.t.Fatal(err)
	}
	name, prov, from := "Ada", "smtp", "ada@acme.example.com"
	a, err := w.store.CreateAdapter(ctx, tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: 2525, TLS: "none"}})
	if err != nil {
		w.t.Fatal(err)
	}
	pn := "main"
	p, err := w.store.CreatePool(ctx, tenant, dripdrop.PoolInput{Name: &pn, Members: []dripdrop.MemberInput{{AdapterID: &a.ID}}})
	if err != nil {
		w.t.Fatal(err)
	}
	key, sname, skey, subj, body := "welcome", "Welcome", "intro", "Hello", "Hi."
	var delay int64 = 3600
	if _, err := w.store.CreateSequence(ctx, tenant, dripdrop.SequenceInput{Key: &key, Name: &sname, VersionInput: dripdrop.VersionInput{
		PoolID: &p.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"},
		Steps: []dripdrop.StepInput{{Key: &skey, Subject: &subj, BodyText: &body, DelaySeconds: &delay}},
	}}); err != nil {
		w.t.Fatal(err)
	}
}

// enroll enrolls a contact: one dripdrop.dispatch.adapter_pinned event.
func (w *world) enroll(tenant, email string) dripdrop.Enrollment {
	w.t.Helper()
	key, first := "welcome", "Bob"
	e, _, err := w.store.Enroll(context.Background(), tenant, dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &email, FirstName: &first}})
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func (w *world) subscribe(tenant, url string, events ...string) db.Subscription {
	w.t.Helper()
	sub, err := w.store.CreateSubscription(context.Background(), tenant, db.SubscriptionInput{URL: &url, Events: &events})
	if err != nil {
		w.t.Fatal(err)
	}
	return sub
}

func (w *world) tick() webhook.Stats {
	w.t.Helper()
	st, err := w.worker.Tick(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func TestDeliverySignedFilteredAndTenantIsolated(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme", "globex", "initech")
	acme, globex := newReceiver(t), newReceiver(t)
	acme.secret = w.subscribe("acme", acme.URL, "dripdrop.dispatch.").Secret
	globex.secret = w.subscribe("globex", globex.URL).Secret
	if !strings.HasPrefix(acme.secret, "whsec_") {
		t.Fatalf("generated secret %q", acme.secret)
	}
	w.enroll("acme", "bob@example.com")
	w.enroll("acme", "carol@example.com")
	e := w.enroll("acme", "dave@example.com")
	if _, err := w.store.PauseEnrollment(context.Background(), "acme", e.ID); err != nil { // enrollment.paused: not in acme's filter
		t.Fatal(err)
	}
	w.enroll("initech", "erin@example.com") // no subscription: in the outbox (its feed), delivered nowhere
	st := w.tick()
	if st.Delivered != 3 || st.Failed != 0 {
		t.Fatalf("tick: %+v, want 3 delivered", st)
	}
	got := acme.all()
	if len(got) != 3 {
		t.Fatalf("acme received %d, want 3", len(got))
	}
	ids := map[string]bool{}
	for _, r := range got {
		if !r.verified {
			t.Errorf("signature of %s does not verify", r.id)
		}
		ts, _ := strconv.ParseInt(r.timestamp, 10, 64)
		if ts != w.clock.Now().Unix() {
			t.Errorf("webhook-timestamp %s, want %d", r.timestamp, w.clock.Now().Unix())
		}
		if r.event["name"] != "dripdrop.dispatch.adapter_pinned" || r.event["tenant_key"] != "acme" || fmt.Sprint(r.event["id"]) != r.id {
			t.Errorf("event %v (webhook-id %s)", r.event, r.id)
		}
		for _, k := range []string{"id", "name", "time", "tenant_key", "measurements", "metadata"} {
			if _, ok := r.event[k]; !ok {
				t.Errorf("event lacks %q: %v", k, r.event)
			}
		}
		if b, _ := json.Marshal(r.event); strings.Contains(string(b), "@") {
			t.Errorf("payload carries an address: %s", b)
		}
		ids[r.id] = true
	}
	if len(ids) != 3 {
		t.Errorf("webhook ids %v are not distinct", ids)
	}
	if n := len(globex.all()); n != 0 {
		t.Errorf("globex received %d of acme's events", n)
	}
	if n := dbtest.Query(t, w.url, "SELECT count(*) FROM telemetry_outbox WHERE tenant_key = 'initech'")[0][0].(int64); n == 0 {
		t.Errorf("initech's events are not in its outbox (its feed)")
	}
	if n := dbtest.Query(t, w.url, "SELECT count(*) FROM webhook_deliveries WHERE tenant_key = 'initech'")[0][0].(int64); n != 0 {
		t.Errorf("initech has no subscription but %d deliveries", n)
	}
	// The paused event is in acme's outbox (no_match for its filter).
	feed := w.events.Feed(context.Background(), w.store, "acme", "dripdrop.enrollment.")
	if len(feed) != 1 || feed[0].Name != "dripdrop.enrollment.paused" {
		t.Fatalf("acme enrollment feed %v", feed)
	}
	if w.tick() != (webhook.Stats{}) {
		t.Error("a second tick redelivered")
	}
	sub, _, err := w.store.ListSubscriptions(context.Background(), "acme", db.Page{})
	if err != nil {
		t.Fatal(err)
	}
	full, err := w.store.GetSubscription(context.Background(), "acme", sub[0].ID)
	if err != nil || len(full.Deliveries) != 3 || *full.Deliveries[0].StatusCode != 200 || full.Deliveries[0].ResponseSnippet != "answer 200" {
		t.Fatalf("delivery log %+v, %v", full.Deliveries, err)
	}
	if full.Secret != "" {
		t.Error("the secret is shown again after creation")
	}
}

func TestRetryKeepsWebhookIDAndFollowsSchedule(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	r := newReceiver(t)
	r.answers = []int{500, 503}
	r.secret = w.subscribe("acme", r.URL).Secret
	w.enroll("acme", "bob@example.com")
	if st := w.tick(); st.Failed != 1 {
		t.Fatalf("first attempt: %+v", st)
	}
	w.clock.Add(4 * time.Second) // due at +5 s (jitter 0)
	if st := w.tick(); st != (webhook.Stats{}) {
		t.Fatalf("retried before 5 s: %+v", st)
	}
	w.clock.Add(time.Second)
	if st := w.tick(); st.Failed != 1 {
		t.Fatalf("second attempt: %+v", st)
	}
	w.clock.Add(5*time.Minute - time.Second)
	if st := w.tick(); st != (webhook.Stats{}) {
		t.Fatalf("retried before 5 min: %+v", st)
	}
	w.clock.Add(time.Second)
	if st := w.tick(); st.Delivered != 1 {
		t.Fatalf("third attempt: %+v", st)
	}
	got := r.all()
	if len(got) != 3 || got[0].id != got[1].id || got[1].id != got[2].id {
		t.Fatalf("attempts %+v: want 3 with one webhook-id", got)
	}
	for _, g := range got {
		if !g.verified {
			t.Error("signature does not verify")
		}
	}
	subs, _, _ := w.store.ListSubscriptions(context.Background(), "acme", db.Page{})
	full, _ := w.store.GetSubscription(context.Background(), "acme", subs[0].ID)
	var codes []int
	for _, d := range full.Deliveries {
		codes = append(codes, *d.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 503 500]" || full.FailingSince != nil {
		t.Fatalf("log codes %v (newest first), failing_since %v", codes, full.FailingSince)
	}
}

func TestGoneDisablesSubscription(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	r := newReceiver(t)
	r.answers = []int{410}
	sub := w.subscribe("acme", r.URL)
	r.secret = sub.Secret
	w.enroll("acme", "bob@example.com")
	w.tick()
	got, err := w.store.GetSubscription(context.Background(), "acme", sub.ID)
	if err != nil || got.Active || got.DisabledReason == nil || *got.DisabledReason != "gone" {
		t.Fatalf("after 410: %+v, %v", got, err)
	}
	ev := w.events.Named("dripdrop.telemetry.subscription_disabled")
	if len(ev) != 1 || ev[0]["reason"] != "gone" || ev[0]["subscription_id"] != sub.ID.String() {
		t.Fatalf("subscription_disabled events %v", ev)
	}
	w.enroll("acme", "carol@example.com")
	w.tick()
	if n := len(r.all()); n != 1 {
		t.Fatalf("a disabled subscription received %d requests", n)
	}
}

func TestFiveDaysOfFailuresDisable(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	r := newReceiver(t)
	r.answers = make([]int, 100)
	for i := range r.answers {
		r.answers[i] = 500
	}
	sub := w.subscribe("acme", r.URL)
	r.secret = sub.Secret
	w.enroll("acme", "bob@example.com")
	for _, d := range append([]time.Duration{0}, webhook.Schedule[1:]...) {
		w.clock.Add(d)
		if st := w.tick(); st.Failed != 1 {
			t.Fatalf("attempt after %v: %+v", d, st)
		}
	}
	w.clock.Add(24 * time.Hour)
	if st := w.tick(); st != (webhook.Stats{}) {
		t.Fatalf("attempted after the schedule ended: %+v", st)
	}
	if got, _ := w.store.GetSubscription(context.Background(), "acme", sub.ID); !got.Active {
		t.Fatal("disabled before 5 days of failures")
	}
	w.clock.Add(5*24*time.Hour - webhook.Schedule[1] - 24*time.Hour) // 5 days since the first failure, give or take the schedule's total
	w.enroll("acme", "carol@example.com")
	for got, _ := w.store.GetSubscription(context.Background(), "acme", sub.ID); got.Active; got, _ = w.store.GetSubscription(context.Background(), "acme", sub.ID) {
		w.clock.Add(time.Hour)
		w.tick()
	}
	got, _ := w.store.GetSubscription(context.Background(), "acme", sub.ID)
	if *got.DisabledReason != "failing" || got.FailingSince == nil || w.clock.Now().Sub(*got.FailingSince) < db.DisableAfter {
		t.Fatalf("disabled %+v at %v", got, w.clock.Now())
	}
	if ev := w.events.Named("dripdrop.telemetry.subscription_disabled"); len(ev) != 1 || ev[0]["reason"] != "failing" {
		t.Fatalf("events %v", ev)
	}
}

func TestRedeliverSinceCursor(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	r := newReceiver(t)
	sub := w.subscribe("acme", r.URL, "dripdrop.dispatch.")
	r.secret = sub.Secret
	for _, e := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		w.enroll("acme", e)
	}
	w.tick()
	first := r.all()
	if len(first) != 3 {
		t.Fatalf("received %d", len(first))
	}
	byID := func(rs []received) { // deliveries run in parallel: order by event id
		slices.SortFunc(rs, func(a, b received) int { x, _ := strconv.Atoi(a.id); y, _ := strconv.Atoi(b.id); return x - y })
	}
	byID(first)
	second, _ := strconv.ParseInt(first[1].id, 10, 64)
	dbtest.WaitOutboxPublished(t, w.url)
	n, err := w.store.Redeliver(context.Background(), "acme", sub.ID, second, true)
	if err != nil || n != 2 {
		t.Fatalf("redeliver since %d: %d, %v", second, n, err)
	}
	w.tick()
	all := r.all()
	byID(all[3:])
	if len(all) != 5 || all[3].id != first[1].id || all[4].id != first[2].id || !all[3].verified {
		t.Fatalf("redelivered %+v", all[3:])
	}
	one, _ := strconv.ParseInt(first[0].id, 10, 64)
	if n, err := w.store.Redeliver(context.Background(), "acme", sub.ID, one, false); err != nil || n != 1 {
		t.Fatalf("redeliver single: %d, %v", n, err)
	}
	w.tick()
	if all := r.all(); len(all) != 6 || all[5].id != first[0].id {
		t.Fatalf("single redelivery %+v", all[5:])
	}
	if _, err := w.store.Redeliver(context.Background(), "acme", uuid.New(), one, false); dripdrop.ErrorCode(err) != dripdrop.ECodeNotFound {
		t.Fatalf("redeliver to an unknown subscription: %v", err)
	}
}

func TestDialTimeGuardRefusesLoopback(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "acme")
	r := newReceiver(t)
	r.secret = w.subscribe("acme", r.URL).Secret // the store allows private targets; the worker does not
	w.worker = webhook.New(webhook.Config{Store: w.store, Jitter: func() float64 { return 0.5 }})
	w.enroll("acme", "bob@example.com")
	if st := w.tick(); st.Failed != 1 {
		t.Fatalf("tick %+v", st)
	}
	if n := len(r.all()); n != 0 {
		t.Fatalf("the guard let %d requests through", n)
	}
	subs, _, _ := w.store.ListSubscriptions(context.Background(), "acme", db.Page{})
	full, _ := w.store.GetSubscription(context.Background(), "acme", subs[0].ID)
	if len(full.Deliveries) != 1 || full.Deliveries[0].Error == nil || !strings.Contains(*full.Deliveries[0].Error, "loopback") {
		t.Fatalf("log %+v", full.Deliveries)
	}
}

// metrics records OutboxMetrics calls as "name label" → sum.
type metrics struct {
	mu  sync.Mutex
	got map[string]float64
	lag float64
}

func (m *metrics) add(k string, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got[k] += v
}
func (m *metrics) OutboxEventsPublished(ev string)        { m.add("published "+ev, 1) }
func (m *metrics) OutboxEventsFanOut(ev string, n int)    { m.add("fanout "+ev, float64(n)) }
func (m *metrics) OutboxEventsNoMatch(ev string)          { m.add("no_match "+ev, 1) }
func (m *metrics) OutboxFailures(stage string)            { m.add("failures "+stage, 1) }
func (m *metrics) RedeliverRequests(scope string)         { m.add("redeliver "+scope, 1) }
func (m *metrics) JanitorRowsDeleted(table string, n int) { m.add("janitor "+table, float64(n)) }
func (m *metrics) NotifyMissed()                          { m.add("notify_missed", 1) }
func (m *metrics) SetPublisherLag(s float64)              { m.mu.Lock(); m.lag = s; m.mu.Unlock() }
func (m *metrics) DispatchPhase(string, float64)          {}

func TestOutboxMetricsAndJanitor(t *testing.T) {
	t.Parallel()
	m := &metrics{got: map[string]float64{}}
	k := testkit.NewWorld(t, testkit.WithoutTenant(), testkit.WithStoreOptions(func(o *db.Options) {
		o.AllowPrivateTargets, o.OutboxMetrics = true, m
	}))
	w := &world{t: t, clock: k.Clock, store: k.Store, events: k.Events, url: k.URL}
	w.seed("acme")
	w.worker = webhook.New(webhook.Config{Store: w.store, AllowPrivate: true, Metrics: m, Jitter: func() float64 { return 0.5 }})
	r := newReceiver(t)
	r.answers = []int{500}
	r.secret = w.subscribe("acme", r.URL, "dripdrop.dispatch.").Secret
	e := w.enroll("acme", "bob@example.com")
	if _, err := w.store.PauseEnrollment(context.Background(), "acme", e.ID); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(30 * time.Second)
	w.worker.Tick(context.Background()) // fans out (lag 30 s), the delivery fails
	if m.lag != 30 {
		t.Errorf("publisher lag %v, want 30", m.lag)
	}
	w.clock.Add(5 * time.Second)
	w.tick() // delivered
	want := map[string]float64{
		"published dripdrop.dispatch.adapter_pinned": 1, "published dripdrop.enrollment.paused": 1,
		"fanout dripdrop.dispatch.adapter_pinned": 1, "no_match dripdrop.enrollment.paused": 1,
		"failures deliver": 1,
	}
	if fmt.Sprint(m.got) != fmt.Sprint(want) || m.lag != 0 {
		t.Fatalf("metrics %v lag %v, want %v lag 0", m.got, m.lag, want)
	}

	// The janitor keeps everything younger than the retention.
	if err := webhook.Janitor(context.Background(), w.store, m, 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(m.got) != len(want) {
		t.Fatalf("janitor deleted young rows: %v", m.got)
	}
	w.clock.Add(8 * 24 * time.Hour)
	if err := webhook.Janitor(context.Background(), w.store, m, 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if m.got["janitor webhook_delivery_attempts"] != 2 || m.got["janitor webhook_deliveries"] != 1 || m.got["janitor telemetry_outbox"] != 2 {
		t.Fatalf("janitor counts %v", m.got)
	}
}
