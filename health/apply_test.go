package health

import (
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
)

func TestApply(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	started := now.Add(-48 * time.Hour)
	s := Snapshot{State: dripdrop.HealthActive, Streak: 2, Backoff: 48 * time.Hour, Ramp: Ramp{StartedAt: &started}}
	until := now.Add(4 * 24 * time.Hour)

	// A decided rest takes its streak, backoff and end.
	h := Apply(s, Decision{To: dripdrop.HealthResting, Streak: 3, Backoff: 96 * time.Hour, RestingUntil: &until}, now)
	if h.State != dripdrop.HealthResting || h.Streak != 3 || h.Backoff != 96*time.Hour || !h.RestingUntil.Equal(until) || h.RampStartedAt != &started {
		t.Fatalf("decided rest: %+v", h)
	}
	// A forced rest without a streak keeps the stored one and rests the
	// stored backoff from now.
	h = Apply(s, Decision{To: dripdrop.HealthResting}, now)
	if h.Streak != 2 || h.Backoff != 48*time.Hour || !h.RestingUntil.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("forced rest: %+v", h)
	}
	// dripdrop.HealthRamping restarts the ramp now and has no resting_until.
	rest := s
	rest.State, rest.RestingUntil = dripdrop.HealthProbing, &until
	h = Apply(rest, Decision{To: dripdrop.HealthRamping, Reason: ReasonProbeSuccess}, now)
	if h.State != dripdrop.HealthRamping || h.RestingUntil != nil || !h.RampStartedAt.Equal(now) || h.Streak != 2 {
		t.Fatalf("ramping: %+v", h)
	}
	// dripdrop.HealthProbing keeps the ramp's start.
	h = Apply(s, Decision{To: dripdrop.HealthProbing}, now)
	if h.RestingUntil != nil || h.RampStartedAt != &started {
		t.Fatalf("probing: %+v", h)
	}
}
