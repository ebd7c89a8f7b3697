package policy

import (
	"time"

	"github.com/dripdrop/dripdrop"
)

// The send rules around the verdicts, one place for the engine and the
// forecast: what a verdict blocks (Scope), when an adapter's gap after a
// send ends (GapEnd), whether a pinned sender can still send (SenderUsable),
// which member takes a pin (PickPin), when a failed send is retried
// (Retry) and the sending window of a version (NewWindow). A new policy
// adds its Name, its rule in Evaluate and its scope here; nothing else
// switches on policies. See docs/architecture.md.

// Scope is what a binding verdict holds back.
type Scope int

// Scopes.
const (
	// ScopeNone: the verdict allows the send.
	ScopeNone Scope = iota
	// ScopeCancel: the enrollment is not active; the execution is cancelled.
	ScopeCancel
	// ScopeSkip: the recipient is suppressed; the execution is skipped and
	// the enrollment stopped.
	ScopeSkip
	// ScopeExecution: only this execution waits until DeferUntil (its
	// window is closed, or its version's share of the adapter is used up);
	// the adapter's other executions go on.
	ScopeExecution
	// ScopeAdapter: the adapter cannot send before DeferUntil (resting, its
	// day's cap reached, its gap running): it is blocked as a whole, with
	// one write however large its backlog.
	ScopeAdapter
)

// Scope is what v holds back.
func (v Verdict) Scope() Scope {
	switch v.Action {
	case Allow:
		return ScopeNone
	case Cancel:
		return ScopeCancel
	case Skip:
		return ScopeSkip
	}
	switch v.Policy {
	case SendWindow, Holiday, SubCap, ProviderCap:
		return ScopeExecution
	case AdapterResting, RampCap, MinGap:
		return ScopeAdapter
	}
	// A policy without a scope blocks its adapter: the conservative
	// choice (it cannot over-send).
	return ScopeAdapter
}

// HasGap reports whether the adapter keeps a gap between sends.
func (a Adapter) HasGap() bool { return a.MinGapSeconds > 0 || a.GapJitterSeconds > 0 }

// GapEnd is when an adapter's gap after a conversation that ended at from
// ends: min_gap_seconds plus the deterministic jitter of that send.
func GapEnd(a Adapter, from time.Time) time.Time {
	return from.Add(time.Duration(a.MinGapSeconds)*time.Second + Jitter(a.ID, from, a.GapJitterSeconds))
}

// TerminalRest is how long a pinned adapter may rest before its enrollments
// get the pool's policy (pause or reassign) instead of waiting.
const TerminalRest = 7 * 24 * time.Hour

// SenderUsable reports whether an enrollment's sender can still send its
// executions: not deleted, active, not waiting for a reconnect (a rest
// without end), and not resting beyond TerminalRest from now. A sender that is not usable gives its pinned enrollments the
// pool's policy; a step's override sender fails the step.
func SenderUsable(deleted, active bool, a Adapter, now time.Time) bool {
	if deleted || !active || (a.HealthState == dripdrop.HealthResting && a.ReconnectRequired) {
		return false
	}
	return !(a.HealthState == dripdrop.HealthResting && a.RestingUntil != nil && a.RestingUntil.After(now.Add(TerminalRest)))
}

// PickPin chooses the member that takes a new pin: smooth weighted round
// robin over the eligible candidates (updating their counters), else —
// when the pool reassigns (reassignable non-nil) — the least-loaded
// reassignable member (pins: live pins per member), else -1: the pool is
// exhausted. viaWDRR reports which rule chose; counters move only then.
func PickPin(cands []Candidate, reassignable []bool, pins []int64) (i int, viaWDRR bool) {
	if i := Pick(cands); i >= 0 {
		return i, true
	}
	if reassignable == nil {
		return -1, false
	}
	return LeastLoaded(reassignable, pins), false
}

// PickMatching is Pick restricted to the candidates with match[i] when at
// least one of them is eligible (a pool with provider_matching "prefer":
// the members whose mailbox provider is the recipient's); the others take
// no part and keep their counters. With none eligible it is Pick over all.
func PickMatching(cands []Candidate, match []bool) int {
	some := false
	for i := range cands {
		if cands[i].Eligible && match[i] && cands[i].EffectiveWeight() > 0 {
			some = true
			break
		}
	}
	if !some {
		return Pick(cands)
	}
	saved := make([]bool, len(cands))
	for i := range cands {
		saved[i] = cands[i].Eligible
		cands[i].Eligible = cands[i].Eligible && match[i]
	}
	w := Pick(cands)
	for i := range cands {
		cands[i].Eligible = saved[i]
	}
	return w
}

// PickPinMatching is PickPin with PickMatching for the WDRR step (match
// nil: no preference).
func PickPinMatching(cands []Candidate, match, reassignable []bool, pins []int64) (i int, viaWDRR bool) {
	if match == nil {
		return PickPin(cands, reassignable, pins)
	}
	if i := PickMatching(cands, match); i >= 0 {
		return i, true
	}
	if reassignable == nil {
		return -1, false
	}
	return LeastLoaded(reassignable, pins), false
}

// Retry schedule of a send that failed temporarily.
const (
	// MaxAttempts is how many times one execution is attempted.
	MaxAttempts = 5
	// RetryBase is the first retry's delay; it doubles per attempt.
	RetryBase = 30 * time.Second
)

// Retry reports whether a temporary failure of the attempt-th attempt
// (1-based) is retried, and after how long: 30 s × 2^(attempt−1), for
// attempts below MaxAttempts.
func Retry(attempt int) (time.Duration, bool) {
	if attempt < 1 || attempt >= MaxAttempts {
		return 0, false
	}
	return RetryBase << (attempt - 1), true
}

// NewWindow is a version's sending window from its stored form: local
// opening and closing times in minutes after midnight, weekdays (0 =
// Sunday) and the version's zone.
func NewWindow[D ~int | ~int16 | ~int32](start, end int, days []D, tz string, holidays ...string) Window {
	w := Window{Start: Clock(start), End: Clock(end), Timezone: tz, Days: make([]time.Weekday, len(days)), Holidays: holidays}
	for i, d := range days {
		w.Days[i] = time.Weekday(d)
	}
	return w
}
