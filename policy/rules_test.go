package policy

import (
	"fmt"
	"testing"
	"time"
)

func TestVerdictScope(t *testing.T) {
	t.Parallel()
	cases := []struct {
		v    Verdict
		want Scope
	}{
		{Verdict{Policy: MinGap, Action: Allow}, ScopeNone},
		{Verdict{Policy: EnrollmentState, Action: Cancel}, ScopeCancel},
		{Verdict{Policy: Suppression, Action: Skip}, ScopeSkip},
		{Verdict{Policy: SendWindow, Action: Defer}, ScopeExecution},
		{Verdict{Policy: SubCap, Action: Defer}, ScopeExecution},
		{Verdict{Policy: AdapterResting, Action: Defer}, ScopeAdapter},
		{Verdict{Policy: RampCap, Action: Defer}, ScopeAdapter},
		{Verdict{Policy: MinGap, Action: Defer}, ScopeAdapter},
		{Verdict{Policy: "unknown", Action: Defer}, ScopeAdapter},
	}
	for _, c := range cases {
		if got := c.v.Scope(); got != c.want {
			t.Errorf("%s/%s: scope %d, want %d", c.v.Policy, c.v.Action, got, c.want)
		}
	}
	// Every policy that can defer has an explicit scope.
	for _, n := range Order[2:] {
		if s := (Verdict{Policy: n, Action: Defer}).Scope(); s != ScopeExecution && s != ScopeAdapter {
			t.Errorf("%s defers with scope %d", n, s)
		}
	}
}

func TestGapEnd(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	a := Adapter{ID: [16]byte{1}, MinGapSeconds: 60}
	if got := GapEnd(a, from); !got.Equal(from.Add(time.Minute)) {
		t.Fatalf("gap 60 s, no jitter: %v", got)
	}
	a.GapJitterSeconds = 30
	got := GapEnd(a, from)
	if got.Before(from.Add(time.Minute)) || got.After(from.Add(90*time.Second)) || !got.Equal(GapEnd(a, from)) {
		t.Fatalf("gap 60 s + jitter ≤ 30 s: %v (deterministic)", got)
	}
	if (Adapter{}).HasGap() || !(Adapter{GapJitterSeconds: 1}).HasGap() || !(Adapter{MinGapSeconds: 1}).HasGap() {
		t.Fatal("HasGap")
	}
}

func TestSenderUsable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	cases := []struct {
		name            string
		deleted, active bool
		a               Adapter
		want            bool
	}{
		{"active", false, true, Adapter{HealthState: "active"}, true},
		{"deleted", true, true, Adapter{HealthState: "active"}, false},
		{"inactive", false, false, Adapter{HealthState: "active"}, false},
		{"resting exactly 7 days", false, true, Adapter{HealthState: "resting", RestingUntil: at(TerminalRest)}, true},
		{"resting 7 days and a second", false, true, Adapter{HealthState: "resting", RestingUntil: at(TerminalRest + time.Second)}, false},
		{"resting without an end", false, true, Adapter{HealthState: "resting"}, true},
	}
	for _, c := range cases {
		if got := SenderUsable(c.deleted, c.active, c.a, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPickPin(t *testing.T) {
	t.Parallel()
	cands := []Candidate{{MemberOrder: 0, Weight: 3, Eligible: true}, {MemberOrder: 1, Weight: 1, Eligible: true}}
	var got []int
	for range 4 {
		i, wdrr := PickPin(cands, nil, nil)
		if !wdrr {
			t.Fatal("an eligible pool picks by WDRR")
		}
		got = append(got, i)
	}
	if got[0] != 0 || got[1] != 0 || got[2] != 1 || got[3] != 0 {
		t.Fatalf("3:1 picks %v, want a a b a", got)
	}
	none := []Candidate{{Weight: 1}, {Weight: 1, MemberOrder: 1}}
	if i, _ := PickPin(none, nil, nil); i != -1 {
		t.Fatalf("pause pool with no eligible member: %d", i)
	}
	if i, wdrr := PickPin(none, []bool{true, true}, []int64{4, 2}); i != 1 || wdrr {
		t.Fatalf("reassign: %d %v, want the least-loaded member 1", i, wdrr)
	}
	if i, _ := PickPin(none, []bool{false, false}, []int64{0, 0}); i != -1 {
		t.Fatalf("nothing reassignable: %d", i)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		if d, ok := Retry(i + 1); !ok || d != w {
			t.Errorf("attempt %d: %v %v, want %v", i+1, d, ok, w)
		}
	}
	if _, ok := Retry(MaxAttempts); ok {
		t.Error("the last attempt is not retried")
	}
	if _, ok := Retry(0); ok {
		t.Error("attempt 0")
	}
}

func TestNewWindow(t *testing.T) {
	t.Parallel()
	w := NewWindow(8*60, 18*60, []int16{1, 5}, "Europe/Berlin")
	if w.Start != 480 || w.End != 1080 || len(w.Days) != 2 || w.Days[1] != time.Friday || w.Timezone != "Europe/Berlin" {
		t.Fatalf("%+v", w)
	}
}

// A sender held for a reconnect has no cooldown end: its pins get the
// pool's policy at once, however short the rest looks.
func TestSenderUsableReconnectRequired(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	soon := now.Add(time.Hour)
	cases := []struct {
		name string
		a    Adapter
		want bool
	}{
		{"resting an hour", Adapter{HealthState: "resting", RestingUntil: &soon}, true},
		{"resting, reconnect required", Adapter{HealthState: "resting", ReconnectRequired: true}, false},
		{"resting an hour, reconnect required", Adapter{HealthState: "resting", RestingUntil: &soon, ReconnectRequired: true}, false},
		{"active, flag left over", Adapter{HealthState: "active", ReconnectRequired: true}, true},
	}
	for _, c := range cases {
		if got := SenderUsable(false, true, c.a, now); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// With provider matching, WDRR runs among the matching eligible members
// only; the others keep their counters; with no matching member eligible,
// among all.
func TestPickMatching(t *testing.T) {
	t.Parallel()
	cands := []Candidate{
		{MemberOrder: 0, Weight: 1, Eligible: true},
		{MemberOrder: 1, Weight: 1, Eligible: true},
		{MemberOrder: 2, Weight: 1, Eligible: true},
	}
	google := []bool{true, false, true}
	microsoft := []bool{false, true, false}
	var got []int
	for range 4 {
		got = append(got, PickMatching(cands, google))
	}
	if fmt.Sprint(got) != "[0 2 0 2]" || cands[1].Counter != 0 {
		t.Fatalf("google picks %v, counters %+v", got, cands)
	}
	if i := PickMatching(cands, microsoft); i != 1 {
		t.Fatalf("microsoft pick %d", i)
	}
	// The only microsoft member is ineligible: all eligible members compete.
	cands[1].Eligible = false
	before := cands[1].Counter
	if i := PickMatching(cands, microsoft); i != 0 && i != 2 {
		t.Fatalf("fallback pick %d", i)
	}
	if cands[1].Counter != before || !cands[0].Eligible || cands[1].Eligible {
		t.Fatalf("eligibility or counters changed: %+v", cands)
	}
	// No preference is PickPin.
	if i, via := PickPinMatching(cands, nil, nil, nil); i < 0 || !via {
		t.Fatalf("PickPinMatching without match: %d %v", i, via)
	}
}
