package db

import (
	"context"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// enrollmentOp runs fn on a locked enrollment and returns it afterwards.
func (s *Store) enrollmentOp(ctx context.Context, tenant string, id uuid.UUID, fn func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error)) (dripdrop.Enrollment, error) {
	var evs []event
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: id})
		if err != nil {
			return evs, mapErr(err, "enrollment")
		}
		evs, err = fn(q, e)
		return evs, err
	})
	if err != nil {
		return dripdrop.Enrollment{}, mapErr(err, "enrollment")
	}
	return s.GetEnrollment(ctx, tenant, id)
}

func invalidTransition(e dbsqlc.Enrollment, action string) error {
	return dripdrop.Errorf(dripdrop.ECodeInvalidState, "", "cannot %s an enrollment that is %s", action, e.State)
}

// PauseEnrollment stops an active enrollment from sending until resumed.
func (s *Store) PauseEnrollment(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "pause enrollment")
	return s.enrollmentOp(ctx, tenant, id, func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error) {
		if e.State != dripdrop.EnrollmentActive {
			return nil, invalidTransition(e, "pause")
		}
		reason := PauseOperator
		if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: id, State: dripdrop.EnrollmentPaused, PauseReason: &reason, Now: s.clock.Now()}); err != nil {
			return nil, err
		}
		return []event{evEnrollment("dripdrop.enrollment.paused", tenant, id, reason)}, s.audit(ctx, q, tenant, "enrollment", id, "paused", "api", map[string]any{"reason": reason})
	})
}

// ResumeEnrollment re-activates a paused enrollment; its next pending step
// is scheduled no earlier than now.
func (s *Store) ResumeEnrollment(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "resume enrollment")
	return s.enrollmentOp(ctx, tenant, id, func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error) {
		if e.State != dripdrop.EnrollmentPaused {
			return nil, invalidTransition(e, "resume")
		}
		now := s.clock.Now()
		// Lock order: the executions, then (the state change's trigger)
		// the adapter's ready-queue row — the order of every claim and
		// reservation, which lock executions and then wake adapter_due.
		// The other order deadlocked against a reservation releasing a
		// claim of this enrollment.
		if _, err := q.RescheduleNotBefore(ctx, dbsqlc.RescheduleNotBeforeParams{TenantKey: tenant, EnrollmentID: id, Now: now}); err != nil {
			return nil, err
		}
		if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: id, State: dripdrop.EnrollmentActive, Now: now}); err != nil {
			return nil, err
		}
		// A step that failed for good is scheduled again (no dead ends; docs/enrollments.md).
		if _, err := s.retryFailedStep(ctx, q, e); err != nil {
			return nil, err
		}
		return []event{evEnrollment("dripdrop.enrollment.resumed", tenant, id, "operator")}, s.audit(ctx, q, tenant, "enrollment", id, "resumed", "api", nil)
	})
}

// CancelEnrollment ends an active or paused enrollment and cancels its
// pending executions.
func (s *Store) CancelEnrollment(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "cancel enrollment")
	return s.enrollmentOp(ctx, tenant, id, func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error) {
		if e.State != dripdrop.EnrollmentActive && e.State != dripdrop.EnrollmentPaused {
			return nil, invalidTransition(e, "cancel")
		}
		now := s.clock.Now()
		if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: id, State: dripdrop.EnrollmentCancelled, Now: now}); err != nil {
			return nil, err
		}
		if _, err := q.CancelPendingExecutions(ctx, dbsqlc.CancelPendingExecutionsParams{TenantKey: tenant, EnrollmentID: id, Now: now}); err != nil {
			return nil, err
		}
		return []event{evEnrollment("dripdrop.enrollment.cancelled", tenant, id, "operator")}, s.audit(ctx, q, tenant, "enrollment", id, "cancelled", "api", nil)
	})
}

// RepinEnrollment moves an enrollment to another active, non-resting
// adapter of the same tenant and channel. The next step starts a new thread.
func (s *Store) RepinEnrollment(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.RepinInput) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "repin enrollment")
	target, reason, err := in.Validate()
	if err != nil {
		return dripdrop.Enrollment{}, err
	}
	return s.enrollmentOp(ctx, tenant, id, func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error) {
		if e.State != dripdrop.EnrollmentActive && e.State != dripdrop.EnrollmentPaused {
			return nil, invalidTransition(e, "repin")
		}
		a, err := q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: target})
		if err != nil {
			if dripdrop.ErrorCode(mapErr(err, "adapter")) == dripdrop.ECodeNotFound {
				return nil, &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: "adapter_id", Message: "adapter not found"}
			}
			return nil, err
		}
		old, err := q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: e.AdapterID})
		if err == nil && old.Channel != a.Channel {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "adapter_id", "the adapter sends on another channel")
		}
		if !a.Active || a.HealthState == dripdrop.HealthResting {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidState, "adapter_id", "the target adapter must be active and not resting")
		}
		if a.ID == e.AdapterID {
			return nil, nil
		}
		ev, err := s.repin(ctx, q, e, a.ID, reason, "api")
		return []event{ev}, err
	})
}

// repin changes the pin (starting a new thread), writes the audit entry and
// returns the sender_reassigned event.
func (s *Store) repin(ctx context.Context, q *dbsqlc.Queries, e dbsqlc.Enrollment, to uuid.UUID, reason, actor string) (event, error) {
	if _, err := q.Repin(ctx, dbsqlc.RepinParams{TenantKey: e.TenantKey, ID: e.ID, AdapterID: to, Now: s.clock.Now()}); err != nil {
		return event{}, err
	}
	if err := q.RepinPendingExecutions(ctx, dbsqlc.RepinPendingExecutionsParams{TenantKey: e.TenantKey, EnrollmentID: e.ID, AdapterID: to, Now: s.clock.Now()}); err != nil {
		return event{}, err
	}
	if err := s.audit(ctx, q, e.TenantKey, "enrollment", e.ID, "sender_reassigned", actor, map[string]any{
		"old_adapter_id": e.AdapterID, "new_adapter_id": to, "reason": reason,
	}); err != nil {
		return event{}, err
	}
	return evSenderReassigned(e.TenantKey, e.ID, e.AdapterID, to, reason), nil
}

// pausePinUnavailable pauses an enrollment whose pin can no longer send.
func (s *Store) pausePinUnavailable(ctx context.Context, q *dbsqlc.Queries, e dbsqlc.Enrollment) (event, error) {
	reason := PausePinUnavailable
	if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: e.TenantKey, ID: e.ID, State: dripdrop.EnrollmentPaused, PauseReason: &reason, Now: s.clock.Now()}); err != nil {
		return event{}, err
	}
	if err := s.audit(ctx, q, e.TenantKey, "enrollment", e.ID, "paused", "engine", map[string]any{"reason": reason, "adapter_id": e.AdapterID}); err != nil {
		return event{}, err
	}
	return evPausedPinUnavailable(e.TenantKey, e.ID, e.AdapterID), nil
}

// applyPinPolicy handles one enrollment whose pinned adapter became
// unavailable: with a reassign pool it is repinned to an eligible member
// (new thread), otherwise — or when none is eligible — it is paused.
func (s *Store) applyPinPolicy(ctx context.Context, q *dbsqlc.Queries, e dbsqlc.Enrollment, pool uuid.UUID) (event, error) {
	p, err := q.LockPool(ctx, dbsqlc.LockPoolParams{TenantKey: e.TenantKey, ID: pool})
	if err != nil {
		return event{}, err
	}
	if e.State == dripdrop.EnrollmentActive && p.OnPinUnavailable == dripdrop.PinReassign && p.DeletedAt == nil {
		cands, err := s.loadCandidates(ctx, q, e.TenantKey, pool, e.SequenceVersionID, s.clock.Now())
		if err != nil {
			return event{}, err
		}
		pk := newPicker(p, cands)
		pk.reassign = false // only eligible members may take over a live thread
		// The recipient's provider still counts (provider_matching).
		if to, ok := pk.pickFor(deref(e.RecipientProvider)); ok && to != e.AdapterID {
			if err := pk.saveCounters(ctx, q, e.TenantKey, e.SequenceVersionID); err != nil {
				return event{}, err
			}
			return s.repin(ctx, q, e, to, ReassignAutoRebind, "engine")
		}
	}
	if e.State == dripdrop.EnrollmentPaused {
		return event{}, nil
	}
	return s.pausePinUnavailable(ctx, q, e)
}
