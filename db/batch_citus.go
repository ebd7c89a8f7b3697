package db

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// maxParams is how many parameters one statement may carry (the protocol
// counts them in 16 bits).
const maxParams = 65535

// bulkEnrollOnCitus is BulkEnroll on Citus. BulkEnroll inserts from
// parameter arrays through INSERT CTEs, which Citus collects on the
// coordinator and ships to every worker, so each batch would commit on all
// of them (docs/scaling.md#writing-queries-that-shard). Here the
// enrollments go in multi-row INSERT … VALUES statements on the tenant's
// worker (a contact already live in the sequence is skipped, as there),
// sent in one round trip; the first executions of those inserted follow
// as VALUES with the outbox rows and COMMIT (p.tail), and the
// adapter_pinned events are left to the outbox seam. It returns the column
// positions of the rows inserted.
func (s *Store) bulkEnrollOnCitus(ctx context.Context, p *pipe, cols *batchColumns) ([]int, error) {
	pos := make(map[uuid.UUID]int, len(cols.Ids))
	rows := make([][]any, len(cols.Ids))
	for i, id := range cols.Ids {
		pos[id] = i
		rows[i] = []any{id, cols.Emails[i], nullIfEmpty(cols.FirstNames[i]), nullIfEmpty(cols.LastNames[i]), nullIfEmpty(cols.Companies[i]),
			nullIfEmpty(cols.Timezones[i]), cols.VarsList[i], cols.AdapterIds[i], nullIfEmpty(cols.RecipientProviders[i])}
	}
	const shared = 4 // tenant, sequence, version, now
	var inserted []int
	b := &pgx.Batch{}
	for _, chunk := range valuesChunks(rows, shared) {
		sql, args := valuesInsert(
			"INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, email, first_name, last_name, company, timezone, vars, adapter_id, recipient_provider, created_at, updated_at) VALUES ",
			"($1, ?::uuid, $2, $3, ?, ?, ?, ?, ?, ?::jsonb, ?::uuid, ?, $4, $4)",
			" ON CONFLICT (tenant_key, sequence_id, email_norm) WHERE state IN ('active', 'paused') DO NOTHING RETURNING id",
			chunk, cols.TenantKey, cols.SequenceID, cols.SequenceVersionID, cols.Now)
		b.Queue(sql, args...).Query(func(r pgx.Rows) error {
			var id uuid.UUID
			_, err := pgx.ForEachRow(r, []any{&id}, func() error {
				inserted = append(inserted, pos[id])
				return nil
			})
			return err
		})
	}
	if err := p.run(ctx, b); err != nil {
		return nil, err
	}
	exe := make([][]any, len(inserted))
	for k, i := range inserted {
		adapter := cols.AdapterIds[i]
		if cols.OverrideAdapterID != nil {
			adapter = *cols.OverrideAdapterID
		}
		exe[k] = []any{cols.ExecutionIds[i], cols.Ids[i], adapter}
	}
	for _, chunk := range valuesChunks(exe, shared) {
		sql, args := valuesInsert(
			"INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, scheduled_for, created_at, updated_at) VALUES ",
			"($1, ?::uuid, ?::uuid, $2, ?::uuid, $3, $4, $4)", "", chunk, cols.TenantKey, cols.StepID, cols.ScheduledFor, cols.Now)
		p.tail.Queue(sql, args...)
	}
	return inserted, nil
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// valuesChunks splits the rows of a VALUES insert so that no statement
// carries more than maxParams parameters (shared ones included).
func valuesChunks(rows [][]any, shared int) [][][]any {
	if len(rows) == 0 {
		return nil
	}
	per := max((maxParams-shared)/max(len(rows[0]), 1), 1)
	var out [][][]any
	for len(rows) > per {
		out = append(out, rows[:per])
		rows = rows[per:]
	}
	return append(out, rows)
}
