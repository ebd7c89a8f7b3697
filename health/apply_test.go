package health

import (
	"testing"
	"time"
)

func TestApply(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	started := now.Add(-48 * time.Hour)
	s := Snapshot{State: Active, Streak: 2, Backoff: 48 * time.Hour, Ramp: Ramp{StartedAt: &started}}
	until := now.Add(4 * 24 * time.Hour)

	// A decided rest takes its streak, backoff and end.
	h := Apply(s, Decision{To: Resting, Streak: 3, Backoff: 96 * time.Hour, RestingUntil: &until}, now)
	if h.State != Resting || h.Streak != 3 || h.Backoff != 96*time.Hour || !h.RestingUntil.Equal(until) || h.RampStartedAt != &started {
		t.Fatalf("decided rest: %+v", h)
	}
	// A forced rest without a streak keeps the stored one and rests the
	// stored backoff from now.
	h = Apply(s, Decision{To: Resting}, now)
	if h.Streak != 2 || h.Backoff != 48*time.Hour || !h.RestingUntil.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("forced rest: %+v", h)
	}
	// Ramping restarts the ramp now and has no resting_until.
	rest := s
	rest.State, rest.RestingUntil = Probing, &until
	h = Apply(rest, Decision{To: Ramping, Reason: ReasonProbeSuccess}, now)
	if h.State != Ramping || h.RestingUntil != nil || !h.RampStartedAt.Equal(now) || h.Streak != 2 {
		t.Fatalf("ramping: %+v", h)
	}
	// Probing keeps the ramp's start.
	h = Apply(s, Decision{To: Probing}, now)
	if h.RestingUntil != nil || h.RampStartedAt != &started {
		t.Fatalf("probing: %+v", h)
	}
}
