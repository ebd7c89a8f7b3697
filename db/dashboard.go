package db

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// Read models of the operator dashboard (docs/dashboard.md). They are tenant-scoped
// like every other store method; the dashboard renders them and holds no
// SQL of its own.

// DayCount is one adapter-local day of an adapter's message events.
type DayCount struct {
	Day        time.Time `json:"day"` // midnight UTC of the local date
	Sent       int       `json:"sent"`
	Bounced    int       `json:"bounced"` // hard bounces, as the health check counts them
	Complained int       `json:"complained"`
}

// AdapterDaily returns the last `days` local days (today included) of an
// adapter's sends, hard bounces and complaints, oldest first, one entry per
// day including days without events.
func (s *Store) AdapterDaily(ctx context.Context, tenant string, id uuid.UUID, days int) (_ []DayCount, err error) {
	defer wrapErr(&err, "adapter daily counts")
	ad, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: id})
	if err != nil {
		return nil, mapErr(err, "adapter")
	}
	loc, err := time.LoadLocation(ad.Timezone)
	if err != nil {
		loc = time.UTC
	}
	today := dayOf(s.clock.Now(), loc)
	first := today.AddDate(0, 0, -(days - 1))
	since := time.Date(first.Year(), first.Month(), first.Day(), 0, 0, 0, 0, loc)
	rows, err := s.q.AdapterDailyEvents(ctx, dbsqlc.AdapterDailyEventsParams{Tz: loc.String(), TenantKey: tenant, AdapterID: &id, Since: since})
	if err != nil {
		return nil, err
	}
	byDay := make(map[time.Time]dbsqlc.AdapterDailyEventsRow, len(rows))
	for _, r := range rows {
		byDay[r.Day] = r
	}
	out := make([]DayCount, days)
	for i := range out {
		d := first.AddDate(0, 0, i)
		r := byDay[d]
		out[i] = DayCount{Day: d, Sent: r.Sent, Bounced: r.Bounced, Complained: r.Complained}
	}
	return out, nil
}

// TenantDay summarises a tenant's message events since a moment.
type TenantDay struct {
	Since      time.Time      `json:"since"`
	Events     map[string]int `json:"events"`    // by type: sent, replied, ooo, bounced, complained, …
	Deferrals  map[string]int `json:"deferrals"` // deferred events by policy reason
	DueBacklog int            `json:"due_backlog"`
}

// TenantToday counts the tenant's message events since UTC midnight and its
// due backlog now.
func (s *Store) TenantToday(ctx context.Context, tenant string) (_ TenantDay, err error) {
	defer wrapErr(&err, "tenant today")
	now := s.clock.Now()
	d := TenantDay{Since: dayOf(now, time.UTC), Events: map[string]int{}, Deferrals: map[string]int{}}
	rows, err := s.q.TenantEventCounts(ctx, dbsqlc.TenantEventCountsParams{TenantKey: tenant, Since: d.Since})
	if err != nil {
		return d, err
	}
	for _, r := range rows {
		d.Events[r.Type] += r.N
		if r.Type == "deferred" {
			d.Deferrals[r.Reason] += r.N
		}
	}
	d.DueBacklog, err = s.q.TenantDueBacklog(ctx, dbsqlc.TenantDueBacklogParams{TenantKey: tenant, Now: now})
	return d, err
}

// PinCounts returns how many active or paused enrollments are pinned to
// each of the tenant's adapters.
func (s *Store) PinCounts(ctx context.Context, tenant string) (_ map[uuid.UUID]int, err error) {
	defer wrapErr(&err, "pin counts")
	rows, err := s.q.TenantPinCounts(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]int, len(rows))
	for _, r := range rows {
		out[r.AdapterID] = r.N
	}
	return out, nil
}

// MessageEvent is one entry of an enrollment's message log.
type MessageEvent struct {
	ID              uuid.UUID  `json:"id"`
	Type            string     `json:"type"`
	Subtype         *string    `json:"subtype"`
	AdapterID       *uuid.UUID `json:"adapter_id"`
	StepExecutionID *uuid.UUID `json:"step_execution_id"`
	Reason          *string    `json:"reason"`
	OccurredAt      time.Time  `json:"occurred_at"`
}

// EnrollmentEvents lists the message events (sent, deferred, bounced,
// replied, …) of an enrollment's executions, oldest first. An enrollment of
// another tenant is not found.
func (s *Store) EnrollmentEvents(ctx context.Context, tenant string, id uuid.UUID) (_ []MessageEvent, err error) {
	defer wrapErr(&err, "enrollment events")
	if _, err := s.q.GetEnrollment(ctx, dbsqlc.GetEnrollmentParams{TenantKey: tenant, ID: id}); err != nil {
		return nil, mapErr(err, "enrollment")
	}
	rows, err := s.q.EnrollmentMessageEvents(ctx, dbsqlc.EnrollmentMessageEventsParams{TenantKey: tenant, EnrollmentID: id})
	if err != nil {
		return nil, err
	}
	out := make([]MessageEvent, len(rows))
	for i, r := range rows {
		out[i] = MessageEvent{ID: r.ID, Type: r.Type, Subtype: r.Subtype, AdapterID: r.AdapterID, StepExecutionID: r.StepExecutionID, Reason: r.Reason, OccurredAt: r.OccurredAt}
	}
	return out, nil
}

// LatestEventID is the id of the tenant's newest telemetry outbox event (0
// when there is none): where a live feed that skips the history starts.
func (s *Store) LatestEventID(ctx context.Context, tenant string) (_ int64, err error) {
	defer wrapErr(&err, "latest event id")
	return s.q.LatestOutboxID(ctx, tenant)
}
