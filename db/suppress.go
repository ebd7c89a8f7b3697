package db

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

func (s *Store) stopEnrollment(ctx context.Context, q *dbsqlc.Queries, tenant string, id uuid.UUID, reason string) (event, error) {
	now := s.clock.Now()
	// The recipient's own outcomes end a completed enrollment as well: a
	// hard bounce of the last step means the address is bad, not that the
	// sequence completed.
	fromCompleted := reason == dripdrop.StopBounced || reason == dripdrop.StopComplained || reason == dripdrop.StopUnsubscribed
	n, err := q.StopEnrollment(ctx, dbsqlc.StopEnrollmentParams{TenantKey: tenant, ID: id, StopReason: &reason, Now: now, FromCompleted: fromCompleted})
	if err != nil || n == 0 {
		return event{}, err
	}
	if _, err := q.CancelPendingExecutions(ctx, dbsqlc.CancelPendingExecutionsParams{TenantKey: tenant, EnrollmentID: id, Now: now}); err != nil {
		return event{}, err
	}
	return evEnrollment("dripdrop.enrollment.stopped", tenant, id, reason), nil
}

// Unsubscribe honours a one-click unsubscribe: the address is suppressed
// (reason unsubscribe) and the enrollment stopped. Repeats change nothing.
func (s *Store) Unsubscribe(ctx context.Context, tenant string, enrollment uuid.UUID, source string) error {
	var evs []event
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: enrollment})
		if err != nil {
			return evs, mapErr(err, "enrollment")
		}
		now := s.clock.Now()
		if err := q.UpsertSuppressionIfAbsent(ctx, dbsqlc.UpsertSuppressionIfAbsentParams{TenantKey: tenant, ID: dripdrop.NewID(), Kind: "email",
			Value: strings.ToLower(e.Email), Reason: "unsubscribe", Source: source, Now: now}); err != nil {
			return evs, err
		}
		ev, err := s.stopEnrollment(ctx, q, tenant, e.ID, "unsubscribed")
		if err != nil || ev.name == "" {
			return evs, err
		}
		evs = append(evs, ev)
		return evs, q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: tenant, ID: dripdrop.NewID(), Type: "unsubscribed",
			EnrollmentID: &e.ID, SequenceVersionID: &e.SequenceVersionID, Reason: &source, Data: []byte("{}"), OccurredAt: now})
	})
	if err != nil {
		return err
	}
	return nil
}
