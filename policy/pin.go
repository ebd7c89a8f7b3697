package policy

import (
	"time"

	"github.com/dripdrop/dripdrop"
)

// Member is what pool eligibility reads about one pool member (docs/sending.md).
type Member struct {
	MemberActive  bool
	AdapterActive bool
	Deleted       bool
	HealthScore   *float64
	Adapter       Adapter
}

// Eligibility decides whether a pool member may take a new pin at now:
// member and adapter active, not resting, a health score above zero when
// one is set, and headroom today (sentToday below the effective cap). It
// returns the reason when not.
func Eligibility(m Member, sentToday int, now time.Time) (bool, string) {
	switch {
	case !m.MemberActive:
		return false, "member_inactive"
	case m.Deleted:
		return false, "adapter_deleted"
	case !m.AdapterActive:
		return false, "adapter_inactive"
	case m.Adapter.HealthState == dripdrop.HealthResting:
		return false, "resting"
	case m.HealthScore != nil && *m.HealthScore <= 0:
		return false, "health_score_zero"
	}
	if cap, capped := EffectiveCap(m.Adapter, now, 0); capped && sentToday >= cap {
		return false, "daily_cap_reached"
	}
	return true, ""
}

// Reassignable reports whether a member may receive a pin under the pool's
// reassign policy when WDRR finds no eligible member: an active member of
// an active, non-resting adapter.
func Reassignable(m Member) bool {
	return m.MemberActive && m.AdapterActive && !m.Deleted && m.Adapter.HealthState != dripdrop.HealthResting
}

// LeastLoaded returns the index of the reassignable member with the fewest
// live pins (ties: the first in member order), or -1.
func LeastLoaded(reassignable []bool, pins []int64) int {
	best := -1
	for i, ok := range reassignable {
		if ok && (best < 0 || pins[i] < pins[best]) {
			best = i
		}
	}
	return best
}
