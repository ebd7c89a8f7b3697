package db

import (
	"context"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// Gauges is a snapshot of the numbers behind the engine's gauges: due
// backlog, enrollments by state and adapters by health state, summed over
// tenants (each read with its own tenant-scoped, indexed query).
type Gauges struct {
	DueBacklog         int64
	OldestDueSeconds   float64
	EnrollmentsByState map[string]int64
	AdaptersByHealth   map[string]int64
}

// ReadGauges reads the gauges' numbers. It costs three indexed queries per
// tenant: callers cache it (see the metrics collector of cmd/dripdrop).
func (s *Store) ReadGauges(ctx context.Context) (_ Gauges, err error) {
	defer wrapErr(&err, "read gauges")
	g := Gauges{
		EnrollmentsByState: map[string]int64{"active": 0, "paused": 0, "completed": 0, "stopped": 0, "cancelled": 0},
		AdaptersByHealth:   map[string]int64{"active": 0, "ramping": 0, "probing": 0, "resting": 0},
	}
	tenants, err := s.q.ListTenantKeys(ctx)
	if err != nil {
		return g, err
	}
	now := s.clock.Now()
	for _, t := range tenants {
		due, err := s.q.CountDueExecutions(ctx, dbsqlc.CountDueExecutionsParams{TenantKey: t, DueBy: now})
		if err != nil {
			return g, err
		}
		g.DueBacklog += due.N
		g.OldestDueSeconds = max(g.OldestDueSeconds, now.Sub(due.Oldest).Seconds())
		states, err := s.q.CountEnrollmentsByState(ctx, t)
		if err != nil {
			return g, err
		}
		for _, r := range states {
			g.EnrollmentsByState[string(r.State)] += r.N
		}
		health, err := s.q.CountAdaptersByHealth(ctx, t)
		if err != nil {
			return g, err
		}
		for _, r := range health {
			g.AdaptersByHealth[string(r.HealthState)] += r.N
		}
	}
	return g, nil
}
