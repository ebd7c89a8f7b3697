package db

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
	"github.com/google/uuid"
)

// Outcome of a reservation attempt.
type Outcome string

// Outcomes.
const (
	Reserved  Outcome = "reserved"
	Deferred  Outcome = "deferred"
	Cancelled Outcome = "cancelled"
	Skipped   Outcome = "skipped"
	Released  Outcome = "released" // left scheduled (paused enrollment, lost race, repinned)
	Failed    Outcome = "failed"
)

// Reservation is what Reserve decided.
type Reservation struct {
	Outcome Outcome
	Job     *SendJob
	Verdict *policy.Verdict
}

// unusableSender handles an execution whose adapter is deleted, inactive or
// resting long term: an override step fails; a pinned one gets the pool's
// policy (repin or wait) and is released.
func (s *Store) unusableSender(ctx context.Context, q *dbsqlc.Queries, tenant string, sc dbsqlc.LoadSendRow, now time.Time, res *Reservation, evs *[]event) error {
	if sc.AdapterOverrideID != nil {
		res.Outcome = Failed
		*evs = append(*evs, evFailed(tenant, sc.ID, sc.EnrollmentID, sc.AdapterID, "adapter_unavailable", 0, true))
		code, msg := "adapter_unavailable", "the step's override adapter is deleted, inactive or resting long term"
		if err := q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: sc.ID, State: "failed", ErrorCode: &code, Error: &msg, Now: now}); err != nil {
			return err
		}
		ev, err := s.pauseStepFailed(ctx, q, tenant, sc.EnrollmentID, "adapter_unavailable")
		if ev.name != "" {
			*evs = append(*evs, ev)
		}
		return err
	}
	e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: sc.EnrollmentID})
	if err != nil {
		return err
	}
	ev, err := s.applyPinPolicy(ctx, q, e, sc.PoolID)
	if err != nil {
		return err
	}
	if ev.name != "" {
		*evs = append(*evs, ev)
	}
	res.Outcome = Released
	return q.ReleaseClaim(ctx, dbsqlc.ReleaseClaimParams{TenantKey: tenant, ID: sc.ID})
}

// policyFacts are what the policies read besides the execution and
// adapter rows.
type policyFacts struct {
	sentToday, sentForVersion, maxSharePct int
	scope                                  string // suppression scope, "" when not suppressed
}

// policyInput loads what the policies read for one execution (explain).
func (s *Store) policyInput(ctx context.Context, q *dbsqlc.Queries, tenant string, sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, now time.Time) (policy.Input, error) {
	loc, err := time.LoadLocation(ad.Timezone)
	if err != nil {
		loc = time.UTC
	}
	pi, err := q.PolicyInputs(ctx, dbsqlc.PolicyInputsParams{TenantKey: tenant, AdapterID: ad.ID, Day: dayOf(now, loc),
		SequenceVersionID: sc.SequenceVersionID, Email: strings.ToLower(sc.Email), Domain: dripdrop.EmailDomain(sc.Email)})
	if err != nil {
		return policy.Input{}, err
	}
	f := policyFacts{sentToday: pi.SentToday, sentForVersion: pi.SentForVersion, maxSharePct: pi.MaxSharePct}
	switch {
	case pi.EmailSuppressed:
		f.scope = "email"
	case pi.DomainSuppressed:
		f.scope = "domain"
	}
	in := policyInputFrom(sc, ad, loc, now, f)
	if prov := deref(sc.RecipientProvider); prov != "" {
		if c := providerCaps(ad.ProviderCaps)[prov]; c > 0 {
			rows, err := q.ProviderUsage(ctx, dbsqlc.ProviderUsageParams{TenantKey: tenant, AdapterIds: []uuid.UUID{ad.ID}, Days: []time.Time{dayOf(now, loc)}})
			if err != nil {
				return in, err
			}
			in.ProviderCap = c
			for _, r := range rows {
				if r.Provider == prov {
					in.SentTodayForProvider = r.Sent
				}
			}
		}
	}
	return in, nil
}

// providerCaps reads an adapter's provider_caps (nil when it has none).
func providerCaps(raw []byte) map[string]int {
	if len(raw) <= 2 {
		return nil
	}
	var m map[string]int
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return nil
	}
	return m
}

// policyInputFrom assembles policy.Evaluate's input.
func policyInputFrom(sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, loc *time.Location, now time.Time, f policyFacts) policy.Input {
	prov := deref(sc.RecipientProvider)
	a := policyAdapter(ad.HealthState, ad.DailyCap, ad.RampFloor, ad.RampIncrement, ad.RampStartedAt, loc)
	a.RestingUntil, a.LastSendAt, a.MinGapSeconds, a.GapJitterSeconds, a.ID = ad.RestingUntil, ad.LastSendAt, ad.MinGapSeconds, ad.GapJitterSeconds, ad.ID
	w := policy.NewWindow(int(sc.WindowStart), int(sc.WindowEnd), sc.WindowDays, sc.WindowTimezone, sc.WindowHolidays...)
	return policy.Input{
		Now: now, EnrollmentState: sc.EnrollmentState, Suppressed: f.scope != "", SuppressionScope: f.scope,
		Window: w, ContactTimezone: deref(sc.ContactTimezone), Adapter: a,
		SentToday: f.sentToday, SentTodayForVersion: f.sentForVersion, MaxSharePct: f.maxSharePct, RecipientProvider: prov,
	}
}

// applyVerdict records a non-allow verdict. Adapter-level blocks (rest, ramp
// cap, gap) move the adapter's next_send_at — one write however large its
// backlog — and touch only the claimed execution.
func (s *Store) applyVerdict(ctx context.Context, q *dbsqlc.Queries, tenant string, sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, v policy.Verdict, now time.Time, res *Reservation, evs *[]event) error {
	id := sc.ID
	scope := v.Scope()
	switch scope {
	case policy.ScopeCancel:
		res.Outcome = Cancelled
		code := v.Reason
		return q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: id, State: "cancelled", ErrorCode: &code, Now: now})
	case policy.ScopeSkip:
		res.Outcome = Skipped
		code := "suppressed"
		if err := q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: id, State: "skipped", ErrorCode: &code, Now: now}); err != nil {
			return err
		}
		*evs = append(*evs, evSuppressed(tenant, id, sc.EnrollmentID, v.Inputs["scope"]))
		ev, err := s.stopEnrollment(ctx, q, tenant, sc.EnrollmentID, "suppressed")
		if ev.name != "" {
			*evs = append(*evs, ev)
		}
		return err
	}
	res.Outcome = Deferred
	reason := v.Reason
	until := v.DeferUntil
	switch scope {
	case policy.ScopeExecution:
		// This execution waits; others of the adapter go on.
		if err := q.DeferExecution(ctx, dbsqlc.DeferExecutionParams{TenantKey: tenant, ID: id, ScheduledFor: until, DeferReason: &reason, DeferUntil: &until, Now: now}); err != nil {
			return err
		}
	default: // policy.ScopeAdapter
		if err := q.SetAdapterNextSend(ctx, dbsqlc.SetAdapterNextSendParams{TenantKey: tenant, ID: ad.ID, NextSendAt: until}); err != nil {
			return err
		}
		if err := q.DeferExecution(ctx, dbsqlc.DeferExecutionParams{TenantKey: tenant, ID: id, ScheduledFor: sc.ScheduledFor, DeferReason: &reason, DeferUntil: &until, Now: now}); err != nil {
			return err
		}
	}
	data, _ := json.Marshal(map[string]any{"policy": v.Policy, "defer_until": until})
	if err := q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: tenant, ID: dripdrop.NewID(), Type: "deferred", AdapterID: &ad.ID,
		StepExecutionID: &id, EnrollmentID: &sc.EnrollmentID, SequenceVersionID: &sc.SequenceVersionID, Reason: &reason, Data: data, OccurredAt: now}); err != nil {
		return err
	}
	if ev, ok := evPolicy(tenant, sc, ad.ID, v); ok {
		*evs = append(*evs, ev)
	}
	*evs = append(*evs, evDeferred(tenant, id, ad.ID, reason, until))
	return nil
}
