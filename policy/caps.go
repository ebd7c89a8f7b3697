package policy

import (
	"time"

	"github.com/dripdrop/dripdrop"
)

// Adapter is the part of an adapter's state the policies read.
type Adapter struct {
	HealthState  dripdrop.HealthState
	RestingUntil *time.Time
	// ReconnectRequired: the adapter rests until an operator reconnects
	// its mailbox (a dead OAuth grant); it has no cooldown end.
	ReconnectRequired bool
	DailyCap          *int
	RampFloor         int
	RampIncrement     int
	RampStartedAt     *time.Time
	MinGapSeconds     int
	GapJitterSeconds  int
	LastSendAt        *time.Time
	Location          *time.Location // nil = UTC
	ID                [16]byte
}

// EffectiveCap is today's send cap: the probe budget while probing
// (dripdrop.ProbeBudget unless probeBudget > 0), otherwise the ramp's cap
// (dripdrop.RampCap; capped = false when daily_cap is unset).
func EffectiveCap(a Adapter, now time.Time, probeBudget int) (cap int, capped bool) {
	if a.HealthState == dripdrop.HealthProbing {
		if probeBudget <= 0 {
			probeBudget = dripdrop.ProbeBudget
		}
		return probeBudget, true
	}
	return dripdrop.RampCap(a.DailyCap, a.RampFloor, a.RampIncrement, a.RampStartedAt, now)
}
