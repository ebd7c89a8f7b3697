// Package health holds dripdrop's adapter health rules (docs/health.md) as pure
// functions of counts and times: the bounce and complaint thresholds, the
// cooldown backoff, probing and graduation. The store applies them inside a
// transaction that holds the adapter's row lock; the leader runs the sweep
// (Loop) every minute.
package health

import (
	"time"

	"github.com/dripdrop/dripdrop"
)

// Transition reasons written by the engine.
const (
	ReasonBounceThreshold    = "bounce_threshold"
	ReasonComplaintThreshold = "complaint_threshold"
	ReasonProbeFailure       = "probe_failure"
	ReasonProbeSuccess       = "probe_success"
	ReasonRampComplete       = "ramp_complete"
	ReasonRestingElapsed     = "resting_elapsed"
	ReasonAuthFailed         = "auth_failed"
	ReasonExternalSignal     = "external_signal"
	// ReasonBackoffReset is not a state change: the cooldown returns to
	// BaseBackoff after CleanDays in active (written to the audit log only).
	ReasonBackoffReset = "backoff_reset"
)

// Defaults (docs/health.md).
const (
	// Window is how far back events count, bounded below by the last entry
	// into active/ramping.
	Window = 30 * 24 * time.Hour
	// MinSample is the number of sends before thresholds apply.
	MinSample = 20
	// BounceBasisPoints and ComplaintBasisPoints are the thresholds in
	// basis points of sends (2 % and 0.3 %), compared in integers so the
	// boundary is exact.
	BounceBasisPoints    = 200
	ComplaintBasisPoints = 30
	// BaseBackoff is the first rest; each consecutive failure doubles it up
	// to MaxBackoff.
	BaseBackoff = 24 * time.Hour
	MaxBackoff  = 7 * 24 * time.Hour
	// CleanPeriod in active resets the backoff; a breach within CleanPeriod
	// of recovering is a consecutive failure.
	CleanPeriod = 7 * 24 * time.Hour
	// ProbeSuccess clean probe sends end probing (a probing adapter sends
	// at most dripdrop.ProbeBudget a day).
	ProbeSuccess = 5
)

// Counts are an adapter's events over its health window.
type Counts struct {
	Sent       int `json:"sent"`
	Bounced    int `json:"bounced"`    // hard bounces
	Complained int `json:"complained"` // complaints
}

// BounceRate is bounced/sent (0 when nothing was sent).
func (c Counts) BounceRate() float64 { return rate(c.Bounced, c.Sent) }

// ComplaintRate is complained/sent (0 when nothing was sent).
func (c Counts) ComplaintRate() float64 { return rate(c.Complained, c.Sent) }

func rate(n, d int) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// WindowStart is where an adapter's health window begins: for active and
// ramping adapters the later of now−Window and the last entry into
// active/ramping (healthySince), so a rested adapter is not re-rested for old
// events; for probing adapters the entry into probing (stateSince).
func WindowStart(state dripdrop.HealthState, stateSince, healthySince, now time.Time) time.Time {
	if state == dripdrop.HealthProbing {
		return stateSince
	}
	start := now.Add(-Window)
	if healthySince.After(start) {
		start = healthySince
	}
	return start
}

// Breach reports whether counts over the window cross a threshold: only
// once Sent ≥ MinSample, bounce rate ≥ 2 % (bounce_threshold) or complaint
// rate ≥ 0.3 % (complaint_threshold). Bounces are checked first.
func Breach(c Counts) (reason string, breached bool) {
	if c.Sent < MinSample {
		return "", false
	}
	if c.Bounced*10000 >= BounceBasisPoints*c.Sent {
		return ReasonBounceThreshold, true
	}
	if c.Complained*10000 >= ComplaintBasisPoints*c.Sent {
		return ReasonComplaintThreshold, true
	}
	return "", false
}

// Backoff is the rest of the streak-th consecutive failure (1-based):
// BaseBackoff doubling, capped at MaxBackoff.
func Backoff(streak int) time.Duration {
	d := BaseBackoff
	for i := 1; i < streak && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// NextStreak is the failure streak after a new failure: consecutive (streak
// + 1) when the adapter fails while probing or within CleanPeriod of its last
// recovery (healthySince) and an earlier failure has not been forgiven;
// otherwise a fresh streak of 1.
func NextStreak(state dripdrop.HealthState, streak int, healthySince, now time.Time) int {
	if streak > 0 && (state == dripdrop.HealthProbing || now.Sub(healthySince) < CleanPeriod) {
		return streak + 1
	}
	return 1
}

// BackoffResetDue reports whether an adapter's failure streak is forgiven:
// CleanPeriod in active (stateSince is the entry into active; any breach
// would have moved it out).
func BackoffResetDue(state dripdrop.HealthState, streak int, stateSince, now time.Time) bool {
	return state == dripdrop.HealthActive && streak > 0 && now.Sub(stateSince) >= CleanPeriod
}

// ProbeOutcome decides a probing adapter from its events since probing
// began: any bounce or complaint fails the probe; ProbeSuccess clean sends
// pass it.
func ProbeOutcome(c Counts) (reason string, decided bool) {
	if c.Bounced > 0 || c.Complained > 0 {
		return ReasonProbeFailure, true
	}
	if c.Sent >= ProbeSuccess {
		return ReasonProbeSuccess, true
	}
	return "", false
}

// Ramp is an adapter's ramp settings.
type Ramp struct {
	DailyCap  *int
	Floor     int
	Increment *int
	StartedAt *time.Time
}

// RampCap is the ramp's effective cap now (dripdrop.RampCap); capped=false
// when there is no daily cap.
func (r Ramp) RampCap(now time.Time) (cap int, capped bool) {
	inc := 0
	if r.Increment != nil {
		inc = *r.Increment
	}
	return dripdrop.RampCap(r.DailyCap, r.Floor, inc, r.StartedAt, now)
}

// GraduationDue reports whether a ramp is complete: its effective cap has
// reached daily_cap (an uncapped adapter has nothing to ramp towards).
func (r Ramp) GraduationDue(now time.Time) bool {
	cap, capped := r.RampCap(now)
	return !capped || cap >= *r.DailyCap
}

// GraduationAt is when the ramp reaches daily_cap (nil when it already has
// or never ramps).
func (r Ramp) GraduationAt() *time.Time {
	if r.DailyCap == nil || r.Increment == nil || *r.Increment <= 0 || r.StartedAt == nil {
		return nil
	}
	need := *r.DailyCap - r.Floor
	if need <= 0 {
		return nil
	}
	days := (need + *r.Increment - 1) / *r.Increment
	t := r.StartedAt.Add(time.Duration(days) * 24 * time.Hour)
	return &t
}

// Snapshot is what the rules read about one adapter.
type Snapshot struct {
	State        dripdrop.HealthState
	StateSince   time.Time // entry into State
	HealthySince time.Time // last entry into active/ramping
	RestingUntil *time.Time
	// Held: a resting adapter waits for an operator (a reconnect of its
	// mailbox), never for time: no automatic probe.
	Held    bool
	Streak  int           // consecutive failures not yet forgiven
	Backoff time.Duration // the stored cooldown (its next rest when none is decided)
	Counts  Counts        // over WindowStart(State, …)
	Ramp    Ramp
}

// Decision is an automatic change Decide asks for.
type Decision struct {
	To     dripdrop.HealthState // the new state; equal to the current one for a backoff reset
	Reason string
	// Streak and RestingUntil apply when To is resting; Streak also for a
	// backoff reset (0).
	Streak       int
	Backoff      time.Duration
	RestingUntil *time.Time
}

// Applied is an adapter's health after a transition.
type Applied struct {
	State         dripdrop.HealthState
	RestingUntil  *time.Time // set only for resting
	RampStartedAt *time.Time
	Streak        int
	Backoff       time.Duration
}

// Apply is the health of an adapter in s after the transition d at now —
// the one place a decision becomes state, for the store and the forecast
// alike. A move to resting takes d's streak and backoff when d decided them
// (else keeps s's) and rests until d.RestingUntil, or now + the backoff;
// every other state has no resting_until; ramping restarts the ramp at now.
func Apply(s Snapshot, d Decision, now time.Time) Applied {
	out := Applied{State: d.To, RampStartedAt: s.Ramp.StartedAt, Streak: s.Streak, Backoff: s.Backoff}
	if d.To == dripdrop.HealthRamping {
		out.RampStartedAt = &now
	}
	if d.To != dripdrop.HealthResting {
		return out
	}
	if d.Streak > 0 {
		out.Streak, out.Backoff = d.Streak, d.Backoff
	}
	out.RestingUntil = d.RestingUntil
	if out.RestingUntil == nil {
		t := now.Add(out.Backoff)
		out.RestingUntil = &t
	}
	return out
}

// Decide applies every rule to one adapter and returns the change due now,
// if any: resting past resting_until → probing; probing with a bounce or
// complaint → resting (probe_failure), with ProbeSuccess clean sends →
// ramping; active/ramping over a threshold → resting; ramping whose ramp
// reached daily_cap → active; active for CleanPeriod → backoff reset.
func Decide(s Snapshot, now time.Time) (Decision, bool) {
	rest := func(reason string) (Decision, bool) {
		streak := NextStreak(s.State, s.Streak, s.HealthySince, now)
		b := Backoff(streak)
		until := now.Add(b)
		return Decision{To: dripdrop.HealthResting, Reason: reason, Streak: streak, Backoff: b, RestingUntil: &until}, true
	}
	switch s.State {
	case dripdrop.HealthResting:
		if !s.Held && (s.RestingUntil == nil || !s.RestingUntil.After(now)) {
			return Decision{To: dripdrop.HealthProbing, Reason: ReasonRestingElapsed}, true
		}
	case dripdrop.HealthProbing:
		if reason, ok := ProbeOutcome(s.Counts); ok {
			if reason == ReasonProbeFailure {
				return rest(reason)
			}
			return Decision{To: dripdrop.HealthRamping, Reason: reason}, true
		}
	case dripdrop.HealthActive, dripdrop.HealthRamping:
		if reason, ok := Breach(s.Counts); ok {
			return rest(reason)
		}
		if s.State == dripdrop.HealthRamping && s.Ramp.GraduationDue(now) {
			return Decision{To: dripdrop.HealthActive, Reason: ReasonRampComplete}, true
		}
		if BackoffResetDue(s.State, s.Streak, s.StateSince, now) {
			return Decision{To: dripdrop.HealthActive, Reason: ReasonBackoffReset, Streak: 0, Backoff: BaseBackoff}, true
		}
	}
	return Decision{}, false
}

// AuthFailure is the rest after repeated AUTH failures (docs/sending.md): a
// failure like a breach for the backoff.
func AuthFailure(s Snapshot, now time.Time) Decision {
	streak := NextStreak(s.State, s.Streak, s.HealthySince, now)
	b := Backoff(streak)
	until := now.Add(b)
	return Decision{To: dripdrop.HealthResting, Reason: ReasonAuthFailed, Streak: streak, Backoff: b, RestingUntil: &until}
}

// Next is the next automatic transition Decide will make when nothing
// else happens, for the health report. At is nil when it waits on sends
// rather than on time.
type Next struct {
	To     dripdrop.HealthState `json:"to"`
	Reason string               `json:"reason"`
	At     *time.Time           `json:"at"`
	// SendsNeeded is how many more clean sends a probing adapter needs.
	SendsNeeded int `json:"sends_needed,omitempty"`
}

// NextTransition predicts the next automatic transition of an adapter.
func NextTransition(s Snapshot, now time.Time) *Next {
	switch s.State {
	case dripdrop.HealthResting:
		if s.Held {
			return nil
		}
		return &Next{To: dripdrop.HealthProbing, Reason: ReasonRestingElapsed, At: s.RestingUntil}
	case dripdrop.HealthProbing:
		return &Next{To: dripdrop.HealthRamping, Reason: ReasonProbeSuccess, SendsNeeded: max(0, ProbeSuccess-s.Counts.Sent)}
	case dripdrop.HealthRamping:
		at := s.Ramp.GraduationAt()
		if at == nil || at.Before(now) {
			at = &now
		}
		return &Next{To: dripdrop.HealthActive, Reason: ReasonRampComplete, At: at}
	case dripdrop.HealthActive:
		if s.Streak > 0 {
			at := s.StateSince.Add(CleanPeriod)
			return &Next{To: dripdrop.HealthActive, Reason: ReasonBackoffReset, At: &at}
		}
	}
	return nil
}

// AdapterBackoff is how long an adapter is blocked after its consecutive-th
// adapter-level failure (docs/sending.md): 1 min doubling to 1 h.
func AdapterBackoff(consecutive int) time.Duration {
	d := time.Minute
	for i := 1; i < consecutive && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// AuthFailuresToRest is how many consecutive AUTH failures rest an adapter.
const AuthFailuresToRest = 3
