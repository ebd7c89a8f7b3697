package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/ingest/esp"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/webhook"
)

// TestCitusEndToEnd runs the engine's end-to-end behaviours on a
// distributed schema, each scenario on its own Citus database with two
// tenants on different workers: caps and gaps held by two engines racing
// one adapter, webhooks delivered and signed per tenant, the feed tailed
// through the API while the dispatcher sends, and the dashboard and the
// forecast reading each tenant's numbers (the forecast compared with the
// same scenario on a single PostgreSQL). Every statement the scenarios
// sent is then planned, as in TestCitusSmoke. It skips without a Citus
// build.
func TestCitusEndToEnd(t *testing.T) {
	t.Parallel()
	planURL := dbtest.CitusURL(t) // the plans are made here, after the scenarios' databases are gone
	rec := dbtest.NewStatementRecorder()
	t.Run("scenarios", func(t *testing.T) {
		for _, sc := range []struct {
			name string
			run  func(*testing.T, *dbtest.StatementRecorder)
		}{
			{"caps and gaps across two engines", citusCapsAcrossEngines},
			{"webhooks delivered per tenant", citusWebhooks},
			{"feed tailed through the API while sending", citusFeedTail},
			{"dashboard and forecast", citusDashboardForecast},
		} {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				sc.run(t, rec)
			})
		}
	})
	t.Run("every statement is a router query", func(t *testing.T) { dbtest.RequireRouterPlans(t, planURL, rec) })
}

// tenantsWorld is a dispatch world with several tenants (the kit's world
// for the first, the others added alike) and the HTTP API, dashboard
// included, on the same store.
type tenantsWorld struct {
	*world
	http     *httptest.Server
	tenants  []string
	keys     map[string]string           // tenant → API key
	adapters map[string]dripdrop.Adapter // tenant → its one adapter
}

// newTenantsWorld builds it on the database at url, tenant i with adapter
// input ins[i]; with rec, every statement the store sends is recorded.
func newTenantsWorld(t *testing.T, url string, rec *dbtest.StatementRecorder, tenants []string, ins []dripdrop.AdapterInput, steps []dripdrop.StepInput, storeOpts ...func(*db.Options)) *tenantsWorld {
	t.Helper()
	opts := []testkit.Option{testkit.WithURL(url), testkit.WithTenant(tenants[0]), testkit.WithAdapter(ins[0]), testkit.WithSteps(steps...),
		testkit.WithStoreOptions(func(o *db.Options) {
			if rec != nil {
				o.StatementHook = rec.Add
			}
			for _, f := range storeOpts {
				f(o)
			}
		})}
	k := testkit.NewWorld(t, opts...)
	w := &world{World: k, t: t, url: k.URL, clock: k.Clock, store: k.Store, sink: k.Sink, ev: k.Events,
		adapter: k.Adapter, pool: k.Pool, tenant: k.Tenant, box: k.Box}
	var err error
	w.disp, err = dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Telemetry: k.Bus, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tw := &tenantsWorld{world: w, tenants: tenants, keys: map[string]string{tenants[0]: k.APIKey}, adapters: map[string]dripdrop.Adapter{tenants[0]: k.Adapter}}
	for i, tn := range tenants[1:] {
		key, ad, _ := w.AddTenant(tn, ins[i+1], steps...)
		tw.keys[tn], tw.adapters[tn] = key, ad
	}
	tw.http = httptest.NewServer(api.New(api.Config{Store: w.store, DashboardKey: []byte("a dashboard key of at least 32 bytes")}))
	t.Cleanup(tw.http.Close)
	return tw
}

// api is the HTTP API as tenant tn.
func (w *tenantsWorld) api(tn string) *feedWorld {
	return &feedWorld{world: w.world, http: w.http, key: w.keys[tn]}
}

// sentTo lists the sink's messages to addresses ending in "-<tn>@example.com".
func (w *tenantsWorld) sentTo(tn string) []string {
	var ids []string
	for _, m := range w.sink.Messages() {
		if len(m.To) == 1 && strings.HasSuffix(m.To[0], "-"+tn+"@example.com") {
			ids = append(ids, m.MessageID)
		}
	}
	return ids
}

// contactsOf are n addresses of tenant tn (see sentTo).
func contactsOf(tn string, from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("c%d-%s@example.com", i, tn))
	}
	return out
}

// batchEnroll enrolls the addresses over POST /v1/enrollments/batch and
// requires each to be created.
func (w *tenantsWorld) batchEnroll(tn string, emails []string) []string {
	w.t.Helper()
	var ids []string
	for _, r := range w.api(tn).batch(emails...) {
		r := r.(map[string]any)
		if r["status"] != "created" {
			w.t.Fatalf("tenant %s: batch row %v, want created", tn, r)
		}
		ids = append(ids, r["enrollment_id"].(string))
	}
	if len(ids) != len(emails) {
		w.t.Fatalf("tenant %s: %d batch results for %d contacts", tn, len(ids), len(emails))
	}
	return ids
}

// counts runs a grouping query (key, count) and returns it as a map.
func counts(t *testing.T, url, sql string, args ...any) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range dbtest.Query(t, url, sql, args...) {
		out[fmt.Sprint(r[0])] = int(r[1].(int64))
	}
	return out
}

// settleEngine ticks d until a tick claims nothing (everything due at the
// clock's now is sent or deferred), without the testing.T of Settle, so
// that two engines can settle at once.
func settleEngine(d *dispatch.Dispatcher) error {
	for range 50 {
		n, err := d.Tick(context.Background())
		d.Drain()
		if err != nil || n == 0 {
			return err
		}
	}
	return errors.New("dispatch did not settle")
}

// citusCapsAcrossEngines: two engines (each its own store and connection
// pool on the coordinator) race for two tenants' backlogs. Tenant 0's
// adapter has a daily cap of 5, tenant 1's a cap of 4 and a minimum gap of
// 60 s. The clock moves 61 s after each round in which both engines
// settled at once: every round at most one send of the gapped adapter,
// and over eight rounds exactly each cap, never more — in the sink, the
// executions, the message events, the day's usage counters and the API's
// capacity.
func citusCapsAcrossEngines(t *testing.T, rec *dbtest.StatementRecorder) {
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "cap", 2)
	gap, caps := 60, []int{5, 4}
	w := newTenantsWorld(t, url, rec, tenants,
		[]dripdrop.AdapterInput{{DailyCap: testkit.Some(caps[0])}, {DailyCap: testkit.Some(caps[1]), MinGapSeconds: &gap}},
		[]dripdrop.StepInput{step("only", "Hi {{first_name}}", "One note.", 0)})
	const contacts = 12
	for _, tn := range tenants {
		w.batchEnroll(tn, contactsOf(tn, 0, contacts))
	}
	second, err := db.Open(context.Background(), url, db.Options{Vault: w.box, Clock: w.clock, Telemetry: w.ev.StrictBus(), StatementHook: rec.Add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	var sentBy [2]atomic.Int64
	var engines [2]*dispatch.Dispatcher
	for i, s := range []*db.Store{w.store, second} {
		if engines[i], err = dispatch.New(dispatch.Config{Store: s, Transport: sinkTransport(), Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second,
			OnSent: func(*db.SendJob) { sentBy[i].Add(1) }}); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 8 {
		before := len(w.sentTo(tenants[1]))
		errs := make([]error, len(engines))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, d := range engines {
			wg.Go(func() {
				<-start
				errs[i] = settleEngine(d)
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if n := len(w.sentTo(tenants[1])) - before; n > 1 {
			t.Errorf("round %d: the adapter with a 60 s gap sent %d messages at one instant, want at most 1", round, n)
		}
		w.clock.Add(time.Duration(gap+1) * time.Second)
	}
	t.Logf("sends by engine: %d and %d", sentBy[0].Load(), sentBy[1].Load())
	seen := map[string]int{}
	for _, m := range w.sink.Messages() {
		seen[m.MessageID]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	for i, tn := range tenants {
		if got := len(w.sentTo(tn)); got != caps[i] {
			t.Errorf("tenant %s: the sink got %d messages, want exactly the daily cap of %d", tn, got, caps[i])
		}
		states := counts(t, url, "SELECT state, count(*) FROM step_executions WHERE tenant_key = $1 GROUP BY state", tn)
		if want := map[string]int{"sent": caps[i], "scheduled": contacts - caps[i]}; !reflect.DeepEqual(states, want) {
			t.Errorf("tenant %s: executions by state %v, want %v", tn, states, want)
		}
		events := counts(t, url, "SELECT type, count(*) FROM message_events WHERE tenant_key = $1 AND type = 'sent' GROUP BY type", tn)
		usage := dbtest.Query(t, url, "SELECT coalesce(sum(sent), 0)::int FROM adapter_daily_usage WHERE tenant_key = $1", tn)[0][0].(int32)
		if events["sent"] != caps[i] || int(usage) != caps[i] {
			t.Errorf("tenant %s: %d sent events and %d sends on the day's counters, want the cap of %d", tn, events["sent"], usage, caps[i])
		}
		c := w.api(tn).call(200, "GET", "/v1/adapters/"+w.adapters[tn].ID.String()+"/capacity", nil)
		if c["sent"] != float64(caps[i]) || c["remaining"] != 0.0 || c["effective_cap"] != float64(caps[i]) {
			t.Errorf("tenant %s: capacity %v, want %d of %d sent, none remaining", tn, c, caps[i], caps[i])
		}
	}
	// The gapped adapter's sends, on the engine's clock, are a gap apart.
	rows := dbtest.Query(t, url, "SELECT occurred_at FROM message_events WHERE tenant_key = $1 AND type = 'sent' ORDER BY occurred_at", tenants[1])
	for i := 1; i < len(rows); i++ {
		if d := rows[i][0].(time.Time).Sub(rows[i-1][0].(time.Time)); d < time.Duration(gap)*time.Second {
			t.Errorf("tenant %s: sends %d and %d are %v apart, want at least %d s", tenants[1], i-1, i, d, gap)
		}
	}
}

// webhookReceiver records the deliveries of one subscription, checking
// each signature with the Standard Webhooks verifier of inbound ESP events.
type webhookReceiver struct {
	mu     sync.Mutex
	secret string
	now    func() time.Time
	ids    map[int64]int // event id → deliveries
	names  map[string]int
	events []db.FeedEvent
	bad    []string
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	h := req.Header
	if err := esp.VerifyStandardWebhook(r.secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature"), body, r.now()); err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e db.FeedEvent
	if err := json.Unmarshal(body, &e); err != nil || strconv.FormatInt(e.ID, 10) != h.Get("webhook-id") {
		r.bad = append(r.bad, fmt.Sprintf("body %s (%v) is not the event %s", body, err, h.Get("webhook-id")))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.ids[e.ID]++
	r.names[e.Name]++
	r.events = append(r.events, e)
	w.WriteHeader(http.StatusNoContent)
}

// citusWebhooks: each tenant subscribes (through the API) its own receiver
// to sends, completions and health signals; two and three contacts are
// enrolled, the dispatcher sends their three steps, a health signal
// arrives, and the webhook worker delivers. Each receiver gets every
// matching outbox event of its tenant exactly once, correctly signed, and
// nothing of the other tenant; the subscription's delivery log shows each
// delivered.
func citusWebhooks(t *testing.T, rec *dbtest.StatementRecorder) {
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "hook", 2)
	w := newTenantsWorld(t, url, rec, tenants, []dripdrop.AdapterInput{{}, {}}, testkit.DefaultSteps(),
		func(o *db.Options) { o.AllowPrivateTargets = true })
	events := []string{"dripdrop.dispatch.sent", "dripdrop.enrollment.completed", "dripdrop.health.external_signal"}
	recvs, subs := map[string]*webhookReceiver{}, map[string]string{}
	for i, tn := range tenants {
		r := &webhookReceiver{now: w.clock.Now, ids: map[int64]int{}, names: map[string]int{}}
		hs := httptest.NewServer(r)
		t.Cleanup(hs.Close)
		sub := w.api(tn).call(201, "POST", "/v1/telemetry/subscriptions", map[string]any{"url": hs.URL + "/" + tn, "events": events})
		r.mu.Lock()
		r.secret = sub["secret"].(string)
		r.mu.Unlock()
		recvs[tn], subs[tn] = r, sub["id"].(string)
		for _, email := range contactsOf(tn, 0, 2+i) {
			w.api(tn).enroll(email)
		}
	}
	w.run()
	for _, tn := range tenants {
		w.api(tn).call(200, "POST", "/v1/adapters/"+w.adapters[tn].ID.String()+"/health", map[string]any{"health_score": 0.9, "source": "citus-e2e"})
	}
	want := map[string][]int64{} // tenant → the outbox events its subscription matches
	for _, tn := range tenants {
		for _, r := range dbtest.Query(t, url, "SELECT id FROM telemetry_outbox WHERE tenant_key = $1 AND name = ANY($2) ORDER BY id", tn, events) {
			want[tn] = append(want[tn], r[0].(int64))
		}
	}
	ww := webhook.New(webhook.Config{Store: w.store, AllowPrivate: true})
	deadline := time.Now().Add(20 * time.Second)
	for done := false; !done; {
		if _, err := ww.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		done = true
		for _, tn := range tenants {
			r := recvs[tn]
			r.mu.Lock()
			done = done && len(r.ids) >= len(want[tn])
			r.mu.Unlock()
		}
		if !done && time.Now().After(deadline) {
			break
		}
		if !done {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, tn := range tenants {
		r := recvs[tn]
		r.mu.Lock()
		if len(r.bad) > 0 {
			t.Errorf("tenant %s: %d requests refused: %v", tn, len(r.bad), r.bad)
		}
		got := slices.Sorted(func(yield func(int64) bool) {
			for id := range r.ids {
				if !yield(id) {
					return
				}
			}
		})
		if !slices.Equal(got, want[tn]) {
			t.Errorf("tenant %s: the receiver got events %v, want its tenant's matching outbox events %v", tn, got, want[tn])
		}
		for id, n := range r.ids {
			if n != 1 {
				t.Errorf("tenant %s: event %d delivered %d times", tn, id, n)
			}
		}
		contacts := 2 + i
		if wantNames := map[string]int{"dripdrop.dispatch.sent": 3 * contacts, "dripdrop.enrollment.completed": contacts, "dripdrop.health.external_signal": 1}; !reflect.DeepEqual(r.names, wantNames) {
			t.Errorf("tenant %s: deliveries by name %v, want %v", tn, r.names, wantNames)
		}
		sent := map[string]bool{}
		for _, id := range w.sentTo(tn) {
			sent[id] = true
		}
		for _, e := range r.events {
			var md map[string]any
			_ = json.Unmarshal(e.Metadata, &md)
			if e.TenantKey != tn || md["tenant_key"] != tn {
				t.Errorf("tenant %s: received an event of tenant %s (metadata %v)", tn, e.TenantKey, md)
			}
			if e.Name == "dripdrop.dispatch.sent" && !sent[fmt.Sprint(md["out_message_id"])] {
				t.Errorf("tenant %s: sent event for %v, which the sink did not get for this tenant", tn, md["out_message_id"])
			}
		}
		r.mu.Unlock()
		statuses := counts(t, url, "SELECT status, count(*) FROM webhook_deliveries WHERE tenant_key = $1 GROUP BY status", tn)
		if !reflect.DeepEqual(statuses, map[string]int{"delivered": len(want[tn])}) {
			t.Errorf("tenant %s: deliveries by status %v, want all %d delivered", tn, statuses, len(want[tn]))
		}
		sub := w.api(tn).call(200, "GET", "/v1/telemetry/subscriptions/"+subs[tn], nil)
		log, _ := sub["deliveries"].([]any)
		if len(log) != len(want[tn]) {
			t.Errorf("tenant %s: the delivery log lists %d attempts, want %d", tn, len(log), len(want[tn]))
		}
		for _, a := range log {
			if a := a.(map[string]any); a["status_code"] != float64(http.StatusNoContent) || a["attempt"] != 1.0 {
				t.Errorf("tenant %s: delivery attempt %v, want a first attempt answered 204", tn, a)
			}
		}
	}
}

// getJSON is a GET of the API as the key's tenant, for goroutines that
// must not fail the test themselves.
func getJSON(base, key, path string) (map[string]any, error) {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// feedTail reads a tenant's feed with GET /v1/telemetry/events?after=,
// five events a page, continuing after the last id it saw (the feed's
// order is the writers' commit order, which ids need not follow:
// docs/telemetry.md#feed-and-stream).
type feedTail struct {
	base, key string
	mu        sync.Mutex // held while reading
	cursor    int64
	events    []map[string]any
}

// last is the id of the last event read.
func (f *feedTail) last() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}

func (f *feedTail) read() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		m, err := getJSON(f.base, f.key, "/v1/telemetry/events?limit=5&after="+strconv.FormatInt(f.cursor, 10))
		if err != nil {
			return err
		}
		data := m["data"].([]any)
		for _, d := range data {
			e := d.(map[string]any)
			f.cursor = int64(e["id"].(float64))
			f.events = append(f.events, e)
		}
		if next := int64(m["next_after"].(float64)); next != f.cursor {
			return fmt.Errorf("next_after %d, want the last id %d", next, f.cursor)
		}
		if len(data) < 5 {
			return nil
		}
	}
}

// citusFeedTail: the dispatcher runs (its real loop, woken by the
// enrollments' notifications) while contacts of both tenants are enrolled
// over the API, one by one and in batches, and a reader per tenant tails
// that tenant's feed over the API. Each reader sees every outbox event of
// its tenant exactly once, in id order, and nothing else; the sends among
// them are exactly the messages the sink got for that tenant.
func citusFeedTail(t *testing.T, rec *dbtest.StatementRecorder) {
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "tail", 2)
	w := newTenantsWorld(t, url, rec, tenants, []dripdrop.AdapterInput{{}, {}}, testkit.DefaultSteps())
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	defer func() {
		if stop != nil {
			stop()
			<-ran
		}
	}()
	tails := map[string]*feedTail{}
	readers := make(chan error, len(tenants))
	quit := make(chan struct{})
	for _, tn := range tenants {
		f := &feedTail{base: w.http.URL, key: w.keys[tn]}
		tails[tn] = f
		go func() {
			for {
				if err := f.read(); err != nil {
					readers <- err
					return
				}
				select {
				case <-quit:
					readers <- nil
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
	}
	const rounds = 4 // each: one contact alone and three in a batch, per tenant
	for r := range rounds {
		for _, tn := range tenants {
			emails := contactsOf(tn, 4*r, 4)
			w.api(tn).enroll(emails[0])
			w.batchEnroll(tn, emails[1:])
		}
	}
	want := 3 * 4 * rounds // three steps per contact
	deadline := time.Now().Add(60 * time.Second)
	for len(w.sentTo(tenants[0])) < want || len(w.sentTo(tenants[1])) < want {
		if time.Now().After(deadline) {
			t.Fatalf("sent %d and %d messages in a minute, want %d each", len(w.sentTo(tenants[0])), len(w.sentTo(tenants[1])), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	stop = nil
	// The readers catch up with everything committed (the feed holds an
	// event back while an older writer is in progress), in the feed's
	// order.
	outbox := map[string][]int64{}
	for _, tn := range tenants {
		for _, r := range dbtest.Query(t, url, "SELECT id FROM telemetry_outbox WHERE tenant_key = $1 ORDER BY writer_xid, id", tn) {
			outbox[tn] = append(outbox[tn], r[0].(int64))
		}
		if len(outbox[tn]) == 0 {
			t.Fatalf("tenant %s: no outbox rows", tn)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for caught := false; !caught && time.Now().Before(deadline); {
		caught = true
		for _, tn := range tenants {
			caught = caught && tails[tn].last() == outbox[tn][len(outbox[tn])-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(quit)
	for range tenants {
		if err := <-readers; err != nil {
			t.Fatalf("a tailing reader: %v", err)
		}
	}
	for _, tn := range tenants {
		f := tails[tn]
		var ids []int64
		var sent []string
		for _, e := range f.events {
			ids = append(ids, int64(e["id"].(float64)))
			md := e["metadata"].(map[string]any)
			if e["tenant_key"] != tn || md["tenant_key"] != tn {
				t.Errorf("tenant %s: its feed lists an event of %v (metadata %v)", tn, e["tenant_key"], md)
			}
			if e["name"] == "dripdrop.dispatch.sent" {
				sent = append(sent, md["out_message_id"].(string))
			}
		}
		if !slices.Equal(ids, outbox[tn]) {
			t.Errorf("tenant %s: the tailing reader saw %d events %v, want the %d of its outbox, in commit order, %v", tn, len(ids), ids, len(outbox[tn]), outbox[tn])
		}
		slices.Sort(sent)
		got := slices.Sorted(slices.Values(w.sentTo(tn)))
		if !slices.Equal(sent, got) || len(sent) != want {
			t.Errorf("tenant %s: the feed lists %d sends, the sink got %d messages (want %d, the same ones)", tn, len(sent), len(got), want)
		}
	}
}

// dashboardClient is a signed-in dashboard session of one tenant.
type dashboardClient struct {
	t    testing.TB
	base string
	http *http.Client
}

func (w *tenantsWorld) dashboard(tn string) *dashboardClient {
	w.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &dashboardClient{t: w.t, base: w.http.URL, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	res, err := c.http.PostForm(c.base+"/ui/login", url.Values{"api_key": {w.keys[tn]}})
	if err != nil {
		w.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("tenant %s: dashboard sign-in answered %d", tn, res.StatusCode)
	}
	return c
}

// page fetches a dashboard page, requiring 200.
func (c *dashboardClient) page(path string) string {
	c.t.Helper()
	res, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return string(b)
}

// number is the integer in the first match of re's group 1 on page, -1
// without a match.
func number(page string, re *regexp.Regexp) int {
	m := re.FindStringSubmatch(page)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

var (
	sentTodayRE = regexp.MustCompile(`data-testid="sent-today">(\d+)`)
	repliedRE   = regexp.MustCompile(`data-testid="replied">(\d+)`)
	backlogRE   = regexp.MustCompile(`data-testid="backlog">(\d+)`)
	rampCapRE   = regexp.MustCompile(`<td>ramp_cap</td><td class="n">(\d+)</td>`)
	// The adapters page: "sent / cap" and the pinned enrollments.
	adapterRowRE = regexp.MustCompile(`(\d+) / (\d+)</td>\s*<td class="n">(\d+)</td>`)
	// The sequence page's funnel row of the first step: scheduled, sent, failed.
	introFunnelRE = regexp.MustCompile(`<tr><td>[^<]*intro[^<]*</td><td class="n">(\d+)</td><td class="n">(\d+)</td><td class="n">(\d+)</td></tr>`)
	enrolledRE    = regexp.MustCompile(`<span class="sub">(\d+) enrolled</span>`)
)

// dashboardForecastScenario: tenant i's adapter has daily cap caps[i]
// and enrolls n[i] contacts in a three-step sequence (follow-ups a day
// apart); the dispatcher sends what the caps allow today, and a contact of
// the second tenant replies. It returns the tenants' forecasts (14 days,
// hyp[i] hypothetical contacts more) after checking the dashboard, the
// JSON reads behind it and the forecast against these numbers.
func dashboardForecastScenario(t *testing.T, url string, rec *dbtest.StatementRecorder, tenants []string) map[string]map[string]any {
	caps, n, hyp, replies := []int{4, 5}, []int{6, 9}, []int{2, 3}, []int{0, 1}
	w := newTenantsWorld(t, url, rec, tenants, []dripdrop.AdapterInput{{DailyCap: testkit.Some(caps[0])}, {DailyCap: testkit.Some(caps[1])}},
		[]dripdrop.StepInput{step("intro", "Hello {{first_name}}", "First note.", 0), step("bump", "", "Second note.", 86400), step("last", "", "Third note.", 86400)})
	for i, tn := range tenants {
		emails := contactsOf(tn, 0, n[i])
		w.api(tn).enroll(emails[0])
		w.batchEnroll(tn, emails[1:])
	}
	w.run()
	for i, tn := range tenants {
		if got := len(w.sentTo(tn)); got != caps[i] {
			t.Fatalf("tenant %s: %d first touches sent today, want its cap of %d", tn, got, caps[i])
		}
		for range replies[i] {
			email := contactsOf(tn, 0, 1)[0]
			w.api(tn).inbound(201, map[string]any{"message_id": "<reply-" + tn + "@example.com>", "from": email, "subject": "Re: Hello",
				"body_text": "Thanks, let's talk.", "in_reply_to": w.api(tn).sentMessageID(email)})
		}
	}
	forecasts := map[string]map[string]any{}
	for i, tn := range tenants {
		f, ad := w.api(tn), w.adapters[tn].ID.String()
		active := n[i] - replies[i]
		deferred := counts(t, url, "SELECT reason, count(*) FROM message_events WHERE tenant_key = $1 AND type = 'deferred' GROUP BY reason", tn)["ramp_cap"]
		if deferred == 0 {
			t.Errorf("tenant %s: no ramp_cap deferral recorded for the %d contacts over the cap", tn, n[i]-caps[i])
		}

		// The dashboard pages, signed in as the tenant.
		c := w.dashboard(tn)
		home := c.page("/ui/")
		if got := number(home, sentTodayRE); got != caps[i] {
			t.Errorf("tenant %s: overview sends today %d, want %d", tn, got, caps[i])
		}
		if got := number(home, repliedRE); got != replies[i] {
			t.Errorf("tenant %s: overview replies %d, want %d", tn, got, replies[i])
		}
		if got := number(home, backlogRE); got != n[i]-caps[i] {
			t.Errorf("tenant %s: overview due backlog %d, want the %d first touches over the cap", tn, got, n[i]-caps[i])
		}
		if got := number(home, rampCapRE); got != deferred {
			t.Errorf("tenant %s: overview ramp_cap deferrals %d, want the %d recorded", tn, got, deferred)
		}
		for _, other := range tenants {
			if other != tn && strings.Contains(home, other) {
				t.Errorf("tenant %s: the overview names tenant %s", tn, other)
			}
		}
		if m := adapterRowRE.FindStringSubmatch(c.page("/ui/adapters")); m == nil || m[1] != strconv.Itoa(caps[i]) || m[2] != strconv.Itoa(caps[i]) || m[3] != strconv.Itoa(active) {
			t.Errorf("tenant %s: adapters page row %v, want %d / %d sent and %d pinned", tn, m, caps[i], caps[i], active)
		}
		if p := c.page("/ui/adapters/" + ad); !strings.Contains(p, fmt.Sprintf(`<p class="big">%d <span class="of">of %d</span>`, caps[i], caps[i])) {
			t.Errorf("tenant %s: the adapter page does not show %d of %d sent today", tn, caps[i], caps[i])
		}
		seq := f.call(200, "GET", "/v1/sequences", nil)["data"].([]any)[0].(map[string]any)["id"].(string)
		sp := c.page("/ui/sequences/" + seq)
		if got := number(sp, enrolledRE); got != n[i] {
			t.Errorf("tenant %s: sequence page %d enrolled, want %d", tn, got, n[i])
		}
		if m := introFunnelRE.FindStringSubmatch(sp); m == nil || m[2] != strconv.Itoa(caps[i]) || m[3] != "0" {
			t.Errorf("tenant %s: funnel of the first step %v, want %d sent, none failed", tn, m, caps[i])
		}
		c.page("/ui/sequences")
		c.page("/ui/pools")
		c.page("/ui/pools/" + w.api(tn).call(200, "GET", "/v1/pools", nil)["data"].([]any)[0].(map[string]any)["id"].(string))
		ens := f.call(200, "GET", "/v1/enrollments?sequence_key=welcome", nil)["data"].([]any)
		if len(ens) != n[i] {
			t.Errorf("tenant %s: %d enrollments listed, want %d", tn, len(ens), n[i])
		}
		c.page("/ui/enrollments?sequence_key=welcome")
		for _, e := range ens {
			e := e.(map[string]any)
			p := c.page("/ui/enrollments/" + e["id"].(string))
			if !strings.Contains(p, `data-testid="enrollment-state">`+e["state"].(string)+`<`) {
				t.Errorf("tenant %s: enrollment page of %s does not show its state %s", tn, e["id"], e["state"])
			}
		}

		// The JSON reads of the same numbers.
		capa := f.call(200, "GET", "/v1/adapters/"+ad+"/capacity", nil)
		if capa["sent"] != float64(caps[i]) || capa["remaining"] != 0.0 {
			t.Errorf("tenant %s: capacity %v, want %d sent, none remaining", tn, capa, caps[i])
		}
		st := f.call(200, "GET", "/v1/sequences/"+seq+"/stats", nil)["versions"].([]any)[0].(map[string]any)
		byState := st["by_state"].(map[string]any)
		steps := st["steps"].([]any)
		if st["enrollments"] != float64(n[i]) || byState["active"] != float64(active) || byState["stopped"] != float64(replies[i]) ||
			st["replies"] != float64(replies[i]) || steps[0].(map[string]any)["sent"] != float64(caps[i]) {
			t.Errorf("tenant %s: stats %v, want %d enrolled (%d active, %d stopped by a reply), %d first touches sent", tn, st, n[i], active, replies[i], caps[i])
		}

		// The forecast: every active contact's remaining steps and the
		// hypothetical contacts' three, never above the cap a day, and
		// nothing more today (the cap is reached).
		before := dbtest.RowCounts(t, url)
		// (Today the pool has no adapter under its cap: hypothetical
		// contacts enrolled now would be refused, so they come tomorrow.)
		tomorrow := w.clock.Now().Truncate(24 * time.Hour).Add(24 * time.Hour)
		fc := f.call(200, "POST", "/v1/forecast", map[string]any{"horizon_days": 14, "per_adapter": true,
			"changes": map[string]any{"enroll": []any{map[string]any{"sequence_key": "welcome", "count": hyp[i], "at": tomorrow.Format(time.RFC3339)}}}})
		if after := dbtest.RowCounts(t, url); !reflect.DeepEqual(before, after) {
			t.Errorf("tenant %s: the forecast wrote: before %v after %v", tn, before, after)
		}
		sentActive := caps[i] - replies[i] // the contact who replied had been sent its first touch
		wantSends := 2*sentActive + 3*(active-sentActive) + 3*hyp[i]
		total := 0
		days := fc["days"].([]any)
		for k, d := range days {
			day := d.(map[string]any)
			sends := int(day["sends"].(float64))
			total += sends
			if sends > caps[i] {
				t.Errorf("tenant %s: forecast day %v sends %d, over the cap of %d", tn, day["date"], sends, caps[i])
			}
			if k == 0 && (day["date"] != w.clock.Now().Format(time.DateOnly) || sends != 0) {
				t.Errorf("tenant %s: forecast today %v, want no more sends (the cap is reached)", tn, day)
			}
			rows, _ := day["adapters"].([]any)
			for _, a := range rows {
				if a.(map[string]any)["adapter_id"] != ad {
					t.Errorf("tenant %s: forecast sends from adapter %v, not the tenant's", tn, a)
				}
			}
		}
		if total != wantSends {
			t.Errorf("tenant %s: the forecast sends %d in 14 days, want %d", tn, total, wantSends)
		}
		seqs := fc["sequences"].([]any)
		s := seqs[0].(map[string]any)
		en, hy := s["enrolled"].(map[string]any), s["hypothetical"].(map[string]any)
		if len(seqs) != 1 || s["sequence_key"] != "welcome" || en["contacts"] != float64(active) || en["completed"] != float64(active) ||
			hy["contacts"] != float64(hyp[i]) || hy["completed"] != float64(hyp[i]) || fc["not_enrolled"] != 0.0 {
			t.Errorf("tenant %s: forecast sequences %v, want %d enrolled and %d hypothetical contacts, all completed", tn, seqs, active, hyp[i])
		}
		forecasts[tn] = fc
	}
	return forecasts
}

// citusDashboardForecast runs the dashboard and forecast scenario on Citus
// and on a single PostgreSQL, whose forecasts must agree day by day.
func citusDashboardForecast(t *testing.T, rec *dbtest.StatementRecorder) {
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "dash", 2)
	onCitus := dashboardForecastScenario(t, url, rec, tenants)
	single := dashboardForecastScenario(t, dbtest.URL(t), nil, tenants)
	for _, tn := range tenants {
		days := func(fc map[string]any) []string {
			var out []string
			for _, d := range fc["days"].([]any) {
				d := d.(map[string]any)
				b, _ := d["binding"].(map[string]any)
				out = append(out, fmt.Sprint(d["date"], d["sends"], d["first_touches"], d["follow_ups"], b["policy"]))
			}
			return out
		}
		if a, b := days(onCitus[tn]), days(single[tn]); !slices.Equal(a, b) {
			t.Errorf("tenant %s: forecast days on Citus %v, on a single PostgreSQL %v", tn, a, b)
		}
	}
}
