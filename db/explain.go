package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

// Explanation is the policy trace of an enrollment's next pending step.
type Explanation struct {
	EnrollmentID    uuid.UUID        `json:"enrollment_id"`
	StepExecutionID *uuid.UUID       `json:"step_execution_id"`
	StepKey         string           `json:"step_key,omitempty"`
	State           string           `json:"execution_state,omitempty"`
	ScheduledFor    *time.Time       `json:"scheduled_for,omitempty"`
	AdapterID       *uuid.UUID       `json:"adapter_id,omitempty"`
	AdapterNextSend *time.Time       `json:"adapter_next_send_at"`
	Verdicts        []policy.Verdict `json:"verdicts"`
	Binding         *policy.Verdict  `json:"binding"`
	NextEligibleAt  *time.Time       `json:"next_eligible_at"`
	Note            string           `json:"note,omitempty"`
}

// Explain evaluates every policy for the enrollment's next pending step as
// the dispatcher would now, without changing anything.
func (s *Store) Explain(ctx context.Context, tenant string, id uuid.UUID) (_ Explanation, err error) {
	defer wrapErr(&err, "explain enrollment")
	ex := Explanation{EnrollmentID: id, Verdicts: []policy.Verdict{}}
	e, err := s.q.GetEnrollment(ctx, dbsqlc.GetEnrollmentParams{TenantKey: tenant, ID: id})
	if err != nil {
		return ex, mapErr(err, "enrollment")
	}
	xid, err := s.q.NextPendingExecution(ctx, dbsqlc.NextPendingExecutionParams{TenantKey: tenant, EnrollmentID: e.ID})
	if errors.Is(err, pgx.ErrNoRows) {
		ex.Note = "the enrollment has no pending step (state " + string(e.State) + ")"
		return ex, nil
	}
	if err != nil {
		return ex, err
	}
	sc, err := s.q.LoadSend(ctx, dbsqlc.LoadSendParams{TenantKey: tenant, ID: xid})
	if err != nil {
		return ex, err
	}
	ad, err := s.q.GetAdapterAny(ctx, dbsqlc.GetAdapterAnyParams{TenantKey: tenant, ID: sc.AdapterID})
	if err != nil {
		return ex, err
	}
	now := s.clock.Now()
	in, err := s.policyInput(ctx, s.q, tenant, sc, ad, now)
	if err != nil {
		return ex, err
	}
	r := policy.Evaluate(in)
	ex.StepExecutionID, ex.StepKey, ex.State, ex.AdapterID, ex.AdapterNextSend = &xid, sc.StepKey, sc.State, &ad.ID, ad.NextSendAt
	ex.ScheduledFor = &sc.ScheduledFor
	ex.Verdicts, ex.Binding = r.Verdicts, r.Binding
	next := r.NextEligibleAt
	if r.Binding == nil {
		// Allowed by every policy: due when scheduled and the adapter is ready.
		if sc.ScheduledFor.After(next) {
			next = sc.ScheduledFor
		}
		if ad.NextSendAt != nil && ad.NextSendAt.After(next) {
			next = *ad.NextSendAt
			ex.Note = "the adapter has a send in flight or a pending block until adapter_next_send_at"
		}
	}
	switch {
	case ad.DeletedAt != nil || !ad.Active:
		ex.Note = "the pinned adapter is unavailable: the pool policy applies at the next attempt"
	case sc.State == "sending":
		ex.Note = "the step is being sent now"
	}
	if r.Binding == nil || r.Binding.Action == policy.Defer {
		ex.NextEligibleAt = &next
	}
	return ex, nil
}

// Capacity is an adapter's sending budget for its current local day.
type Capacity struct {
	AdapterID     uuid.UUID            `json:"adapter_id"`
	HealthState   dripdrop.HealthState `json:"health_state"`
	Timezone      string               `json:"timezone"`
	Day           string               `json:"day"`
	DayStart      time.Time            `json:"day_start"`
	DayEnd        time.Time            `json:"day_end"`
	EffectiveCap  *int                 `json:"effective_cap"` // null: uncapped
	Sent          int                  `json:"sent"`
	Remaining     *int                 `json:"remaining"`
	MinGapSeconds int                  `json:"min_gap_seconds"`
	LastSendAt    *time.Time           `json:"last_send_at"`
	NextSendAt    *time.Time           `json:"next_send_at"`
	Sequences     []SequenceShare      `json:"sequences"`
}

// SequenceShare is one sequence version's use of the adapter today.
type SequenceShare struct {
	SequenceKey       string    `json:"sequence_key"`
	Version           int       `json:"version"`
	SequenceVersionID uuid.UUID `json:"sequence_version_id"`
	Sent              int       `json:"sent"`
	MaxSharePct       int       `json:"max_share_pct"`
	ShareCap          *int      `json:"share_cap"`
}

// AdapterCapacity reports today's effective cap, sends and shares.
func (s *Store) AdapterCapacity(ctx context.Context, tenant string, id uuid.UUID) (_ Capacity, err error) {
	defer wrapErr(&err, "adapter capacity")
	ad, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: id})
	if err != nil {
		return Capacity{}, mapErr(err, "adapter")
	}
	loc, err := time.LoadLocation(ad.Timezone)
	if err != nil {
		loc = time.UTC
	}
	now := s.clock.Now()
	day := dayOf(now, loc)
	c := Capacity{AdapterID: ad.ID, HealthState: ad.HealthState, Timezone: loc.String(), Day: day.Format(time.DateOnly),
		DayStart: policy.DayStart(now, loc), DayEnd: policy.NextMidnight(now, loc), MinGapSeconds: ad.MinGapSeconds,
		LastSendAt: ad.LastSendAt, NextSendAt: ad.NextSendAt, Sequences: []SequenceShare{}}
	pa := policyAdapter(ad.HealthState, ad.DailyCap, ad.RampFloor, ad.RampIncrement, ad.RampStartedAt, loc)
	cap, capped := policy.EffectiveCap(pa, now, 0)
	rows, err := s.q.UsageByVersion(ctx, dbsqlc.UsageByVersionParams{TenantKey: tenant, AdapterID: id, Day: day})
	if err != nil {
		return c, err
	}
	for _, r := range rows {
		sh := SequenceShare{SequenceKey: r.SequenceKey, Version: r.Version, SequenceVersionID: r.SequenceVersionID, Sent: r.Sent, MaxSharePct: r.MaxSharePct}
		if capped {
			v := policy.ShareCap(cap, r.MaxSharePct)
			sh.ShareCap = &v
		}
		c.Sent += r.Sent
		c.Sequences = append(c.Sequences, sh)
	}
	if capped {
		rem := max(cap-c.Sent, 0)
		c.EffectiveCap, c.Remaining = &cap, &rem
	}
	return c, nil
}
