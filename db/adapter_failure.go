package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/health"
)

// PauseStepFailed is the pause_reason of an enrollment whose step failed
// permanently for a reason other than the recipient (docs/enrollments.md, no dead ends).
const PauseStepFailed = "step_failed"

// AdapterFailed records a send that failed because of the sender, not the
// recipient (docs/sending.md "Whose failure is it?": connection, TLS, AUTH, 421,
// policy rejections at MAIL FROM, a stalled server). The execution goes back
// to scheduled without using an attempt; the adapter is blocked for 1 min
// doubling to 1 h per consecutive failure (next_send_at), and after
// health.AuthFailuresToRest consecutive AUTH failures it rests (auth_failed,
// source engine). Emits dripdrop.dispatch.adapter_error.
func (s *Store) AdapterFailed(ctx context.Context, job *SendJob, reason string, auth bool, msg string) error {
	return wrap("record adapter failure", s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		now := s.clock.Now()
		// Lock order: adapter, then execution.
		a, err := q.LockAdapter(ctx, dbsqlc.LockAdapterParams{TenantKey: job.TenantKey, ID: job.AdapterID})
		if err != nil {
			return nil, err
		}
		next := now.Add(health.AdapterBackoff(a.AdapterFailures + 1))
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		code := "adapter_" + reason
		n, err := q.RequeueAfterAdapterFailure(ctx, dbsqlc.RequeueAfterAdapterFailureParams{TenantKey: job.TenantKey, ID: job.ExecutionID,
			ErrorCode: &code, Error: &msg, DeferUntil: next, Now: now, LeaseExpiresAt: job.Lease})
		if err != nil || n == 0 {
			return nil, err // n == 0: rescued meanwhile; the rescue released the reservation
		}
		if err := s.releaseUsage(ctx, q, job.TenantKey, job.AdapterID, job.SequenceVersionID, job.EnrollmentID, &job.Day); err != nil {
			return nil, err
		}
		evs, err := s.countAdapterFault(ctx, q, a, reason, auth, now)
		return append(job.diagnosticEvents(), evs...), err
	}))
}

// countAdapterFault counts one failure of the sender against a locked
// adapter: its consecutive failures (and AUTH failures when auth) go up,
// it is blocked for health.AdapterBackoff of them (next_send_at), and after
// health.AuthFailuresToRest consecutive AUTH failures it rests (auth_failed,
// source engine). It returns dripdrop.dispatch.adapter_error and the
// transition, if any.
func (s *Store) countAdapterFault(ctx context.Context, q *dbsqlc.Queries, a dbsqlc.Adapter, reason string, auth bool, now time.Time) ([]event, error) {
	fails, auths := a.AdapterFailures+1, 0
	if auth {
		auths = a.AuthFailures + 1
	}
	next := now.Add(health.AdapterBackoff(fails))
	if err := q.SetAdapterFailures(ctx, dbsqlc.SetAdapterFailuresParams{TenantKey: a.TenantKey, ID: a.ID,
		AdapterFailures: fails, AuthFailures: auths, NextSendAt: &next}); err != nil {
		return nil, err
	}
	evs := []event{evAdapterError(a.TenantKey, a.ID, reason, fails)}
	if auths < health.AuthFailuresToRest || a.HealthState == dripdrop.HealthResting {
		return evs, nil
	}
	_, ev, err := s.transition(ctx, q, a, health.AuthFailure(snapshot(a, health.Counts{}), now), SourceEngine)
	if err != nil {
		return nil, err
	}
	return append(evs, ev), nil
}

// pauseStepFailed pauses an active enrollment whose step failed for good
// for a reason other than the recipient, so it is never active with nothing
// to send; retry or resume schedules the step again.
func (s *Store) pauseStepFailed(ctx context.Context, q *dbsqlc.Queries, tenant string, id uuid.UUID, errCode string) (event, error) {
	e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: id})
	if err != nil || e.State != dripdrop.EnrollmentActive {
		return event{}, err
	}
	reason := PauseStepFailed
	if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: id, State: dripdrop.EnrollmentPaused, PauseReason: &reason, Now: s.clock.Now()}); err != nil {
		return event{}, err
	}
	if err := s.audit(ctx, q, tenant, "enrollment", id, "paused", SourceEngine, map[string]any{"reason": reason, "error_code": errCode}); err != nil {
		return event{}, err
	}
	return evEnrollment("dripdrop.enrollment.paused", tenant, id, reason), nil
}

// RetryEnrollment schedules the failed step of an enrollment again as a new
// attempt window (a new Message-ID: nothing was delivered) and makes the
// enrollment active (docs/enrollments.md). The enrollment must be paused or active with
// a failed latest execution.
func (s *Store) RetryEnrollment(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "retry enrollment")
	return s.enrollmentOp(ctx, tenant, id, func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error) {
		if e.State != dripdrop.EnrollmentActive && e.State != dripdrop.EnrollmentPaused {
			return nil, invalidTransition(e, "retry")
		}
		ok, err := s.retryFailedStep(ctx, q, e)
		if err != nil {
			return nil, err
		}
		// A step whose delivery the sender failed is already pending again
		// (the enrollment waits paused as sender_rejected): retry resumes it.
		senderRejected := e.State == dripdrop.EnrollmentPaused && e.PauseReason != nil && *e.PauseReason == PauseSenderRejected
		if !ok && !senderRejected {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidState, "", "the enrollment has no failed step to retry")
		}
		if senderRejected {
			if _, err := q.RescheduleNotBefore(ctx, dbsqlc.RescheduleNotBeforeParams{TenantKey: tenant, EnrollmentID: id, Now: s.clock.Now()}); err != nil {
				return nil, err
			}
		}
		if e.State == dripdrop.EnrollmentPaused {
			if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: id, State: dripdrop.EnrollmentActive, Now: s.clock.Now()}); err != nil {
				return nil, err
			}
		}
		return []event{evEnrollment("dripdrop.enrollment.resumed", tenant, id, "retry")}, s.audit(ctx, q, tenant, "enrollment", id, "retried", "api", nil)
	})
}

// retryFailedStep inserts a new attempt window of the enrollment's latest
// execution when it failed, from the current pin (or the step's override).
// It reports whether it did.
func (s *Store) retryFailedStep(ctx context.Context, q *dbsqlc.Queries, e dbsqlc.Enrollment) (bool, error) {
	last, err := q.LastExecution(ctx, dbsqlc.LastExecutionParams{TenantKey: e.TenantKey, EnrollmentID: e.ID})
	if err != nil || last.State != "failed" {
		return false, ignoreNoRows(err)
	}
	sender := e.AdapterID
	if last.AdapterOverrideID != nil {
		sender = *last.AdapterOverrideID
	}
	now := s.clock.Now()
	next := dripdrop.NewID()
	if _, err := q.InsertExecution(ctx, dbsqlc.InsertExecutionParams{TenantKey: e.TenantKey, ID: next, EnrollmentID: e.ID,
		StepID: last.StepID, AdapterID: sender, Followup: last.Followup, AttemptWindow: last.AttemptWindow + 1, ScheduledFor: now, Now: now}); err != nil {
		return false, err
	}
	// The step's variant stays the contact's (variants.go).
	if err := q.CarryVariant(ctx, dbsqlc.CarryVariantParams{TenantKey: e.TenantKey, ID: next, FromID: last.ID}); err != nil {
		return false, err
	}
	return true, q.NotifyWork(ctx, e.TenantKey)
}

func ignoreNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}
