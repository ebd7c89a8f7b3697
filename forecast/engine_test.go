package forecast_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/forecast"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

type engine struct {
	t      *testing.T
	url    string
	clock  *testkit.Clock
	store  *db.Store
	disp   *dispatch.Dispatcher
	tenant string
	pool   dripdrop.Pool
	ads    []dripdrop.Adapter
}

type adapterSpec struct {
	name, tz             string
	cap, floor, inc, gap int
	weight               int
	providerCaps         map[string]int
}

// newEngine: one tenant, adapters on one SMTP sink in one pool, a 3-step
// sequence "outreach" with a daily London window 08:00–20:00.
func newEngine(t *testing.T, start time.Time, specs []adapterSpec, delays []int64) *engine {
	t.Helper()
	url := dbtest.URL(t)
	// Durability is not under test here: skip the commit fsyncs.
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	k := testkit.NewWorld(t, testkit.WithURL(url+sep+"synchronous_commit=off"), testkit.WithStart(start), testkit.WithoutTenant())
	e := &engine{t: t, url: url, clock: k.Clock, store: k.Store, tenant: "acme"}
	sink := k.Sink
	var err error
	ctx := context.Background()
	if _, _, err := e.store.CreateTenant(ctx, e.tenant, ""); err != nil {
		t.Fatal(err)
	}
	var members []dripdrop.MemberInput
	for _, sp := range specs {
		name, prov, from, tz := sp.name, "sink", sp.name+"@acme.example.com", sp.tz
		in := dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from, Timezone: &tz, MinGapSeconds: &sp.gap,
			Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: sink.Port(), TLS: "none"},
			DailyCap:    dripdrop.Nullable[int]{Set: true, Valid: true, Value: sp.cap}, ProviderCaps: sp.providerCaps}
		if sp.inc > 0 {
			in.RampFloor = &sp.floor
			in.RampIncrement = dripdrop.Nullable[int]{Set: true, Valid: true, Value: sp.inc}
		}
		a, err := e.store.CreateAdapter(ctx, e.tenant, in)
		if err != nil {
			t.Fatal(err)
		}
		e.ads = append(e.ads, a)
		w := sp.weight
		members = append(members, dripdrop.MemberInput{AdapterID: &a.ID, Weight: &w})
	}
	pn := "main"
	if e.pool, err = e.store.CreatePool(ctx, e.tenant, dripdrop.PoolInput{Name: &pn, Members: members}); err != nil {
		t.Fatal(err)
	}
	var steps []dripdrop.StepInput
	for i, d := range delays {
		key, subj, body, d := fmt.Sprintf("s%d", i+1), "Hello", "Note.", d
		steps = append(steps, dripdrop.StepInput{Key: &key, Subject: &subj, BodyText: &body, DelaySeconds: &d})
	}
	key, sname := "outreach", "Outreach"
	if _, err := e.store.CreateSequence(ctx, e.tenant, dripdrop.SequenceInput{Key: &key, Name: &sname, VersionInput: dripdrop.VersionInput{
		PoolID: &e.pool.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "08:00", End: "20:00", Timezone: "Europe/London",
			Holidays: []string{"US"}}, Steps: steps, // Thanksgiving (26 November) closes the window for a day
	}}); err != nil {
		t.Fatal(err)
	}
	// One worker: each adapter's executions are reserved one at a time, in
	// the claim's order.
	e.disp, err = dispatch.New(dispatch.Config{Store: e.store, Transport: loopbackTransport(), Workers: 1, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *engine) enroll(n int) {
	e.t.Helper()
	var contacts []dripdrop.ContactInput
	for i := 0; i < n; i++ {
		email := fmt.Sprintf("lead%03d@example.org", i)
		if i%3 == 0 {
			// Recipients at a Microsoft consumer domain: their provider is
			// known at enrollment, and provider caps apply to them.
			email = fmt.Sprintf("lead%03d@outlook.com", i)
		}
		contacts = append(contacts, dripdrop.ContactInput{Email: &email})
	}
	if _, err := e.store.EnrollBatch(context.Background(), e.tenant, "outreach", contacts); err != nil {
		e.t.Fatal(err)
	}
}

// run steps the engine's clock from event to event (the next due
// execution or adapter unblock) until end, letting the dispatcher send
// everything due at each instant.
func (e *engine) run(end time.Time) {
	e.t.Helper()
	ctx := context.Background()
	conn := dbtest.Connect(e.t, e.url)
	ticks := 0
	defer func() { e.t.Logf("engine: %d ticks", ticks) }()
	for steps := 0; ; steps++ {
		if steps > 20000 {
			e.t.Fatal("the engine did not reach the end of the scenario")
		}
		for {
			n, err := e.disp.Tick(ctx)
			if err != nil {
				e.t.Fatal(err)
			}
			e.disp.Drain()
			ticks++
			if n == 0 {
				break
			}
		}
		now := e.clock.Now()
		rows := conn.Query(`SELECT least(
			(SELECT min(next_send_at) FROM adapters WHERE tenant_key = $1 AND next_send_at > $2),
			(SELECT min(x.scheduled_for) FROM step_executions x JOIN enrollments n ON n.tenant_key = x.tenant_key AND n.id = x.enrollment_id
			  WHERE x.tenant_key = $1 AND x.state = 'scheduled' AND n.state = 'active' AND x.scheduled_for > $2))`, e.tenant, now)
		next, ok := rows[0][0].(time.Time)
		if !ok || !next.Before(end) {
			return
		}
		e.clock.Set(next)
	}
}

// counts are the engine's sends per adapter and adapter-local day.
func (e *engine) counts() map[string]int {
	out := map[string]int{}
	for _, r := range dbtest.Query(e.t, e.url, `SELECT adapter_id::text, to_char(day, 'YYYY-MM-DD'), sum(sent)::int FROM adapter_daily_usage
		WHERE tenant_key = $1 GROUP BY 1, 2 HAVING sum(sent) > 0`, e.tenant) {
		out[r[0].(string)+" "+r[1].(string)] = int(r[2].(int32))
	}
	return out
}

func forecastCounts(res *forecast.Result) map[string]int {
	out := map[string]int{}
	for _, d := range res.Days {
		for _, a := range d.Adapters {
			if a.Sends > 0 {
				out[a.AdapterID.String()+" "+d.Date] = a.Sends
			}
		}
	}
	return out
}

func diff(t *testing.T, names map[uuid.UUID]string, want, got map[string]int) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	bad := 0
	for _, k := range ks {
		mark := ""
		if want[k] != got[k] {
			mark = "  <-- differs"
			bad++
		}
		id := uuid.MustParse(k[:36])
		t.Logf("%-6s %s engine %3d forecast %3d%s", names[id], k[37:], want[k], got[k], mark)
	}
	if bad > 0 {
		t.Fatalf("%d adapter-days differ between the engine and the forecast", bad)
	}
}

// TestForecastMatchesEngine is docs/forecast.md's exactness test: the real engine
// (store with an injected clock, dispatcher, SMTP sink) runs a 14-day
// scenario, and the forecast of the snapshot taken at its start must
// predict every adapter's sends on every local day exactly — and every
// send itself: the same enrollment's step from the same adapter at the
// same instant.
//
// The scenario is full of executions of one adapter due at the same
// instant: the contacts enroll while the window is closed, every
// adapter's local midnight (when its cap resets) falls outside the window,
// so each morning its whole backlog — first touches, second and last
// steps — has been deferred to the window's opening, where the ramp
// adapter's follow-ups of a burst two or three days before are naturally
// due too. The dispatcher takes such ties in enrollment order (then
// execution id), whatever the rows' physical order, and the forecast
// replays that order, so one run matches exactly.
func TestForecastMatchesEngine(t *testing.T) {
	// Not parallel: forecast.SetTrace installs a package-level hook that every forecast.Run reads.
	if testing.Short() {
		t.Skip("runs the engine for 14 virtual days")
	}
	start := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC) // a Monday, before the window opens
	e := newEngine(t, start, []adapterSpec{
		{name: "ramp", tz: "UTC", cap: 12, floor: 2, inc: 2, weight: 2, providerCaps: map[string]int{"microsoft": 2}},
		{name: "gap", tz: "Europe/Berlin", cap: 6, gap: 900, weight: 1, providerCaps: map[string]int{"microsoft": 1}},
		{name: "slow", tz: "America/New_York", cap: 9, floor: 3, inc: 3, gap: 300, weight: 1},
	}, []int64{0, 2 * 86400, 3 * 86400})
	e.enroll(100)
	snap, err := e.store.ForecastSnapshot(context.Background(), e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Adapters) != 3 || len(snap.Enrollments) != 100 || len(snap.Versions) != 1 || len(snap.Pools) != 1 {
		t.Fatalf("snapshot: %d adapters, %d enrollments, %d versions, %d pools", len(snap.Adapters), len(snap.Enrollments), len(snap.Versions), len(snap.Pools))
	}
	res, trace := forecastTrace(t, snap, 14)
	// Halfway, mid-afternoon with today's counters, gaps and follow-ups in
	// flight, a second snapshot must predict the rest just as exactly.
	mid := start.Add(4*24*time.Hour + 8*time.Hour)
	e.run(mid)
	e.clock.Set(mid)
	pre := e.counts()
	snap2, err := e.store.ForecastSnapshot(context.Background(), e.tenant)
	if err != nil {
		t.Fatal(err)
	}
	res2, trace2 := forecastTrace(t, snap2, 10)
	e.run(start.Add(14 * 24 * time.Hour))
	names := map[uuid.UUID]string{}
	for _, a := range e.ads {
		names[a.ID] = a.Name
	}
	want := e.counts()
	total := 0
	for _, n := range want {
		total += n
	}
	if total < 150 {
		t.Fatalf("the scenario sent only %d messages; it should exercise caps across days", total)
	}
	for k := range want {
		if strings.HasSuffix(k, " 2026-11-26") {
			t.Fatalf("the engine sent on Thanksgiving, a holiday of the window: %s", k)
		}
	}
	// The provider caps held and bound: no adapter-day over its cap, and
	// some at it.
	atCap := 0
	for _, r := range dbtest.Query(t, e.url, `SELECT a.name, u.sent FROM adapter_provider_usage u JOIN adapters a ON a.tenant_key = u.tenant_key AND a.id = u.adapter_id
		WHERE u.tenant_key = $1 AND u.provider = 'microsoft'`, e.tenant) {
		limit := map[string]int32{"ramp": 2, "gap": 1}[r[0].(string)]
		if n := r[1].(int32); n > limit {
			t.Fatalf("%s sent %d to microsoft in a day, cap %d", r[0], n, limit)
		} else if n == limit {
			atCap++
		}
	}
	if atCap < 3 {
		t.Fatalf("only %d adapter-days reached their microsoft cap: the scenario does not exercise it", atCap)
	}
	// Sends of an adapter that were due at the same instant as another
	// of its sends of the same kind (first touch or follow-up): ties.
	tied := dbtest.Query(t, e.url, `SELECT coalesce(sum(n), 0)::int FROM (SELECT count(*) AS n FROM step_executions
		WHERE tenant_key = $1 AND state = 'sent' GROUP BY adapter_id, followup, scheduled_for HAVING count(*) > 1) g`, e.tenant)[0][0].(int32)
	t.Logf("%d sends, %d of them tied with another send of their adapter on scheduled_for", total, tied)
	if tied < 100 {
		t.Fatalf("only %d sends were tied on scheduled_for; the scenario should be full of ties", tied)
	}
	compareTraces(t, e.trace(start), trace)
	diff(t, names, want, forecastCounts(res))
	// The second forecast ends 10 days after the snapshot.
	e.run(mid.Add(10 * 24 * time.Hour))
	rest := map[string]int{}
	for k, n := range e.counts() {
		if n -= pre[k]; n > 0 {
			rest[k] = n
		}
	}
	compareTraces(t, e.trace(mid), trace2)
	diff(t, names, rest, forecastCounts(res2))
}

// forecastTrace forecasts the snapshot over days without jitter and
// returns the result and every simulated send as a trace line.
func forecastTrace(t *testing.T, snap *forecast.Snapshot, days int) (*forecast.Result, []string) {
	t.Helper()
	var trace []string
	forecast.SetTrace(func(a uuid.UUID, enr, step int, at time.Time) {
		trace = append(trace, traceLine(at, a, snap.Enrollments[enr].ID, step+1))
	})
	defer forecast.SetTrace(nil)
	res, err := forecast.Run(snap, forecast.Request{HorizonDays: days, NoJitter: true, PerAdapter: true})
	if err != nil {
		t.Fatal(err)
	}
	return res, trace
}

func traceLine(at time.Time, adapter, enrollment uuid.UUID, position int) string {
	return fmt.Sprintf("%s %s %s %d", at.UTC().Format("01-02 15:04:05"), adapter.String()[24:], enrollment.String()[24:], position)
}

// trace is the engine's sends since from as trace lines.
func (e *engine) trace(from time.Time) []string {
	var out []string
	for _, r := range dbtest.Query(e.t, e.url, `SELECT x.sent_at, x.adapter_id, x.enrollment_id, st.position
		FROM step_executions x JOIN steps st ON st.tenant_key = x.tenant_key AND st.id = x.step_id
		WHERE x.tenant_key = $1 AND x.state = 'sent' AND x.sent_at >= $2`, e.tenant, from) {
		out = append(out, traceLine(r[0].(time.Time), uuid.UUID(r[1].([16]uint8)), uuid.UUID(r[2].([16]uint8)), int(r[3].(int32))))
	}
	return out
}

// compareTraces requires the forecast's sends to be the engine's, listing
// both side by side (in time order) where they differ.
func compareTraces(t *testing.T, engine, forecast []string) {
	t.Helper()
	sort.Strings(engine)
	sort.Strings(forecast)
	if slices.Equal(engine, forecast) {
		return
	}
	for i := 0; i < max(len(engine), len(forecast)); i++ {
		var a, b string
		if i < len(engine) {
			a = engine[i]
		}
		if i < len(forecast) {
			b = forecast[i]
		}
		mark := ""
		if a != b {
			mark = " <--"
		}
		t.Logf("%-44s %-44s%s", a, b, mark)
	}
	t.Errorf("the forecast's sends (right) are not the engine's (left)")
}

// loopbackTransport reaches the test's SMTP sink on 127.0.0.1, which the
// outbound-destination guard refuses unless private targets are allowed.
func loopbackTransport() *dispatch.SMTPTransport {
	tr := dispatch.NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	return tr
}
