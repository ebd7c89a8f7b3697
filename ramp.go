package dripdrop

import "time"

// ProbeBudget is a probing adapter's daily send budget: while it probes,
// its cap is this, whatever its ramp (docs/health.md).
const ProbeBudget = 5

// RampCap is an adapter's daily cap on its ramp at now: none (capped =
// false) without a daily_cap; daily_cap without a ramp (no increment or no
// start); otherwise min(daily_cap, ramp_floor + days_elapsed ×
// ramp_increment), days_elapsed = floor((now − ramp_started_at) / 24 h) ≥ 0.
// Floor 5, increment 3, cap 40: day 1 5, day 2 8, …, day 12 38, day 13 on 40.
// The sending policies and the health rules (graduation) both read it.
func RampCap(dailyCap *int, floor, increment int, startedAt *time.Time, now time.Time) (cap int, capped bool) {
	if dailyCap == nil {
		return 0, false
	}
	if increment <= 0 || startedAt == nil {
		return *dailyCap, true
	}
	days := int64(0)
	if d := now.Sub(*startedAt); d > 0 {
		days = int64(d / (24 * time.Hour))
	}
	ramp := int64(floor) + days*int64(increment)
	if ramp > int64(*dailyCap) {
		return *dailyCap, true
	}
	return int(ramp), true
}
