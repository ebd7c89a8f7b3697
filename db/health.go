package db

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/health"
)

// Health transition reasons written by the engine.
const (
	ReasonRestingElapsed = health.ReasonRestingElapsed
	// SourceEngine is the source of every automatic transition.
	SourceEngine = "engine"
)

// snapshot is the rule input of one adapter row.
func snapshot(a dbsqlc.Adapter, c health.Counts) health.Snapshot {
	return health.Snapshot{
		State: a.HealthState, StateSince: a.HealthSince, HealthySince: a.HealthySince, RestingUntil: a.RestingUntil, Held: a.ReconnectRequired,
		Streak: a.RestStreak, Backoff: time.Duration(a.RestBackoffSeconds) * time.Second, Counts: c,
		Ramp: health.Ramp{DailyCap: a.DailyCap, Floor: a.RampFloor, Increment: a.RampIncrement, StartedAt: a.RampStartedAt},
	}
}

func windowStart(a dbsqlc.Adapter, now time.Time) time.Time {
	return health.WindowStart(a.HealthState, a.HealthSince, a.HealthySince, now)
}

// healthCounts reads each adapter's events over its own health window.
func healthCounts(ctx context.Context, q *dbsqlc.Queries, tenant string, as []dbsqlc.Adapter, now time.Time) (map[uuid.UUID]health.Counts, error) {
	out := make(map[uuid.UUID]health.Counts, len(as))
	if len(as) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(as))
	since := make([]time.Time, len(as))
	for i, a := range as {
		ids[i], since[i] = a.ID, windowStart(a, now)
	}
	rows, err := q.HealthCounts(ctx, dbsqlc.HealthCountsParams{TenantKey: tenant, AdapterIds: ids, Since: since})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.AdapterID] = health.Counts{Sent: r.Sent, Bounced: r.Bounced, Complained: r.Complained}
	}
	return out, nil
}

// transition moves an adapter to d.To, writes the audit entry (from, to,
// reason, source, time) and returns the state_changed event to emit after
// commit. A move to resting takes d's streak and backoff; ramping restarts
// the ramp now.
func (s *Store) transition(ctx context.Context, q *dbsqlc.Queries, a dbsqlc.Adapter, d health.Decision, source string) (dbsqlc.Adapter, event, error) {
	now := s.clock.Now()
	h := health.Apply(snapshot(a, health.Counts{}), d, now)
	until, backoff := h.RestingUntil, int(h.Backoff/time.Second)
	row, err := q.HealthTransition(ctx, dbsqlc.HealthTransitionParams{
		TenantKey: a.TenantKey, ID: a.ID, HealthState: string(h.State), Now: now, RestingUntil: until, RampStartedAt: h.RampStartedAt,
		RestStreak: h.Streak, RestBackoffSeconds: backoff,
	})
	if err != nil {
		return a, event{}, err
	}
	data := map[string]any{"from": a.HealthState, "to": d.To, "reason": d.Reason, "source": source, "at": now}
	if until != nil {
		data["resting_until"], data["backoff_seconds"] = *until, backoff
	}
	if err := s.audit(ctx, q, a.TenantKey, "adapter", a.ID, "health_state_changed", source, data); err != nil {
		return a, event{}, err
	}
	return row, evStateChanged(a.TenantKey, a.ID, a.HealthState, d.To, d.Reason, source), nil
}

// checkHealth runs every health rule (docs/health.md) for one adapter inside q's
// transaction, under the adapter's row lock, and applies the change due, if
// any. Dispatch calls it right after recording a bounce, ingest after a
// bounce or complaint, the leader's sweep every minute. It returns the
// events to emit after commit.
func (s *Store) checkHealth(ctx context.Context, q *dbsqlc.Queries, tenant string, adapterID uuid.UUID, now time.Time) ([]event, error) {
	a, err := q.LockAdapter(ctx, dbsqlc.LockAdapterParams{TenantKey: tenant, ID: adapterID})
	if err != nil || a.DeletedAt != nil {
		return nil, err
	}
	counts, err := healthCounts(ctx, q, tenant, []dbsqlc.Adapter{a}, now)
	if err != nil {
		return nil, err
	}
	d, ok := health.Decide(snapshot(a, counts[a.ID]), now)
	if !ok {
		return nil, nil
	}
	if d.Reason == health.ReasonBackoffReset {
		if err := q.ResetRestBackoff(ctx, dbsqlc.ResetRestBackoffParams{TenantKey: tenant, ID: a.ID, RestBackoffSeconds: int(health.BaseBackoff / time.Second), Now: now}); err != nil {
			return nil, err
		}
		return nil, s.audit(ctx, q, tenant, "adapter", a.ID, "health_backoff_reset", SourceEngine, map[string]any{
			"from": a.HealthState, "to": a.HealthState, "reason": d.Reason, "source": SourceEngine, "at": now,
			"previous_streak": a.RestStreak, "backoff_seconds": int(health.BaseBackoff / time.Second),
		})
	}
	_, ev, err := s.transition(ctx, q, a, d, SourceEngine)
	if err != nil {
		return nil, err
	}
	c := counts[a.ID]
	switch d.Reason {
	case health.ReasonBounceThreshold:
		return []event{evThreshold("dripdrop.health.bounce_threshold", tenant, a.ID, c.Sent, "bounce_count", c.Bounced, c.BounceRate()), ev}, nil
	case health.ReasonComplaintThreshold:
		return []event{evThreshold("dripdrop.health.complaint_threshold", tenant, a.ID, c.Sent, "complaint_count", c.Complained, c.ComplaintRate()), ev}, nil
	}
	return []event{ev}, nil
}

// CheckHealth runs the health rules for one adapter in its own transaction.
func (s *Store) CheckHealth(ctx context.Context, tenant string, adapterID uuid.UUID) (err error) {
	defer wrapErr(&err, "check health")
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		var err error
		evs, err = s.checkHealth(ctx, q, tenant, adapterID, s.clock.Now())
		return evs, err
	})
	if err != nil {
		return err
	}
	return nil
}

// HealthSweep is the leader's minute duty for one tenant: it reads every
// adapter with its window counts in two queries, and for each one a rule
// wants to change it re-checks and applies the change under the adapter's
// row lock in its own transaction (so a concurrent check never applies a
// transition twice). It returns how many adapters changed.
func (s *Store) HealthSweep(ctx context.Context, tenant string) (_ int, err error) {
	defer wrapErr(&err, "health sweep")
	now := s.clock.Now()
	as, err := s.q.HealthSweepAdapters(ctx, tenant)
	if err != nil {
		return 0, err
	}
	counts, err := healthCounts(ctx, s.q, tenant, as, now)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range as {
		if _, ok := health.Decide(snapshot(a, counts[a.ID]), now); !ok {
			continue
		}
		var evs []event
		if err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
			var err error
			evs, err = s.checkHealth(ctx, q, tenant, a.ID, now)
			return evs, err
		}); err != nil {
			return n, err
		}
		if len(evs) > 0 {
			n++
		}
	}
	return n, nil
}

// RecoverDueAdapters moves resting adapters among ids whose resting_until
// has passed to probing (docs/health.md), committing before it returns, so that a
// pick that follows sees them. It returns how many moved.
func (s *Store) RecoverDueAdapters(ctx context.Context, tenant string, ids []uuid.UUID) (_ int, err error) {
	defer wrapErr(&err, "recover due adapters")
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		due, err := q.DueRecoveries(ctx, dbsqlc.DueRecoveriesParams{TenantKey: tenant, Now: s.clock.Now(), Ids: ids})
		if err != nil {
			return evs, err
		}
		for _, a := range due {
			_, ev, err := s.transition(ctx, q, a, health.Decision{To: dripdrop.HealthProbing, Reason: ReasonRestingElapsed}, SourceEngine)
			if err != nil {
				return evs, err
			}
			evs = append(evs, ev)
		}
		return evs, nil
	})
	if err != nil {
		return 0, err
	}
	return len(evs), nil
}

// HealthSignal applies an external health signal (docs/health.md): validated, a
// forced transition when the state changes, omitted fields kept. It emits
// dripdrop.health.external_signal, then state_changed when the state changed,
// and returns the adapter's health report.
func (s *Store) HealthSignal(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.HealthSignalInput) (_ HealthReport, err error) {
	defer wrapErr(&err, "health signal")
	if err := in.Validate(); err != nil {
		return HealthReport{}, err
	}
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		a, err := q.GetAdapterForUpdate(ctx, dbsqlc.GetAdapterForUpdateParams{TenantKey: tenant, ID: id})
		if err != nil {
			return evs, mapErr(err, "adapter")
		}
		now := s.clock.Now()
		source := *in.Source
		reason := health.ReasonExternalSignal
		if in.Reason != nil && *in.Reason != "" {
			reason = *in.Reason
		}
		to := a.HealthState
		if in.HealthState != nil {
			to = *in.HealthState
		}
		if a.ReconnectRequired && to != dripdrop.HealthResting {
			// A dead OAuth2 grant cannot be signalled away: only a
			// reconnect ends the rest (docs/mailboxes.md).
			return evs, dripdrop.Errorf(dripdrop.ECodeInvalidState, "health_state", "the adapter's mailbox must be reconnected first (POST /v1/adapters/{id}/oauth/start or PUT …/oauth/token)")
		}
		until := a.RestingUntil
		if in.RestingUntil.Set {
			until = in.RestingUntil.Ptr()
		}
		if to != dripdrop.HealthResting {
			until = nil // only a resting adapter has a resting_until
		} else if until == nil {
			t := now.Add(time.Duration(a.RestBackoffSeconds) * time.Second) // the stored backoff
			until = &t
		}
		if to == dripdrop.HealthResting && in.RestingUntil.Set && until != nil && !until.After(now) {
			return evs, dripdrop.Errorf(dripdrop.ECodeOutOfRange, "resting_until", "resting_until must be in the future for a resting adapter")
		}
		score := a.HealthScore
		if in.HealthScore.Set {
			score = in.HealthScore.Ptr()
		}
		// Score and resting_until first; a state change then rewrites
		// resting_until as the transition requires.
		keepUntil := until
		if to != a.HealthState {
			keepUntil = a.RestingUntil
		}
		from := a.HealthState
		if a, err = q.SetHealthFields(ctx, dbsqlc.SetHealthFieldsParams{TenantKey: tenant, ID: id, HealthScore: score, RestingUntil: keepUntil, Now: now}); err != nil {
			return evs, mapErr(err, "adapter")
		}
		evs = append(evs, evExternalSignal(tenant, id, to, score, source))
		if err := s.audit(ctx, q, tenant, "adapter", id, "health_signal", source, map[string]any{
			"health_state": to, "health_score": score, "resting_until": until, "reason": reason, "source": source, "at": now,
		}); err != nil {
			return evs, err
		}
		if to == from {
			return evs, nil
		}
		_, ev, err := s.transition(ctx, q, a, health.Decision{To: to, Reason: reason, RestingUntil: until}, source)
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
		return evs, nil
	})
	if err != nil {
		return HealthReport{}, mapErr(err, "adapter")
	}
	return s.Health(ctx, tenant, id)
}

// HealthWindow is an adapter's events over its health window.
type HealthWindow struct {
	Since         time.Time `json:"since"`
	Sent          int       `json:"sent"`
	Bounced       int       `json:"bounced"`
	Complained    int       `json:"complained"`
	BounceRate    float64   `json:"bounce_rate"`
	ComplaintRate float64   `json:"complaint_rate"`
}

// HealthThresholds are the rules' constants, reported with the window.
type HealthThresholds struct {
	MinSample     int     `json:"min_sample"`
	BounceRate    float64 `json:"bounce_rate"`
	ComplaintRate float64 `json:"complaint_rate"`
	ProbeBudget   int     `json:"probe_budget"`
	ProbeSuccess  int     `json:"probe_success"`
}

// HealthTransition is one entry of an adapter's health history.
type HealthTransition struct {
	Action       string     `json:"action"` // health_state_changed | health_backoff_reset | health_signal
	From         string     `json:"from,omitempty"`
	To           string     `json:"to,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	Source       string     `json:"source"`
	At           time.Time  `json:"at"`
	RestingUntil *time.Time `json:"resting_until,omitempty"`
}

// HealthReport is GET /v1/adapters/{id}/health.
type HealthReport struct {
	AdapterID          uuid.UUID            `json:"adapter_id"`
	HealthState        dripdrop.HealthState `json:"health_state"`
	HealthScore        *float64             `json:"health_score"`
	HealthSince        time.Time            `json:"health_since"`
	RestingUntil       *time.Time           `json:"resting_until"`
	RestBackoffSeconds int                  `json:"rest_backoff_seconds"`
	RestStreak         int                  `json:"rest_streak"`
	AdapterFailures    int                  `json:"adapter_failures"`
	AuthFailures       int                  `json:"auth_failures"`
	Window             HealthWindow         `json:"window"`
	SampleReached      bool                 `json:"sample_reached"`
	Thresholds         HealthThresholds     `json:"thresholds"`
	NextTransition     *health.Next         `json:"next_transition"`
	Transitions        []HealthTransition   `json:"transitions"`
}

// Health reports an adapter's health: state, score, cooldown, window counts
// and rates against the thresholds, the next automatic transition and the
// last 50 entries of its health history (newest first).
func (s *Store) Health(ctx context.Context, tenant string, id uuid.UUID) (_ HealthReport, err error) {
	defer wrapErr(&err, "get health")
	a, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: id})
	if err != nil {
		return HealthReport{}, mapErr(err, "adapter")
	}
	now := s.clock.Now()
	counts, err := healthCounts(ctx, s.q, tenant, []dbsqlc.Adapter{a}, now)
	if err != nil {
		return HealthReport{}, err
	}
	c := counts[a.ID]
	audit, err := s.q.HealthAudit(ctx, dbsqlc.HealthAuditParams{TenantKey: tenant, EntityID: id})
	if err != nil {
		return HealthReport{}, err
	}
	r := HealthReport{
		AdapterID: a.ID, HealthState: a.HealthState, HealthScore: a.HealthScore, HealthSince: a.HealthSince,
		RestingUntil: a.RestingUntil, RestBackoffSeconds: a.RestBackoffSeconds, RestStreak: a.RestStreak,
		AdapterFailures: a.AdapterFailures, AuthFailures: a.AuthFailures,
		Window: HealthWindow{Since: windowStart(a, now), Sent: c.Sent, Bounced: c.Bounced, Complained: c.Complained,
			BounceRate: c.BounceRate(), ComplaintRate: c.ComplaintRate()},
		SampleReached: c.Sent >= health.MinSample,
		Thresholds: HealthThresholds{MinSample: health.MinSample, BounceRate: float64(health.BounceBasisPoints) / 10000,
			ComplaintRate: float64(health.ComplaintBasisPoints) / 10000, ProbeBudget: dripdrop.ProbeBudget, ProbeSuccess: health.ProbeSuccess},
		NextTransition: health.NextTransition(snapshot(a, c), now),
		Transitions:    make([]HealthTransition, 0, len(audit)),
	}
	for _, e := range audit {
		var d struct {
			From, To, Reason, Source string
			HealthState              string     `json:"health_state"`
			RestingUntil             *time.Time `json:"resting_until"`
		}
		_ = json.Unmarshal(e.Data, &d)
		t := HealthTransition{Action: e.Action, From: d.From, To: d.To, Reason: d.Reason, Source: e.Actor, At: e.CreatedAt, RestingUntil: d.RestingUntil}
		if e.Action == "health_signal" {
			t.To = d.HealthState
		}
		r.Transitions = append(r.Transitions, t)
	}
	return r, nil
}
