package health

import (
	"github.com/dripdrop/dripdrop"

	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func TestBreachBoundaries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		c    Counts
		want string
	}{
		{"19 sends, 1 bounce: below min sample", Counts{Sent: 19, Bounced: 1}, ""},
		{"19 sends, all bounced: below min sample", Counts{Sent: 19, Bounced: 19, Complained: 19}, ""},
		{"20 sends, 1 bounce (5 %)", Counts{Sent: 20, Bounced: 1}, ReasonBounceThreshold},
		{"20 sends, clean", Counts{Sent: 20}, ""},
		{"1.99 %: 199 of 10000", Counts{Sent: 10000, Bounced: 199}, ""},
		{"2 % exactly: 200 of 10000", Counts{Sent: 10000, Bounced: 200}, ReasonBounceThreshold},
		{"2 % exactly: 1 of 50", Counts{Sent: 50, Bounced: 1}, ReasonBounceThreshold},
		{"1.96 %: 1 of 51", Counts{Sent: 51, Bounced: 1}, ""},
		{"0.29 %: 29 of 10000", Counts{Sent: 10000, Complained: 29}, ""},
		{"0.3 % exactly: 30 of 10000", Counts{Sent: 10000, Complained: 30}, ReasonComplaintThreshold},
		{"0.3 % exactly: 3 of 1000", Counts{Sent: 1000, Complained: 3}, ReasonComplaintThreshold},
		{"0.299 %: 3 of 1001", Counts{Sent: 1001, Complained: 3}, ""},
		{"1 complaint in 20 sends (5 %)", Counts{Sent: 20, Complained: 1}, ReasonComplaintThreshold},
		{"both: bounce reported", Counts{Sent: 100, Bounced: 2, Complained: 1}, ReasonBounceThreshold},
	}
	for _, c := range cases {
		got, ok := Breach(c.c)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: Breach(%+v) = %q %v, want %q", c.name, c.c, got, ok, c.want)
		}
	}
}

func TestRates(t *testing.T) {
	t.Parallel()
	c := Counts{Sent: 200, Bounced: 4, Complained: 1}
	if c.BounceRate() != 0.02 || c.ComplaintRate() != 0.005 || (Counts{}).BounceRate() != 0 {
		t.Fatal(c.BounceRate(), c.ComplaintRate())
	}
}

func TestWindowStart(t *testing.T) {
	t.Parallel()
	old := t0.Add(-60 * 24 * time.Hour)
	recent := t0.Add(-2 * 24 * time.Hour)
	if got := WindowStart(dripdrop.HealthActive, old, old, t0); !got.Equal(t0.Add(-Window)) {
		t.Fatalf("30-day bound: %v", got)
	}
	if got := WindowStart(dripdrop.HealthRamping, recent, recent, t0); !got.Equal(recent) {
		t.Fatalf("since recovery: %v", got)
	}
	probeStart := t0.Add(-time.Hour)
	if got := WindowStart(dripdrop.HealthProbing, probeStart, old, t0); !got.Equal(probeStart) {
		t.Fatalf("probing: %v", got)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{24 * time.Hour, 48 * time.Hour, 96 * time.Hour, 168 * time.Hour, 168 * time.Hour, 168 * time.Hour}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if Backoff(0) != BaseBackoff || Backoff(1000) != MaxBackoff {
		t.Fatal("edges")
	}
}

func TestNextStreak(t *testing.T) {
	t.Parallel()
	cases := []struct {
		state   dripdrop.HealthState
		streak  int
		healthy time.Duration // before now
		want    int
	}{
		{dripdrop.HealthActive, 0, time.Hour, 1},                     // first failure ever
		{dripdrop.HealthRamping, 0, time.Hour, 1},                    // a new adapter's first breach
		{dripdrop.HealthProbing, 1, 48 * time.Hour, 2},               // probe failure
		{dripdrop.HealthProbing, 3, 30 * 24 * time.Hour, 4},          // probe failure, however long ago
		{dripdrop.HealthRamping, 1, 7*24*time.Hour - time.Second, 2}, // within 7 days of recovery
		{dripdrop.HealthRamping, 1, 7 * 24 * time.Hour, 1},           // exactly 7 days: not consecutive
		{dripdrop.HealthActive, 2, 10 * 24 * time.Hour, 1},           // long after recovery
		{dripdrop.HealthActive, 4, 6 * 24 * time.Hour, 5},            // within 7 days
	}
	for _, c := range cases {
		if got := NextStreak(c.state, c.streak, t0.Add(-c.healthy), t0); got != c.want {
			t.Errorf("NextStreak(%s, %d, -%v) = %d, want %d", c.state, c.streak, c.healthy, got, c.want)
		}
	}
}

func TestBackoffResetDue(t *testing.T) {
	t.Parallel()
	seven := 7 * 24 * time.Hour
	if BackoffResetDue(dripdrop.HealthActive, 1, t0.Add(-seven+time.Second), t0) {
		t.Fatal("reset before 7 clean days")
	}
	if !BackoffResetDue(dripdrop.HealthActive, 1, t0.Add(-seven), t0) {
		t.Fatal("no reset at 7 clean days")
	}
	if BackoffResetDue(dripdrop.HealthRamping, 1, t0.Add(-2*seven), t0) || BackoffResetDue(dripdrop.HealthActive, 0, t0.Add(-2*seven), t0) {
		t.Fatal("reset only in active with a streak")
	}
}

func TestProbeOutcome(t *testing.T) {
	t.Parallel()
	cases := []struct {
		c    Counts
		want string
	}{
		{Counts{Sent: 4}, ""},
		{Counts{Sent: 5}, ReasonProbeSuccess},
		{Counts{Sent: 1, Bounced: 1}, ReasonProbeFailure},
		{Counts{Sent: 5, Complained: 1}, ReasonProbeFailure},
		{Counts{Sent: 9}, ReasonProbeSuccess},
	}
	for _, c := range cases {
		got, ok := ProbeOutcome(c.c)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("ProbeOutcome(%+v) = %q, want %q", c.c, got, c.want)
		}
	}
}

func ip(n int) *int { return &n }

func TestGraduation(t *testing.T) {
	t.Parallel()
	// floor 5, increment 3, cap 40: day 12 (index 11) is 38, day 13 is 40.
	r := Ramp{DailyCap: ip(40), Floor: 5, Increment: ip(3), StartedAt: &t0}
	day := 24 * time.Hour
	if c, _ := r.RampCap(t0.Add(11 * day)); c != 38 || r.GraduationDue(t0.Add(12*day-time.Second)) {
		t.Fatalf("day 12: cap %d", c)
	}
	if !r.GraduationDue(t0.Add(12 * day)) {
		t.Fatal("day 13 must graduate")
	}
	if at := r.GraduationAt(); at == nil || !at.Equal(t0.Add(12*day)) {
		t.Fatalf("GraduationAt %v", at)
	}
	if !(Ramp{}).GraduationDue(t0) || !(Ramp{DailyCap: ip(10)}).GraduationDue(t0) {
		t.Fatal("uncapped or unramped adapters have nothing to ramp towards")
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	until := t0.Add(time.Minute)
	past := t0.Add(-time.Second)
	cases := []struct {
		name    string
		s       Snapshot
		to      dripdrop.HealthState
		reason  string
		backoff time.Duration
	}{
		{"resting, not yet", Snapshot{State: dripdrop.HealthResting, RestingUntil: &until}, "", "", 0},
		{"resting elapsed", Snapshot{State: dripdrop.HealthResting, RestingUntil: &past}, dripdrop.HealthProbing, ReasonRestingElapsed, 0},
		{"first breach", Snapshot{State: dripdrop.HealthActive, StateSince: t0.Add(-day), HealthySince: t0.Add(-day), Counts: Counts{Sent: 20, Bounced: 1}}, dripdrop.HealthResting, ReasonBounceThreshold, day},
		{"probe failure doubles", Snapshot{State: dripdrop.HealthProbing, Streak: 1, Counts: Counts{Sent: 2, Bounced: 1}}, dripdrop.HealthResting, ReasonProbeFailure, 2 * day},
		{"probe failure caps", Snapshot{State: dripdrop.HealthProbing, Streak: 4, Counts: Counts{Sent: 2, Complained: 1}}, dripdrop.HealthResting, ReasonProbeFailure, 7 * day},
		{"probe success", Snapshot{State: dripdrop.HealthProbing, Streak: 1, Counts: Counts{Sent: 5}}, dripdrop.HealthRamping, ReasonProbeSuccess, 0},
		{"probing, waiting", Snapshot{State: dripdrop.HealthProbing, Streak: 1, Counts: Counts{Sent: 4}}, "", "", 0},
		{"graduation", Snapshot{State: dripdrop.HealthRamping, Ramp: Ramp{DailyCap: ip(10), Floor: 10, Increment: ip(1), StartedAt: &t0}}, dripdrop.HealthActive, ReasonRampComplete, 0},
		{"ramping", Snapshot{State: dripdrop.HealthRamping, Ramp: Ramp{DailyCap: ip(10), Floor: 1, Increment: ip(1), StartedAt: &t0}}, "", "", 0},
		{"backoff reset", Snapshot{State: dripdrop.HealthActive, Streak: 3, StateSince: t0.Add(-7 * day)}, dripdrop.HealthActive, ReasonBackoffReset, BaseBackoff},
		{"clean active", Snapshot{State: dripdrop.HealthActive, StateSince: t0.Add(-30 * day), Counts: Counts{Sent: 1000, Bounced: 19}}, "", "", 0},
	}
	for _, c := range cases {
		d, ok := Decide(c.s, t0)
		if ok != (c.to != "") || d.To != c.to || d.Reason != c.reason || (c.to == dripdrop.HealthResting && (d.Backoff != c.backoff || !d.RestingUntil.Equal(t0.Add(c.backoff)))) {
			t.Errorf("%s: Decide = %+v %v", c.name, d, ok)
		}
		if c.reason == ReasonBackoffReset && (d.Streak != 0 || d.Backoff != BaseBackoff) {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
}

func TestAdapterBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := AdapterBackoff(i + 1); got != w {
			t.Errorf("AdapterBackoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestNextTransition(t *testing.T) {
	t.Parallel()
	until := t0.Add(time.Hour)
	if n := NextTransition(Snapshot{State: dripdrop.HealthResting, RestingUntil: &until}, t0); n.To != dripdrop.HealthProbing || !n.At.Equal(until) {
		t.Fatalf("%+v", n)
	}
	if n := NextTransition(Snapshot{State: dripdrop.HealthProbing, Counts: Counts{Sent: 2}}, t0); n.To != dripdrop.HealthRamping || n.SendsNeeded != 3 || n.At != nil {
		t.Fatalf("%+v", n)
	}
	if n := NextTransition(Snapshot{State: dripdrop.HealthActive}, t0); n != nil {
		t.Fatalf("%+v", n)
	}
}

// A resting adapter held for a reconnect (its OAuth2 grant died) is never
// probed by time: not with resting_until unset, not long after it.
func TestHeldAdapterIsNeverProbed(t *testing.T) {
	t.Parallel()
	past := t0.Add(-time.Second)
	cases := []struct {
		name  string
		held  bool
		until *time.Time
		probe bool
	}{
		{"held, no resting_until", true, nil, false},
		{"held, resting_until passed", true, &past, false},
		{"not held, no resting_until", false, nil, true},
		{"not held, resting_until passed", false, &past, true},
	}
	for _, c := range cases {
		s := Snapshot{State: dripdrop.HealthResting, Held: c.held, RestingUntil: c.until, StateSince: t0.Add(-30 * 24 * time.Hour)}
		d, ok := Decide(s, t0)
		if ok != c.probe || (ok && d.To != dripdrop.HealthProbing) {
			t.Errorf("%s: Decide = %+v, %v; want probe %v", c.name, d, ok, c.probe)
		}
		if next := NextTransition(s, t0); (next != nil) != c.probe {
			t.Errorf("%s: NextTransition = %+v, want one: %v", c.name, next, c.probe)
		}
	}
}
