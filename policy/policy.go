// Package policy holds dripdrop's sending policies as pure functions
// (docs/sending.md): inputs in, verdicts out, time from the caller. The dispatcher
// evaluates them inside the transaction that holds the adapter's row lock,
// and the explain API shows every verdict with its inputs.
//
// It also holds the smooth weighted round robin used to pin enrollments.
package policy

import (
	"encoding/binary"
	"hash/fnv"
	"sync"
	"time"

	"github.com/dripdrop/dripdrop"
)

// Name identifies a policy; the constants are in evaluation order.
type Name string

// Policies, in the order they are evaluated.
const (
	EnrollmentState Name = "enrollment_state"
	Suppression     Name = "suppression"
	Holiday         Name = "holiday"
	SendWindow      Name = "send_window"
	AdapterResting  Name = "adapter_resting"
	RampCap         Name = "ramp_cap"
	SubCap          Name = "sub_cap"
	ProviderCap     Name = "provider_cap"
	MinGap          Name = "min_gap"
)

// Order lists every policy in evaluation order.
var Order = []Name{EnrollmentState, Suppression, Holiday, SendWindow, AdapterResting, RampCap, SubCap, ProviderCap, MinGap}

// Action is what a verdict asks of the dispatcher.
type Action string

// Actions.
const (
	Allow  Action = "allow"
	Defer  Action = "defer"  // keep scheduled, try again at DeferUntil
	Skip   Action = "skip"   // suppressed: skip the execution, stop the enrollment
	Cancel Action = "cancel" // the enrollment is not active
)

// RestingRetry is the deferral when a resting adapter has no (or a past)
// resting_until.
const RestingRetry = 5 * time.Minute

// Verdict is one policy's decision.
type Verdict struct {
	Policy        Name           `json:"policy"`
	Action        Action         `json:"action"`
	DeferUntil    time.Time      `json:"defer_until,omitzero"`
	Reason        string         `json:"reason,omitempty"`
	Inputs        map[string]any `json:"inputs"`
	SentCount     int            `json:"-"`
	Cap           int            `json:"-"`
	MaxSharePct   int            `json:"-"`
	MinGapSeconds int            `json:"-"`
	Timezone      string         `json:"-"`
}

// Input is everything the policies read.
type Input struct {
	Now                 time.Time
	EnrollmentState     dripdrop.EnrollmentState
	Suppressed          bool
	SuppressionScope    string
	Window              Window
	ContactTimezone     string
	Adapter             Adapter
	SentToday           int // this adapter's sends since its local midnight
	SentTodayForVersion int // ... for this sequence version
	MaxSharePct         int // 1..100; 0 means 100
	ProbeBudget         int // 0 means dripdrop.ProbeBudget
	// RecipientProvider is the contact's mailbox provider ("" unknown);
	// ProviderCap the adapter's daily cap for it (0 = none) and
	// SentTodayForProvider its sends to that provider since local midnight.
	RecipientProvider    string
	ProviderCap          int
	SentTodayForProvider int
	// Lean skips the explain inputs (Verdict.Inputs stays nil): the same
	// decisions for callers that evaluate millions of times (the forecast).
	Lean bool
	// Scratch, when it has room for every policy, holds the verdicts
	// instead of a new slice (the forecast reuses one per run).
	Scratch []Verdict
}

// Result is the outcome of Evaluate.
type Result struct {
	Verdicts       []Verdict `json:"verdicts"`
	Binding        *Verdict  `json:"binding"`
	NextEligibleAt time.Time `json:"next_eligible_at,omitzero"`
}

// Evaluate runs every policy in order; the first that does not allow is
// binding.
func Evaluate(in Input) Result {
	now := in.Now
	a := in.Adapter
	loc := a.Location
	if loc == nil {
		loc = time.UTC
	}
	vs := in.Scratch[:0]
	if cap(vs) < len(Order) {
		vs = make([]Verdict, 0, len(Order))
	}

	lean := in.Lean
	v := Verdict{Policy: EnrollmentState, Action: Allow}
	if !lean {
		v.Inputs = map[string]any{"state": in.EnrollmentState}
	}
	if in.EnrollmentState != dripdrop.EnrollmentActive {
		v.Action, v.Reason = Cancel, "enrollment_"+string(in.EnrollmentState)
	}
	vs = append(vs, v)

	v = Verdict{Policy: Suppression, Action: Allow}
	if !lean {
		v.Inputs = map[string]any{"suppressed": in.Suppressed, "scope": in.SuppressionScope}
	}
	if in.Suppressed {
		v.Action, v.Reason = Skip, "suppressed"
	}
	vs = append(vs, v)

	wloc, tz := ResolveLocation(in.ContactTimezone, in.Window.Timezone)
	open, next := in.Window.Check(now, wloc)

	// A holiday of the window's calendars on the contact's local date
	// closes the window for that day (Window.Check skips it too).
	v = Verdict{Policy: Holiday, Action: Allow, Timezone: tz}
	code, name := HolidayOn(in.Window.Holidays, now, wloc)
	if !lean {
		v.Inputs = map[string]any{"calendars": in.Window.Holidays, "timezone": tz, "local_date": now.In(wloc).Format(time.DateOnly)}
		if code != "" {
			v.Inputs["calendar"], v.Inputs["holiday"] = code, name
		}
	}
	if code != "" {
		v.Action, v.Reason, v.DeferUntil = Defer, "holiday", next
	}
	vs = append(vs, v)

	v = Verdict{Policy: SendWindow, Action: Allow, Timezone: tz}
	if !lean {
		v.Inputs = map[string]any{
			"timezone": tz, "days": in.Window.Days, "start": in.Window.Start.String(), "end": in.Window.End.String(), "local_time": now.In(wloc).Format("Mon 15:04"),
		}
	}
	if !open {
		v.Action, v.Reason, v.DeferUntil = Defer, "quiet_hours", next
	}
	vs = append(vs, v)

	v = Verdict{Policy: AdapterResting, Action: Allow}
	if !lean {
		v.Inputs = map[string]any{"health_state": a.HealthState, "resting_until": a.RestingUntil}
	}
	if a.HealthState == dripdrop.HealthResting {
		until := now.Add(RestingRetry)
		if a.RestingUntil != nil && a.RestingUntil.After(now) {
			until = *a.RestingUntil
		}
		v.Action, v.Reason, v.DeferUntil = Defer, "adapter_resting", until
	}
	vs = append(vs, v)

	cap, capped := EffectiveCap(a, now, in.ProbeBudget)
	var midnight time.Time // computed only when a cap binds
	v = Verdict{Policy: RampCap, Action: Allow, SentCount: in.SentToday, Cap: cap}
	if !lean {
		v.Inputs = map[string]any{
			"sent_today": in.SentToday, "effective_cap": capOrNil(cap, capped), "daily_cap": a.DailyCap, "ramp_floor": a.RampFloor,
			"ramp_increment": a.RampIncrement, "ramp_started_at": a.RampStartedAt, "adapter_timezone": loc.String(),
		}
	}
	if capped && in.SentToday >= cap {
		midnight = NextMidnight(now, loc)
		v.Action, v.Reason, v.DeferUntil = Defer, "ramp_cap", midnight
	}
	vs = append(vs, v)

	pct := in.MaxSharePct
	if pct <= 0 || pct > 100 {
		pct = 100
	}
	share := ShareCap(cap, pct)
	v = Verdict{Policy: SubCap, Action: Allow, SentCount: in.SentTodayForVersion, Cap: share, MaxSharePct: pct}
	if !lean {
		v.Inputs = map[string]any{
			"sent_today_for_version": in.SentTodayForVersion, "max_share_pct": pct, "share_cap": capOrNil(share, capped),
		}
	}
	if capped && in.SentTodayForVersion >= share {
		if midnight.IsZero() {
			midnight = NextMidnight(now, loc)
		}
		v.Action, v.Reason, v.DeferUntil = Defer, "sub_cap", midnight
	}
	vs = append(vs, v)

	v = Verdict{Policy: ProviderCap, Action: Allow, SentCount: in.SentTodayForProvider, Cap: in.ProviderCap}
	if !lean {
		v.Inputs = map[string]any{"recipient_provider": in.RecipientProvider, "provider_cap": capOrNil(in.ProviderCap, in.ProviderCap > 0),
			"sent_today_for_provider": in.SentTodayForProvider}
	}
	if in.ProviderCap > 0 && in.RecipientProvider != "" && in.SentTodayForProvider >= in.ProviderCap {
		if midnight.IsZero() {
			midnight = NextMidnight(now, loc)
		}
		v.Action, v.Reason, v.DeferUntil = Defer, "provider_cap", midnight
	}
	vs = append(vs, v)

	v = Verdict{Policy: MinGap, Action: Allow, MinGapSeconds: a.MinGapSeconds}
	if !lean {
		v.Inputs = map[string]any{
			"last_send_at": a.LastSendAt, "min_gap_seconds": a.MinGapSeconds, "gap_jitter_seconds": a.GapJitterSeconds,
		}
	}
	if a.LastSendAt != nil && (a.MinGapSeconds > 0 || a.GapJitterSeconds > 0) {
		ready := a.LastSendAt.Add(time.Duration(a.MinGapSeconds)*time.Second + Jitter(a.ID, *a.LastSendAt, a.GapJitterSeconds))
		if !lean {
			v.Inputs["ready_at"] = ready
		}
		if ready.After(now) {
			v.Action, v.Reason, v.DeferUntil = Defer, "min_gap", ready
		}
	}
	vs = append(vs, v)

	res := Result{Verdicts: vs, NextEligibleAt: now}
	for i := range vs {
		if vs[i].Action != Allow {
			res.Binding = &vs[i]
			res.NextEligibleAt = vs[i].DeferUntil
			break
		}
	}
	return res
}

func capOrNil(cap int, capped bool) any {
	if !capped {
		return nil
	}
	return cap
}

// ShareCap is max(1, floor(effectiveCap × pct / 100)).
func ShareCap(effectiveCap, pct int) int {
	return max(1, effectiveCap*pct/100)
}

// Jitter is the deterministic extra gap after a send: FNV-1a 64 of the
// adapter id and the send's Unix nanoseconds, modulo maxSeconds+1, in whole
// seconds. Every replica computes the same value for the same send.
func Jitter(adapterID [16]byte, lastSend time.Time, maxSeconds int) time.Duration {
	if maxSeconds <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write(adapterID[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(lastSend.UnixNano()))
	h.Write(b[:])
	return time.Duration(h.Sum64()%uint64(maxSeconds+1)) * time.Second
}

// ResolveLocation returns the first valid IANA zone among names, else UTC,
// and its name.
func ResolveLocation(names ...string) (*time.Location, string) {
	for _, n := range names {
		if n == "" || n == "Local" {
			continue
		}
		if loc, err := LoadLocation(n); err == nil {
			return loc, n
		}
	}
	return time.UTC, "UTC"
}

var locations sync.Map // zone name → *time.Location

// LoadLocation is time.LoadLocation with a process-wide cache (the zone
// database is read once per name).
func LoadLocation(name string) (*time.Location, error) {
	if name == "UTC" || name == "" {
		return time.UTC, nil
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, l)
	return l, nil
}

// localInstant returns the instant of wall-clock minute m (after midnight)
// on the local date y-mo-d. A wall time inside a spring-forward gap maps to
// the first valid instant after the gap; an ambiguous one (fall back) to
// its first occurrence.
func localInstant(y int, mo time.Month, d, m int, loc *time.Location) time.Time {
	h, mi := m/60, m%60
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	if lt := t.In(loc); lt.Hour() != h || lt.Minute() != mi || lt.Day() != d {
		// In a gap. time.Date normalised to one side of it; the transition
		// next to t is the gap's end, the first valid instant after it.
		start, end := t.ZoneBounds()
		if !end.IsZero() && end.After(t) && end.Sub(t) <= 3*time.Hour {
			return end
		}
		if !start.IsZero() && !start.After(t) && t.Sub(start) <= 3*time.Hour {
			return start
		}
		return t
	}
	// Ambiguous: an hour earlier may show the same wall time.
	if e := t.Add(-time.Hour); e.In(loc).Hour() == h && e.In(loc).Minute() == mi && e.In(loc).Day() == d {
		return e
	}
	return t
}

// DayStart is the first instant of now's local day in loc.
func DayStart(now time.Time, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	return localInstant(y, m, d, 0, loc)
}

// NextMidnight is the first instant of the local day after now's.
func NextMidnight(now time.Time, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	n := time.Date(y, m, d+1, 12, 0, 0, 0, loc) // noon avoids DST edges
	y, m, d = n.Date()
	return localInstant(y, m, d, 0, loc)
}
