package db

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// suppression reasons by stop reason: the recipient's outcomes that also
// put the address on the suppression list.
var suppressionFor = map[string]string{
	dripdrop.StopBounced: "bounce", dripdrop.StopComplained: "complaint", dripdrop.StopUnsubscribed: "unsubscribe",
}

// suppressAndStop is the one way a recipient's outcome — a hard bounce (at
// SMTP time or by DSN), a complaint, an unsubscribe — takes effect: the
// address goes on the suppression list (reason from the stop reason,
// source as given; an existing entry stays), and the enrollment is stopped
// with its pending executions cancelled (also when it had completed). It
// returns the stopped event, or ok=false when the enrollment was already
// terminal. An address that is not one (empty, over 254 bytes, no @) is
// not suppressed.
func (s *Store) suppressAndStop(ctx context.Context, q *dbsqlc.Queries, tenant string, enrollment uuid.UUID, email, stop, source string) (ev event, ok bool, err error) {
	if err := s.suppress(ctx, q, tenant, email, suppressionFor[stop], source); err != nil {
		return event{}, false, err
	}
	ev, err = s.stopEnrollment(ctx, q, tenant, enrollment, stop)
	return ev, err == nil && ev.name != "", err
}

// suppress puts an address on the tenant's suppression list with reason
// and source, unless it is there already or is not an address.
func (s *Store) suppress(ctx context.Context, q *dbsqlc.Queries, tenant, email, reason, source string) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") || reason == "" {
		return nil
	}
	return q.UpsertSuppressionIfAbsent(ctx, dbsqlc.UpsertSuppressionIfAbsentParams{TenantKey: tenant, ID: dripdrop.NewID(), Kind: "email",
		Value: email, Reason: reason, Source: source, Now: s.clock.Now()})
}

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
func (s *Store) Unsubscribe(ctx context.Context, tenant string, enrollment uuid.UUID, source string) (err error) {
	defer wrapErr(&err, "unsubscribe")
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: enrollment})
		if err != nil {
			return evs, mapErr(err, "enrollment")
		}
		now := s.clock.Now()
		ev, ok, err := s.suppressAndStop(ctx, q, tenant, e.ID, e.Email, dripdrop.StopUnsubscribed, source)
		if err != nil || !ok {
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
