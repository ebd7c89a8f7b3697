package policy

import "time"

// DefaultProbeBudget is the daily send budget of a probing adapter (SPEC §5).
const DefaultProbeBudget = 5

// Adapter is the part of an adapter's state the policies read.
type Adapter struct {
	HealthState      string
	RestingUntil     *time.Time
	DailyCap         *int
	RampFloor        int
	RampIncrement    int
	RampStartedAt    *time.Time
	MinGapSeconds    int
	GapJitterSeconds int
	LastSendAt       *time.Time
	Location         *time.Location // nil = UTC
	ID               [16]byte
}

// EffectiveCap is today's send cap (SPEC §4.4): the probe budget while
// probing; none when daily_cap is unset; otherwise
// min(daily_cap, ramp_floor + days_elapsed × ramp_increment) with
// days_elapsed = floor((now − ramp_started_at) / 24h) ≥ 0, or daily_cap when
// there is no ramp.
func EffectiveCap(a Adapter, now time.Time, probeBudget int) (cap int, capped bool) {
	if a.HealthState == "probing" {
		if probeBudget <= 0 {
			probeBudget = DefaultProbeBudget
		}
		return probeBudget, true
	}
	if a.DailyCap == nil {
		return 0, false
	}
	if a.RampIncrement <= 0 || a.RampStartedAt == nil {
		return *a.DailyCap, true
	}
	days := int64(0)
	if d := now.Sub(*a.RampStartedAt); d > 0 {
		days = int64(d / (24 * time.Hour))
	}
	ramp := int64(a.RampFloor) + days*int64(a.RampIncrement)
	if ramp > int64(*a.DailyCap) {
		return *a.DailyCap, true
	}
	return int(ramp), true
}
