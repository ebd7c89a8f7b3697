package db

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

// Sent is an accepted message to record.
type Sent struct {
	Job                 *SendJob
	ProviderID, Subject string
	// HandedOver is when the message was handed over to the server (the
	// end of its data), on the store's clock: an adapter's minimum gap runs
	// from then, so the receiver sees sends min_gap_seconds apart however
	// long the server took to reply. Zero (or later than the record): from
	// the record.
	HandedOver time.Time
}

// MarkSentBatch is phase two for accepted messages, in one transaction:
// one set-based RecordSent statement per tenant, then their outbox rows
// with the commit. RecordSent records the send, fenced by
// the lease so a rescued and re-reserved send is never overwritten, writes
// the sent event, starts the adapter's gap, and schedules the next step or
// completes the enrollment. ok[i] is false when sent[i]'s lease was lost
// (a rescue owns it now). An error means nothing was recorded: a failing
// statement aborts the transaction, so callers retry the messages (one by
// one, to find the one that fails).
func (s *Store) MarkSentBatch(ctx context.Context, sent []Sent) (_ []bool, err error) {
	defer wrapErr(&err, "record sends")
	now := s.clock.Now()
	// One statement per tenant (RecordSent is set-based).
	byTenant := map[string]*dbsqlc.RecordSentParams{}
	enrollments := map[string][]uuid.UUID{}
	var tenants []string
	index := make(map[uuid.UUID]int, len(sent))
	for i, m := range sent {
		job := m.Job
		index[job.ExecutionID] = i
		p := byTenant[job.TenantKey]
		if p == nil {
			p = &dbsqlc.RecordSentParams{TenantKey: job.TenantKey, Now: now}
			byTenant[job.TenantKey] = p
			tenants = append(tenants, job.TenantKey)
		}
		var start, gap time.Time // zero: no gap
		if jobGap(job).HasGap() {
			start = now
			if !m.HandedOver.IsZero() && m.HandedOver.Before(now) {
				start = m.HandedOver
			}
			gap = policy.GapEnd(jobGap(job), start)
		}
		p.Ids = append(p.Ids, job.ExecutionID)
		enrollments[job.TenantKey] = append(enrollments[job.TenantKey], job.EnrollmentID)
		p.LeaseExpiresAts = append(p.LeaseExpiresAts, job.Lease)
		p.ProviderMessageIds = append(p.ProviderMessageIds, m.ProviderID)
		p.Subjects = append(p.Subjects, m.Subject)
		p.EventIds = append(p.EventIds, dripdrop.NewID())
		p.SequenceVersionIds = append(p.SequenceVersionIds, job.SequenceVersionID)
		p.Attempts = append(p.Attempts, job.Attempt)
		p.SequenceKeys = append(p.SequenceKeys, job.SequenceKey)
		p.StepKeys = append(p.StepKeys, job.StepKey)
		p.Providers = append(p.Providers, job.Provider)
		p.OutMessageIds = append(p.OutMessageIds, job.MessageID)
		p.Variants = append(p.Variants, job.Variant) // "" = no variants: the sent data names none
		p.GapStarts = append(p.GapStarts, start)
		p.GapNextSendAts = append(p.GapNextSendAts, gap)
		p.Positions = append(p.Positions, job.Position)
		p.NextIds = append(p.NextIds, dripdrop.NewID())
	}
	ok := make([]bool, len(sent))
	wake := map[string]bool{}
	var evs []event
	// The records and their outbox rows commit together. RecordSent writes
	// the outbox rows of its own events, so a group without diagnostics
	// (the common case) commits in one round trip: the begin, the records
	// and COMMIT; one with diagnostics sends their rows with COMMIT in a
	// second.
	oneTrip := !slices.ContainsFunc(sent, func(m Sent) bool { return len(m.Job.Diagnostics) > 0 })
	citus := s.onCitus(ctx)
	err = s.txPipe(ctx, s.beginHot(ctx), func(p *pipe) ([]event, error) {
		evs = evs[:0]
		clear(ok)
		clear(wake)
		if citus {
			return s.recordOnCitus(ctx, p, sent, tenants, byTenant, enrollments, index, now, ok, wake)
		}
		recorded := make([][]dbsqlc.RecordSentRow, len(tenants))
		b := &pgx.Batch{}
		for k, t := range tenants {
			// Lock order: the enrollments, then their executions.
			queueExec(b, func(q *dbsqlc.Queries) error {
				_, err := q.LockEnrollments(ctx, dbsqlc.LockEnrollmentsParams{TenantKey: t, Ids: enrollments[t]})
				return err
			})
			queueRows(b, &recorded[k], func(q *dbsqlc.Queries) error {
				_, err := q.RecordSent(ctx, *byTenant[t])
				return err
			})
		}
		run := p.run
		if oneTrip {
			run = p.runCommit
		}
		if err := run(ctx, b); err != nil {
			return evs, err
		}
		for k, t := range tenants {
			for _, row := range recorded[k] {
				i := index[row.ID]
				job := sent[i].Job
				ok[i] = true
				wake[t] = wake[t] || row.NextDueNow
				evs = append(evs, job.diagnosticEvents()...)
				// RecordSent wrote the outbox rows of these two.
				ev := evSent(job, sent[i].ProviderID)
				ev.written, ev.noMatch = true, !row.Pending
				evs = append(evs, ev)
				if row.Completed {
					ev := evEnrollment("dripdrop.enrollment.completed", job.TenantKey, row.EnrollmentID, "last_step_sent")
					ev.written, ev.noMatch = true, !row.Pending
					evs = append(evs, ev)
				}
			}
		}
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	for t, w := range wake {
		if w {
			s.wake(t)
		}
	}
	reset := map[[2]string]bool{}
	for i, m := range sent {
		job := m.Job
		if k := [2]string{job.TenantKey, job.AdapterID.String()}; ok[i] && job.AdapterFailures > 0 && !reset[k] {
			// The sender works again (rare path, so not in RecordSent).
			reset[k] = true
			if err := s.q.ResetAdapterFailures(ctx, dbsqlc.ResetAdapterFailuresParams{TenantKey: job.TenantKey, ID: job.AdapterID}); err != nil {
				s.log.Warn("resetting an adapter's failure count", "adapter", job.AdapterID, "err", err)
			}
		}
	}
	return ok, nil
}

// MarkFailed records a failed send and releases its reservation. A
// temporary failure is retried after 30 s × 2^(attempt−1) with the same
// Message-ID, up to MaxAttempts; a permanent one fails the execution and
// pauses the enrollment (step_failed), except a bounce (5.1.x), which
// suppresses the address, stops the enrollment and runs the sender's health
// check. Sender-side failures go to AdapterFailed instead.
func (s *Store) MarkFailed(ctx context.Context, job *SendJob, temporary, bounce bool, code int, errCode, msg string) (err error) {
	defer wrapErr(&err, "record failure")
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		now := s.clock.Now()
		state, at := "failed", now
		delay, retry := policy.Retry(job.Attempt)
		retry = retry && temporary
		if retry {
			state, at = "scheduled", now.Add(delay)
		}
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		// Lock order: the enrollment, then its execution (LockEnrollments).
		if _, err := q.LockEnrollments(ctx, dbsqlc.LockEnrollmentsParams{TenantKey: job.TenantKey, Ids: []uuid.UUID{job.EnrollmentID}}); err != nil {
			return evs, err
		}
		_, err := q.MarkSendFailed(ctx, dbsqlc.MarkSendFailedParams{TenantKey: job.TenantKey, ID: job.ExecutionID, State: state, ScheduledFor: at,
			ErrorCode: &errCode, Error: &msg, Now: now, LeaseExpiresAt: &job.Lease})
		if errors.Is(err, pgx.ErrNoRows) {
			return evs, nil // rescued meanwhile: the rescue released the reservation
		}
		if err != nil {
			return evs, err
		}
		if err := s.releaseUsage(ctx, q, job.TenantKey, job.AdapterID, job.SequenceVersionID, job.EnrollmentID, &job.Day); err != nil {
			return evs, err
		}
		evs = append(evs, job.diagnosticEvents()...)
		if err := s.afterSend(ctx, q, job, now); err != nil {
			return evs, err
		}
		if retry {
			return append(evs, evRetry(job, at, errCode)), nil
		}
		evs = append(evs, evFailed(job.TenantKey, job.ExecutionID, job.EnrollmentID, job.AdapterID, errCode, code, !temporary))
		if !bounce {
			// Not the recipient's fault: no dead end (docs/enrollments.md).
			ev, err := s.pauseStepFailed(ctx, q, job.TenantKey, job.EnrollmentID, errCode)
			if ev.name != "" {
				evs = append(evs, ev)
			}
			return evs, err
		}
		sub := "hard"
		if err := q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: job.TenantKey, ID: dripdrop.NewID(), Type: "bounced", Subtype: &sub,
			AdapterID: &job.AdapterID, StepExecutionID: &job.ExecutionID, EnrollmentID: &job.EnrollmentID, SequenceVersionID: &job.SequenceVersionID,
			Reason: &errCode, Data: []byte("{}"), OccurredAt: now}); err != nil {
			return evs, err
		}
		ev, ok, err := s.suppressAndStop(ctx, q, job.TenantKey, job.EnrollmentID, job.Contact.Email, dripdrop.StopBounced, "smtp")
		if err != nil {
			return evs, err
		}
		if ok {
			evs = append(evs, ev)
		}
		// The bounce feeds the sender's health at once (docs/health.md).
		hevs, err := s.checkHealth(ctx, q, job.TenantKey, job.AdapterID, now)
		evs = append(evs, hevs...)
		return evs, err
	})
	if err != nil {
		return err
	}
	return nil
}

// afterSend starts the adapter's gap at the end of a conversation.
func (s *Store) afterSend(ctx context.Context, q *dbsqlc.Queries, job *SendJob, now time.Time) error {
	if !jobGap(job).HasGap() {
		return nil
	}
	next := policy.GapEnd(jobGap(job), now)
	return q.AdapterAfterSend(ctx, dbsqlc.AdapterAfterSendParams{TenantKey: job.TenantKey, ID: job.AdapterID, Now: now, NextSendAt: &next})
}

func (s *Store) releaseUsage(ctx context.Context, q *dbsqlc.Queries, tenant string, adapter, version, enrollment uuid.UUID, day *time.Time) error {
	if day == nil {
		return nil
	}
	if err := q.ReleaseUsage(ctx, dbsqlc.ReleaseUsageParams{TenantKey: tenant, AdapterID: adapter, Day: *day, SequenceVersionID: version}); err != nil {
		return err
	}
	// Its place under a provider cap (a no-op without one).
	return q.ReleaseProviderUsage(ctx, dbsqlc.ReleaseProviderUsageParams{TenantKey: tenant, AdapterID: adapter, Day: *day, EnrollmentID: enrollment})
}

// RescueStale returns executions left sending past their lease (a crashed
// or stuck worker) to scheduled, keeping their Message-ID, and releases
// their reservations. It returns how many it rescued.
func (s *Store) RescueStale(ctx context.Context, tenant string) (_ int, err error) {
	defer wrapErr(&err, "rescue stale")
	n := 0
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		n = 0
		now := s.clock.Now()
		rows, err := q.StaleSending(ctx, dbsqlc.StaleSendingParams{TenantKey: tenant, Now: now})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if err := q.RescueExecution(ctx, dbsqlc.RescueExecutionParams{TenantKey: tenant, ID: r.ID, Now: now}); err != nil {
				return nil, err
			}
			e, err := q.GetEnrollment(ctx, dbsqlc.GetEnrollmentParams{TenantKey: tenant, ID: r.EnrollmentID})
			if err != nil {
				return nil, err
			}
			if err := s.releaseUsage(ctx, q, tenant, r.AdapterID, e.SequenceVersionID, e.ID, r.ReservedDay); err != nil {
				return nil, err
			}
			if err := q.ClearAdapterGuard(ctx, dbsqlc.ClearAdapterGuardParams{TenantKey: tenant, ID: r.AdapterID, Now: now}); err != nil {
				return nil, err
			}
			n++
		}
		if n > 0 {
			return nil, q.NotifyWork(ctx, tenant)
		}
		return nil, nil
	})
	return n, err
}
