package db

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// recordOnCitus is the record of MarkSentBatch on Citus. RecordSent's
// inserts are INSERT … SELECT over the results of its other steps, and
// Citus ships those results to every worker, so each record would commit
// on all of them (docs/scaling.md#writing-queries-that-shard). Here the updates
// and reads run as one router statement per tenant (RecordSentSteps, with
// the enrollments' lock), and what it reports becomes multi-row INSERT …
// VALUES of the sent events and the next steps, queued with the outbox
// rows and COMMIT; the outbox rows are the events', written by the seam.
// The effects are RecordSent's: TestCitusEndToEnd and the smoke test drive
// them, TestCitusTwoPhaseCommits counts the commits.
func (s *Store) recordOnCitus(ctx context.Context, p *pipe, sent []Sent, tenants []string, byTenant map[string]*dbsqlc.RecordSentParams,
	enrollments map[string][]uuid.UUID, index map[uuid.UUID]int, now time.Time, ok []bool, wake map[string]bool) ([]event, error) {
	steps := make([][]dbsqlc.RecordSentStepsRow, len(tenants))
	b := &pgx.Batch{}
	for k, t := range tenants {
		rp := byTenant[t]
		// Lock order: the enrollments, then their executions.
		queueExec(b, func(q *dbsqlc.Queries) error {
			_, err := q.LockEnrollments(ctx, dbsqlc.LockEnrollmentsParams{TenantKey: t, Ids: enrollments[t]})
			return err
		})
		queueRows(b, &steps[k], func(q *dbsqlc.Queries) error {
			_, err := q.RecordSentSteps(ctx, dbsqlc.RecordSentStepsParams{TenantKey: t, Now: now, Ids: rp.Ids,
				LeaseExpiresAts: rp.LeaseExpiresAts, ProviderMessageIds: rp.ProviderMessageIds, Subjects: rp.Subjects,
				SequenceVersionIds: rp.SequenceVersionIds, GapStarts: rp.GapStarts, GapNextSendAts: rp.GapNextSendAts,
				Positions: rp.Positions})
			return err
		})
	}
	if err := p.run(ctx, b); err != nil {
		return nil, err
	}
	var evs []event
	for k, t := range tenants {
		rp := byTenant[t]
		rows := make(map[uuid.UUID]dbsqlc.RecordSentStepsRow, len(steps[k]))
		for _, r := range steps[k] {
			rows[r.ID] = r
		}
		var sentRows, nextRows [][]any
		for j, id := range rp.Ids { // the group's order: the events' order
			row, found := rows[id]
			if !found {
				continue // its lease was lost
			}
			i := index[id]
			job := sent[i].Job
			ok[i] = true
			data := map[string]any{"out_message_id": job.MessageID, "attempt": job.Attempt}
			if job.Variant != "" {
				data["variant"] = job.Variant
			}
			js, err := json.Marshal(data)
			if err != nil {
				return nil, err
			}
			sentRows = append(sentRows, []any{rp.EventIds[j], row.AdapterID, row.ID, row.EnrollmentID, job.SequenceVersionID, string(js)})
			if row.Live && row.NextStepID != nil {
				// Due its delay after now, never before the enrollment's
				// not_before; on the step's own adapter when it names one.
				adapter := row.EnrollmentAdapterID
				if row.NextAdapterOverrideID != nil {
					adapter = row.NextAdapterOverrideID
				}
				at := now.Add(time.Duration(derefInt64(row.NextDelaySeconds)) * time.Second)
				if row.NotBefore != nil && row.NotBefore.After(at) {
					at = *row.NotBefore
				}
				nextRows = append(nextRows, []any{rp.NextIds[j], row.EnrollmentID, *row.NextStepID, adapter, at})
				wake[t] = wake[t] || !at.After(now)
			}
			evs = append(evs, job.diagnosticEvents()...)
			evs = append(evs, evSent(job, sent[i].ProviderID))
			if row.Completed {
				evs = append(evs, evEnrollment("dripdrop.enrollment.completed", t, row.EnrollmentID, "last_step_sent"))
			}
		}
		if len(sentRows) > 0 {
			sql, args := valuesInsert(
				"INSERT INTO message_events (tenant_key, id, type, adapter_id, step_execution_id, enrollment_id, sequence_version_id, data, occurred_at) VALUES ",
				"($1, ?::uuid, 'sent', ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::jsonb, $2)", " ON CONFLICT DO NOTHING", sentRows, t, now)
			p.tail.Queue(sql, args...)
		}
		if len(nextRows) > 0 {
			sql, args := valuesInsert(
				"INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, followup, attempt_window, scheduled_for, created_at, updated_at) VALUES ",
				"($1, ?::uuid, ?::uuid, ?::uuid, ?::uuid, true, 0, ?::timestamptz, $2, $2)", "", nextRows, t, now)
			p.tail.Queue(sql, args...)
		}
	}
	return evs, nil
}

func derefInt64(v *int64) int64 {
	if v == nil {
		return 0
	}
	return *v
}

// valuesInsert is a multi-row INSERT … VALUES: head, then row once per
// element of rows, its ? placeholders numbered in turn after the shared
// arguments ($1 … $len(shared), which every row may name), then tail. It
// is the insert Citus sends to one worker: an INSERT … SELECT whose rows
// come from parameters is collected on the coordinator and makes every
// worker a participant of the transaction.
func valuesInsert(head, row, tail string, rows [][]any, shared ...any) (string, []any) {
	var sb strings.Builder
	sb.WriteString(head)
	args := append(make([]any, 0, len(shared)+len(rows)*strings.Count(row, "?")), shared...)
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		parts := strings.Split(row, "?")
		if len(parts)-1 != len(r) {
			panic(fmt.Sprintf("db: a VALUES row of %d placeholders given %d values", len(parts)-1, len(r)))
		}
		sb.WriteString(parts[0])
		for k, v := range r {
			args = append(args, v)
			fmt.Fprintf(&sb, "$%d", len(args))
			sb.WriteString(parts[k+1])
		}
	}
	sb.WriteString(tail)
	return sb.String(), args
}
