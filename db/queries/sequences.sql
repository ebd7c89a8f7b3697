-- name: CreateSequence :one
INSERT INTO sequences (tenant_key, id, key, name, created_at, updated_at)
VALUES (@tenant_key, @id, @key, @name, @now, @now)
ON CONFLICT (tenant_key, key) DO NOTHING
RETURNING *;

-- name: GetSequence :one
SELECT * FROM sequences WHERE tenant_key = $1 AND id = $2;

-- name: GetSequenceForUpdate :one
SELECT * FROM sequences WHERE tenant_key = $1 AND id = $2 FOR UPDATE;

-- name: GetSequenceByKey :one
SELECT * FROM sequences WHERE tenant_key = $1 AND key = $2;

-- name: ListSequences :many
SELECT * FROM sequences
WHERE tenant_key = @tenant_key AND id > @after
ORDER BY id
LIMIT @lim;

-- name: NextSequenceVersion :one
SELECT (coalesce(max(version), 0) + 1)::int FROM sequence_versions WHERE tenant_key = @tenant_key AND sequence_id = @sequence_id;

-- name: CreateSequenceVersion :one
-- The version number comes from NextSequenceVersion, under the sequence's
-- lock (a subquery inside INSERT … VALUES is refused by Citus).
INSERT INTO sequence_versions (
    tenant_key, id, sequence_id, version, state, mode, pool_id, window_days, window_start, window_end,
    window_timezone, window_holidays, stop_on_reply, stop_company_on_reply, list_unsubscribe, verify_recipients, activated_at, created_at
) VALUES (
    @tenant_key, @id, @sequence_id, @version,
    @state, @mode, @pool_id, @window_days, @window_start, @window_end, @window_timezone, @window_holidays, @stop_on_reply,
    @stop_company_on_reply, @list_unsubscribe, @verify_recipients, @activated_at, @now
)
RETURNING *;

-- name: ListSequenceVersions :many
SELECT * FROM sequence_versions WHERE tenant_key = $1 AND sequence_id = $2 ORDER BY version;

-- name: GetSequenceVersion :one
SELECT * FROM sequence_versions WHERE tenant_key = $1 AND sequence_id = $2 AND version = $3;

-- name: GetSequenceVersionForUpdate :one
SELECT * FROM sequence_versions WHERE tenant_key = $1 AND sequence_id = $2 AND version = $3 FOR UPDATE;

-- name: UpdateDraftVersion :one
UPDATE sequence_versions SET
    pool_id = @pool_id, window_days = @window_days, window_start = @window_start, window_end = @window_end,
    window_timezone = @window_timezone, window_holidays = @window_holidays, stop_on_reply = @stop_on_reply, stop_company_on_reply = @stop_company_on_reply,
    list_unsubscribe = @list_unsubscribe, verify_recipients = @verify_recipients
WHERE tenant_key = @tenant_key AND id = @id AND state = 'draft'
RETURNING *;

-- name: ArchiveActiveVersions :exec
UPDATE sequence_versions SET state = 'archived'
WHERE tenant_key = $1 AND sequence_id = $2 AND state = 'active';

-- name: ActivateVersion :one
UPDATE sequence_versions SET state = 'active', activated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: CreateStep :one
INSERT INTO steps (
    tenant_key, id, sequence_version_id, key, position, delay_seconds, subject, body_text, body_html,
    spintax, adapter_override_id, variants, auto_winner
) VALUES (
    @tenant_key, @id, @sequence_version_id, @key, @position, @delay_seconds, @subject, @body_text, @body_html,
    @spintax, @adapter_override_id, @variants, @auto_winner
)
RETURNING *;

-- name: DeleteSteps :exec
DELETE FROM steps WHERE tenant_key = $1 AND sequence_version_id = $2;

-- name: ListStepsForVersions :many
SELECT * FROM steps
WHERE tenant_key = @tenant_key AND sequence_version_id = ANY(@version_ids::uuid[])
ORDER BY sequence_version_id, position;

-- name: UpsertBudget :one
INSERT INTO budgets (tenant_key, adapter_id, sequence_version_id, max_share_pct, updated_at)
VALUES (@tenant_key, @adapter_id, @sequence_version_id, @max_share_pct, @now)
ON CONFLICT (tenant_key, adapter_id, sequence_version_id)
DO UPDATE SET max_share_pct = EXCLUDED.max_share_pct, updated_at = EXCLUDED.updated_at
RETURNING *;

-- name: ListBudgetsForVersions :many
SELECT * FROM budgets
WHERE tenant_key = @tenant_key AND sequence_version_id = ANY(@version_ids::uuid[])
ORDER BY sequence_version_id, adapter_id;
