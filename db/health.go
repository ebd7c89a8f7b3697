package db

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// Health transition reasons written by the engine.
const (
	ReasonRestingElapsed = "resting_elapsed"
)

// transition moves an adapter to another health state, writes the audit
// entry (from, to, reason, source, time) and returns the state_changed
// event to emit after commit.
func (s *Store) transition(ctx context.Context, q *dbsqlc.Queries, a dbsqlc.Adapter, to, reason, source string, restingUntil *time.Time) (dbsqlc.Adapter, event, error) {
	now := s.clock.Now()
	rampStart := a.RampStartedAt
	if to == dripdrop.HealthRamping {
		rampStart = &now
	}
	if to != dripdrop.HealthResting {
		restingUntil = nil
	}
	row, err := q.TransitionHealth(ctx, dbsqlc.TransitionHealthParams{
		TenantKey: a.TenantKey, ID: a.ID, HealthState: to, Now: now, RestingUntil: restingUntil, RampStartedAt: rampStart,
	})
	if err != nil {
		return a, event{}, err
	}
	data := map[string]any{"from": a.HealthState, "to": to, "reason": reason, "source": source, "at": now}
	if err := s.audit(ctx, q, a.TenantKey, "adapter", a.ID, "health_state_changed", source, data); err != nil {
		return a, event{}, err
	}
	return row, event{name: "dripdrop.health.state_changed", metadata: map[string]any{
		"adapter_id": a.ID.String(), "tenant_key": a.TenantKey, "from": a.HealthState, "to": to, "reason": reason, "source": source,
	}}, nil
}

// RecoverDueAdapters moves resting adapters among ids whose resting_until
// has passed to probing (SPEC §5), committing before it returns, so that a
// pick that follows sees them. It returns how many moved.
func (s *Store) RecoverDueAdapters(ctx context.Context, tenant string, ids []uuid.UUID) (int, error) {
	var evs []event
	err := s.tx(ctx, func(q *dbsqlc.Queries) error {
		evs = evs[:0]
		due, err := q.DueRecoveries(ctx, dbsqlc.DueRecoveriesParams{TenantKey: tenant, Now: s.clock.Now(), Ids: ids})
		if err != nil {
			return err
		}
		for _, a := range due {
			_, ev, err := s.transition(ctx, q, a, dripdrop.HealthProbing, ReasonRestingElapsed, "engine", nil)
			if err != nil {
				return err
			}
			evs = append(evs, ev)
		}
		return nil
	}, &evs)
	if err != nil {
		return 0, err
	}
	s.emit(ctx, evs...)
	return len(evs), nil
}
