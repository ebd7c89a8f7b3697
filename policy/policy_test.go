package policy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ip(v int) *int { return &v }

func TestEffectiveCapRamp(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	a := Adapter{HealthState: "ramping", DailyCap: ip(40), RampFloor: 5, RampIncrement: 3, RampStartedAt: &start}
	// docs/sending.md: day 1: 5, day 2: 8, …, day 12: 38, day 13+: 40.
	want := []int{5, 8, 11, 14, 17, 20, 23, 26, 29, 32, 35, 38, 40, 40, 40}
	for day, w := range want {
		now := start.Add(time.Duration(day)*24*time.Hour + time.Hour)
		if got, capped := EffectiveCap(a, now, 0); !capped || got != w {
			t.Errorf("day %d: cap %d (capped %v), want %d", day+1, got, capped, w)
		}
	}
	if got, _ := EffectiveCap(a, start.Add(-48*time.Hour), 0); got != 5 {
		t.Errorf("before the ramp started: %d, want the floor", got)
	}
	a.HealthState = "probing"
	if got, _ := EffectiveCap(a, start.Add(300*24*time.Hour), 0); got != 5 {
		t.Errorf("probing: %d, want the probe budget 5", got)
	}
	if got, _ := EffectiveCap(a, start, 7); got != 7 {
		t.Errorf("probing with budget 7: %d", got)
	}
	if _, capped := EffectiveCap(Adapter{HealthState: "active"}, start, 0); capped {
		t.Error("no daily_cap must be uncapped")
	}
	if got, _ := EffectiveCap(Adapter{HealthState: "active", DailyCap: ip(50)}, start, 0); got != 50 {
		t.Errorf("no ramp: %d, want daily_cap", got)
	}
}

func TestShareCap(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ cap, pct, want int }{{10, 50, 5}, {1, 10, 1}, {40, 100, 40}, {7, 33, 2}, {3, 1, 1}} {
		if got := ShareCap(c.cap, c.pct); got != c.want {
			t.Errorf("ShareCap(%d, %d) = %d, want %d", c.cap, c.pct, got, c.want)
		}
	}
}

func base(now time.Time) Input {
	w := defaultWindow()
	w.Days = []time.Weekday{0, 1, 2, 3, 4, 5, 6}
	w.Start, w.End = 0, 23*60+59
	return Input{Now: now, EnrollmentState: "active", Window: w, Adapter: Adapter{HealthState: "active"}}
}

func TestEvaluateSpecExamples(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 30, 0, time.UTC) // a Tuesday
	// Min gap: last send 10:00:00, gap 90 s, attempt at 10:00:30 → 10:01:30.
	in := base(now)
	last := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	in.Adapter.LastSendAt, in.Adapter.MinGapSeconds = &last, 90
	r := Evaluate(in)
	if r.Binding == nil || r.Binding.Policy != MinGap || !r.Binding.DeferUntil.Equal(time.Date(2026, 11, 24, 10, 1, 30, 0, time.UTC)) || r.Binding.MinGapSeconds != 90 {
		t.Fatalf("min gap: %+v", r.Binding)
	}
	// Share: cap 10, 50 % → 5; 5 sent for this version → defer to local midnight.
	in = base(now)
	in.Adapter.DailyCap, in.MaxSharePct, in.SentToday, in.SentTodayForVersion = ip(10), 50, 5, 5
	in.Adapter.Location = mustLoc(t, "Europe/Berlin")
	r = Evaluate(in)
	if r.Binding == nil || r.Binding.Policy != SubCap || r.Binding.Cap != 5 || r.Binding.SentCount != 5 || r.Binding.MaxSharePct != 50 {
		t.Fatalf("share cap: %+v", r.Binding)
	}
	if want := time.Date(2026, 11, 25, 0, 0, 0, 0, in.Adapter.Location); !r.Binding.DeferUntil.Equal(want) {
		t.Fatalf("share cap defers to %v, want Berlin midnight %v", r.Binding.DeferUntil, want)
	}
	// Ramp cap reached.
	in.SentToday = 10
	if r = Evaluate(in); r.Binding.Policy != RampCap || r.Binding.Cap != 10 || r.Binding.SentCount != 10 {
		t.Fatalf("ramp cap: %+v", r.Binding)
	}
	// Resting: to resting_until, or +5 min when unknown or past.
	in = base(now)
	until := now.Add(3 * time.Hour)
	in.Adapter.HealthState, in.Adapter.RestingUntil = "resting", &until
	if r = Evaluate(in); r.Binding.Policy != AdapterResting || !r.Binding.DeferUntil.Equal(until) {
		t.Fatalf("resting: %+v", r.Binding)
	}
	past := now.Add(-time.Hour)
	in.Adapter.RestingUntil = &past
	if r = Evaluate(in); !r.Binding.DeferUntil.Equal(now.Add(5 * time.Minute)) {
		t.Fatalf("resting with a past resting_until: %+v", r.Binding)
	}
	if len(r.Verdicts) != len(Order) || len(Order) != 9 {
		t.Fatalf("%d verdicts, want all 9", len(r.Verdicts))
	}
	for i, v := range r.Verdicts {
		if v.Policy != Order[i] {
			t.Fatalf("verdict %d is %s, want %s", i, v.Policy, Order[i])
		}
	}
}

func TestEvaluateOrder(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) // Saturday
	in := base(now)
	in.Window = defaultWindow()
	until := now.Add(time.Hour)
	in.Adapter.HealthState, in.Adapter.RestingUntil = "resting", &until
	if r := Evaluate(in); r.Binding.Policy != SendWindow || r.Binding.Reason != "quiet_hours" {
		t.Fatalf("outside the window beats resting: %+v", r.Binding)
	}
	in.Suppressed = true
	if r := Evaluate(in); r.Binding.Policy != Suppression || r.Binding.Action != Skip {
		t.Fatalf("suppression: %+v", r.Binding)
	}
	in.EnrollmentState = "paused"
	if r := Evaluate(in); r.Binding.Policy != EnrollmentState || r.Binding.Action != Cancel {
		t.Fatalf("enrollment state: %+v", r.Binding)
	}
	ok := base(now)
	if r := Evaluate(ok); r.Binding != nil || !r.NextEligibleAt.Equal(now) {
		t.Fatalf("everything allows: %+v", r.Binding)
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	ny := mustLoc(t, "America/New_York")
	w := defaultWindow()
	at := func(y int, m time.Month, d, h, mi int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, mi, 0, 0, loc)
	}
	cases := []struct {
		name string
		now  time.Time
		open bool
		next time.Time
	}{
		{"friday evening → monday 08:00", at(2026, 11, 27, 19, 0, ny), false, at(2026, 11, 30, 8, 0, ny)},
		{"monday 07:59 → 08:00", at(2026, 11, 30, 7, 59, ny), false, at(2026, 11, 30, 8, 0, ny)},
		{"monday 08:00 open", at(2026, 11, 30, 8, 0, ny), true, time.Time{}},
		{"monday 17:59 open", at(2026, 11, 30, 17, 59, ny), true, time.Time{}},
		{"monday 18:00 closed", at(2026, 11, 30, 18, 0, ny), false, at(2026, 12, 1, 8, 0, ny)},
	}
	for _, c := range cases {
		open, next := w.Check(c.now, ny)
		if open != c.open || (!c.open && !next.Equal(c.next)) {
			t.Errorf("%s: open %v next %v, want %v %v", c.name, open, next, c.open, c.next)
		}
	}
	// Wrap-around 22:00–06:00 opening on Fridays only.
	wrap := Window{Days: []time.Weekday{time.Friday}, Start: 22 * 60, End: 6 * 60}
	for _, c := range []struct {
		now  time.Time
		open bool
		next time.Time
	}{
		{at(2026, 11, 27, 23, 0, ny), true, time.Time{}},                 // Friday 23:00
		{at(2026, 11, 28, 3, 0, ny), true, time.Time{}},                  // Saturday 03:00 belongs to Friday
		{at(2026, 11, 28, 6, 0, ny), false, at(2026, 12, 4, 22, 0, ny)},  // closes at 06:00
		{at(2026, 11, 27, 3, 0, ny), false, at(2026, 11, 27, 22, 0, ny)}, // Friday 03:00: Thursday has no window
	} {
		open, next := wrap.Check(c.now, ny)
		if open != c.open || (!c.open && !next.Equal(c.next)) {
			t.Errorf("wrap at %v: open %v next %v, want %v %v", c.now, open, next, c.open, c.next)
		}
	}
}

func TestResolveLocationFallback(t *testing.T) {
	t.Parallel()
	if _, n := ResolveLocation("Mars/Olympus", "Europe/Berlin"); n != "Europe/Berlin" {
		t.Fatalf("invalid contact zone must fall back to the version's: %s", n)
	}
	if _, n := ResolveLocation("", "bogus"); n != "UTC" {
		t.Fatalf("fallback to UTC: %s", n)
	}
	in := base(time.Date(2026, 11, 30, 13, 30, 0, 0, time.UTC)) // 08:30 NY, 14:30 Berlin
	in.Window = defaultWindow()
	in.Window.Start, in.Window.End = 9*60, 17*60
	in.ContactTimezone, in.Window.Timezone = "America/New_York", "Europe/Berlin"
	r := Evaluate(in)
	if r.Binding == nil || r.Binding.Policy != SendWindow || r.Binding.Timezone != "America/New_York" {
		t.Fatalf("the contact's zone rules: %+v", r.Binding)
	}
	in.ContactTimezone = "not/a zone"
	if r := Evaluate(in); r.Binding != nil {
		t.Fatalf("invalid contact zone → version zone (Berlin 14:30, open): %+v", r.Binding)
	}
}

func TestDST(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		zone      string
		springDay time.Time
		fallDay   time.Time
	}{
		{"America/New_York", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"Europe/Berlin", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
	} {
		loc := mustLoc(t, c.zone)
		spring := time.Date(c.springDay.Year(), c.springDay.Month(), c.springDay.Day(), 12, 0, 0, 0, loc)
		fall := time.Date(c.fallDay.Year(), c.fallDay.Month(), c.fallDay.Day(), 12, 0, 0, 0, loc)
		if d := NextMidnight(spring, loc).Sub(DayStart(spring, loc)); d != 23*time.Hour {
			t.Errorf("%s spring-forward day lasts %v, want 23h", c.zone, d)
		}
		if d := NextMidnight(fall, loc).Sub(DayStart(fall, loc)); d != 25*time.Hour {
			t.Errorf("%s fall-back day lasts %v, want 25h", c.zone, d)
		}
		if ds := DayStart(spring, loc).In(loc); ds.Hour() != 0 || ds.Minute() != 0 {
			t.Errorf("%s DayStart %v is not local midnight", c.zone, ds)
		}
		// A window opening inside the spring gap opens when the gap ends.
		w := Window{Days: []time.Weekday{time.Sunday}, Start: 2*60 + 30, End: 10 * 60}
		_, next := w.Check(time.Date(c.springDay.Year(), c.springDay.Month(), c.springDay.Day(), 0, 30, 0, 0, loc), loc)
		if lt := next.In(loc); lt.Hour() != 3 || lt.Minute() != 0 || lt.Day() != c.springDay.Day() {
			t.Errorf("%s: window at 02:30 on the spring day opens at %v, want 03:00 local", c.zone, lt)
		}
		// A ramp-capped adapter on the fall-back day waits for local midnight.
		in := base(fall)
		in.Adapter.DailyCap, in.SentToday, in.Adapter.Location = ip(3), 3, loc
		r := Evaluate(in)
		if lt := r.Binding.DeferUntil.In(loc); lt.Hour() != 0 || lt.Day() != c.fallDay.Day()+1 {
			t.Errorf("%s: ramp cap defers to %v, want the next local midnight", c.zone, lt)
		}
	}
}

func TestJitter(t *testing.T) {
	t.Parallel()
	id := [16]byte{9, 9}
	last := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		ts := last.Add(time.Duration(i) * time.Second)
		j := Jitter(id, ts, 30)
		if j != Jitter(id, ts, 30) {
			t.Fatal("jitter not deterministic")
		}
		if j < 0 || j > 30*time.Second || j%time.Second != 0 {
			t.Fatalf("jitter %v out of [0, 30 s]", j)
		}
		seen[j] = true
	}
	if len(seen) < 10 || Jitter(id, last, 0) != 0 {
		t.Fatalf("jitter spread %d values", len(seen))
	}
}

// TestDeferralsAreInTheFuture: whatever the inputs, a defer verdict never
// points at or before now (no hot retry loops).
// TestDeferralsAreInTheFuture also checks that a Lean evaluation decides
// the same as a full one.
func TestDeferralsAreInTheFuture(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	zones := []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham"}
	for i := 0; i < 20000; i++ {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		loc, _ := time.LoadLocation(zones[rng.IntN(len(zones))])
		last := now.Add(-time.Duration(rng.IntN(600)) * time.Second)
		until := now.Add(time.Duration(rng.IntN(7200)-3600) * time.Second)
		start := Clock(rng.IntN(1440))
		end := Clock(rng.IntN(1440))
		if end == start {
			end = (start + 1) % 1440
		}
		in := Input{Now: now, EnrollmentState: "active", ContactTimezone: zones[rng.IntN(len(zones))],
			Window:    Window{Days: []time.Weekday{time.Weekday(rng.IntN(7)), time.Weekday(rng.IntN(7))}, Start: start, End: end},
			Adapter:   Adapter{HealthState: dripdrop.HealthStates[rng.IntN(4)], RestingUntil: &until, DailyCap: ip(1 + rng.IntN(50)), LastSendAt: &last, MinGapSeconds: rng.IntN(300), GapJitterSeconds: rng.IntN(60), Location: loc},
			SentToday: rng.IntN(60), SentTodayForVersion: rng.IntN(60), MaxSharePct: 1 + rng.IntN(100)}
		r := Evaluate(in)
		for _, v := range r.Verdicts {
			if v.Action == Defer && !v.DeferUntil.After(now) {
				t.Fatalf("%s defers to %v, not after now %v (input %+v)", v.Policy, v.DeferUntil, now, in)
			}
		}
		// Lean (the forecast's mode) decides exactly the same, without inputs.
		in.Lean, in.Scratch = true, make([]Verdict, 0, len(Order))
		l := Evaluate(in)
		if (l.Binding == nil) != (r.Binding == nil) || !l.NextEligibleAt.Equal(r.NextEligibleAt) ||
			(l.Binding != nil && (l.Binding.Policy != r.Binding.Policy || l.Binding.Action != r.Binding.Action || l.Binding.Cap != r.Binding.Cap)) {
			t.Fatalf("lean verdict %+v differs from %+v", l.Binding, r.Binding)
		}
		for _, v := range l.Verdicts {
			if v.Inputs != nil {
				t.Fatalf("lean %s verdict has inputs", v.Policy)
			}
		}
	}
}

// defaultWindow is the tests' window, Monday–Friday 08:00–18:00.
func defaultWindow() Window {
	return Window{Days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, Start: 8 * 60, End: 18 * 60}
}

// The provider cap defers a send to a capped provider at the cap until the
// adapter's next local midnight; other providers and uncapped adapters go.
func TestProviderCap(t *testing.T) {
	t.Parallel()
	berlin := mustLoc(t, "Europe/Berlin")
	now := time.Date(2026, 11, 24, 22, 30, 0, 0, time.UTC) // 23:30 in Berlin
	in := Input{Now: now, EnrollmentState: dripdrop.EnrollmentActive, Adapter: Adapter{HealthState: dripdrop.HealthActive, Location: berlin},
		RecipientProvider: "microsoft", ProviderCap: 20, SentTodayForProvider: 19}
	if r := Evaluate(in); r.Binding != nil {
		t.Fatalf("19 of 20: %+v", r.Binding)
	}
	in.SentTodayForProvider = 20
	r := Evaluate(in)
	if r.Binding == nil || r.Binding.Policy != ProviderCap || r.Binding.Reason != "provider_cap" || r.Binding.Scope() != ScopeExecution ||
		!r.NextEligibleAt.Equal(time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("20 of 20: %+v", r.Binding)
	}
	if v := r.Binding; v.Inputs["provider_cap"] != 20 || v.Inputs["recipient_provider"] != "microsoft" || v.SentCount != 20 || v.Cap != 20 {
		t.Fatalf("inputs: %+v", v)
	}
	in.ProviderCap = 0
	if r := Evaluate(in); r.Binding != nil {
		t.Fatalf("uncapped: %+v", r.Binding)
	}
	in.ProviderCap, in.RecipientProvider = 20, ""
	if r := Evaluate(in); r.Binding != nil {
		t.Fatalf("unknown provider: %+v", r.Binding)
	}
}
