package db

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxParams is how many parameters one statement may carry (the protocol
// counts them in 16 bits).
const maxParams = 65535

// bulkEnrollOnCitus is BulkEnroll on Citus. BulkEnroll inserts from
// parameter arrays through INSERT CTEs, which Citus collects on the
// coordinator and ships to every worker, so each batch would commit on all
// of them (docs/scaling.md#writing-queries-that-shard). Here the rows are
// copied (COPY, which Citus routes to the tenant's shards on its worker):
// the enrollments, their first executions and their adapter_pinned outbox
// rows, pending when the tenant has an active subscription, else no_match.
// COPY has no ON CONFLICT: the caller has skipped the contacts already live
// in the sequence under the pool's lock (markLive), which every
// enrollment into the sequence's pool takes, so a conflict means an
// enrollment through another pool (a version activated meanwhile) and the
// batch is refused whole with nothing written. It returns whether the
// outbox rows are pending.
func (s *Store) bulkEnrollOnCitus(ctx context.Context, p *pipe, q *dbsqlc.Queries, cols *batchColumns) (pending bool, err error) {
	subs, err := q.ActiveSubscriptionFilters(ctx, cols.TenantKey)
	if err != nil {
		return false, err
	}
	pending = len(subs) > 0
	n := len(cols.Ids)
	t, now := cols.TenantKey, cols.Now
	enr := make([][]any, n)
	exe := make([][]any, n)
	outbox := make([][]any, n)
	status := "no_match"
	if pending {
		status = "pending"
	}
	for i, id := range cols.Ids {
		enr[i] = []any{t, id, cols.SequenceID, cols.SequenceVersionID, cols.Emails[i], nullIfEmpty(cols.FirstNames[i]), nullIfEmpty(cols.LastNames[i]),
			nullIfEmpty(cols.Companies[i]), nullIfEmpty(cols.Timezones[i]), cols.VarsList[i], cols.AdapterIds[i], nullIfEmpty(cols.RecipientProviders[i]), now, now}
		adapter := cols.AdapterIds[i]
		if cols.OverrideAdapterID != nil {
			adapter = *cols.OverrideAdapterID
		}
		exe[i] = []any{t, cols.ExecutionIds[i], id, cols.StepID, adapter, cols.ScheduledFor, now, now}
		meta, err := json.Marshal(evAdapterPinned(t, id, cols.SequenceVersionID, cols.AdapterIds[i]).metadata)
		if err != nil {
			return false, err
		}
		outbox[i] = []any{t, "dripdrop.dispatch.adapter_pinned", meta, []byte(countJSON), now, status}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"enrollments", []string{"tenant_key", "id", "sequence_id", "sequence_version_id", "email", "first_name", "last_name", "company",
			"timezone", "vars", "adapter_id", "recipient_provider", "created_at", "updated_at"}, enr},
		{"step_executions", []string{"tenant_key", "id", "enrollment_id", "step_id", "adapter_id", "scheduled_for", "created_at", "updated_at"}, exe},
		{"telemetry_outbox", []string{"tenant_key", "name", "metadata", "measurements", "occurred_at", "status"}, outbox},
	} {
		if _, err := p.c.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			p.failed = true
			var pe *pgconn.PgError
			// Citus relays a worker's unique violation during COPY as an
			// internal error (XX000) naming the shard's index.
			if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "XX000") && strings.Contains(pe.Message, "enrollments_live_contact_idx") {
				return false, &dripdrop.Error{Code: dripdrop.ECodeConflict, Field: "contacts",
					Message: "a contact of this batch was enrolled into the sequence at the same time; send the batch again (contacts already enrolled are reported existing)"}
			}
			return false, err
		}
	}
	return pending, nil
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
