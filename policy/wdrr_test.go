package policy

import (
	"math"
	"strings"
	"testing"
	"time"
)

func picks(t *testing.T, weights []int, n int) string {
	t.Helper()
	cands := make([]Candidate, len(weights))
	for i, w := range weights {
		cands[i] = Candidate{MemberOrder: i, Weight: w, Eligible: true}
	}
	var b strings.Builder
	for range n {
		i := Pick(cands)
		if i < 0 {
			t.Fatal("no pick")
		}
		b.WriteByte(byte('a' + i))
	}
	return b.String()
}

func TestPickSequences(t *testing.T) {
	t.Parallel()
	if got := picks(t, []int{3, 1}, 4); got != "aaba" {
		t.Fatalf("3:1 from zero counters = %q, want aaba", got)
	}
	if got := picks(t, []int{3, 1}, 8); got != "aabaaaba" {
		t.Fatalf("3:1 over 8 = %q", got)
	}
	if got := picks(t, []int{1, 1}, 6); got != "ababab" {
		t.Fatalf("equal weights = %q, want alternation", got)
	}
	got := picks(t, []int{5, 3, 2}, 1000)
	counts := [3]int{}
	for _, c := range got {
		counts[c-'a']++
	}
	for i, want := range []float64{500, 300, 200} {
		if math.Abs(float64(counts[i])-want) > want*0.05 {
			t.Fatalf("5:3:2 over 1000 = %v, want within ±5%% of 500/300/200", counts)
		}
	}
}

func TestPickIneligibleKeepCounters(t *testing.T) {
	t.Parallel()
	cands := []Candidate{{MemberOrder: 0, Weight: 1, Eligible: true}, {MemberOrder: 1, Weight: 1, Eligible: false, Counter: 7}}
	for range 3 {
		if Pick(cands) != 0 {
			t.Fatal("the only eligible member must win")
		}
	}
	if cands[1].Counter != 7 {
		t.Fatalf("ineligible counter changed to %d", cands[1].Counter)
	}
	none := []Candidate{{Weight: 1}, {Weight: 2}}
	if Pick(none) != -1 {
		t.Fatal("no eligible member must return -1")
	}
}

func TestPickHealthScore(t *testing.T) {
	t.Parallel()
	zero, half := 0.0, 0.5
	cands := []Candidate{{MemberOrder: 0, Weight: 1, Eligible: true, HealthScore: &zero}, {MemberOrder: 1, Weight: 1, Eligible: true}}
	for range 4 {
		if Pick(cands) != 1 {
			t.Fatal("a member with health score 0 must never be picked")
		}
	}
	// Weight 2 at score 0.5 behaves like weight 1: alternation.
	cands = []Candidate{{MemberOrder: 0, Weight: 2, Eligible: true, HealthScore: &half}, {MemberOrder: 1, Weight: 1, Eligible: true}}
	var seq []int
	for range 4 {
		seq = append(seq, Pick(cands))
	}
	if seq[0]+seq[1] != 1 || seq[2]+seq[3] != 1 {
		t.Fatalf("score-scaled picks %v, want alternation", seq)
	}
}

func TestPickTieBreaks(t *testing.T) {
	t.Parallel()
	// Equal counters after adding: larger weight wins, then lower member order.
	cands := []Candidate{{MemberOrder: 0, Weight: 1, Eligible: true, Counter: 1000}, {MemberOrder: 1, Weight: 2, Eligible: true}}
	if got := Pick(cands); got != 1 {
		t.Fatalf("tie on counter: picked %d, want the larger weight", got)
	}
	cands = []Candidate{{MemberOrder: 1, Weight: 1, Eligible: true}, {MemberOrder: 0, Weight: 1, Eligible: true}}
	if got := Pick(cands); got != 1 {
		t.Fatalf("full tie: picked %d, want the lower member order", got)
	}
}

func TestEligibility(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	zero, half := 0.0, 0.5
	ok := Member{MemberActive: true, AdapterActive: true, Adapter: Adapter{HealthState: "active", DailyCap: ip(10)}}
	cases := []struct {
		name   string
		m      func(Member) Member
		sent   int
		want   bool
		reason string
	}{
		{"eligible", func(m Member) Member { return m }, 9, true, ""},
		{"cap reached", func(m Member) Member { return m }, 10, false, "daily_cap_reached"},
		{"probing budget", func(m Member) Member { m.Adapter.HealthState = "probing"; return m }, 5, false, "daily_cap_reached"},
		{"uncapped", func(m Member) Member { m.Adapter.DailyCap = nil; return m }, 1000, true, ""},
		{"member inactive", func(m Member) Member { m.MemberActive = false; return m }, 0, false, "member_inactive"},
		{"deleted", func(m Member) Member { m.Deleted = true; return m }, 0, false, "adapter_deleted"},
		{"adapter inactive", func(m Member) Member { m.AdapterActive = false; return m }, 0, false, "adapter_inactive"},
		{"resting", func(m Member) Member { m.Adapter.HealthState = "resting"; return m }, 0, false, "resting"},
		{"score zero", func(m Member) Member { m.HealthScore = &zero; return m }, 0, false, "health_score_zero"},
		{"score half", func(m Member) Member { m.HealthScore = &half; return m }, 0, true, ""},
	}
	for _, c := range cases {
		got, reason := Eligibility(c.m(ok), c.sent, now)
		if got != c.want || reason != c.reason {
			t.Errorf("%s: %v %q, want %v %q", c.name, got, reason, c.want, c.reason)
		}
	}
	if i := LeastLoaded([]bool{true, false, true}, []int64{5, 0, 3}); i != 2 {
		t.Fatalf("least loaded: %d", i)
	}
	if i := LeastLoaded([]bool{false}, []int64{0}); i != -1 {
		t.Fatalf("none reassignable: %d", i)
	}
	if Reassignable(Member{MemberActive: true, AdapterActive: true, Adapter: Adapter{HealthState: "resting"}}) {
		t.Fatal("a resting adapter is not a reassign target")
	}
}
