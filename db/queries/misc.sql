-- name: InsertAudit :exec
INSERT INTO audit_log (tenant_key, id, entity_type, entity_id, action, data, actor, created_at)
VALUES (@tenant_key, @id, @entity_type, @entity_id, @action, @data, @actor, @now);

-- name: ListAudit :many
SELECT * FROM audit_log WHERE tenant_key = $1 AND entity_type = $2 AND entity_id = $3 ORDER BY id;

-- name: ClaimIdempotencyKey :one
INSERT INTO idempotency_keys (tenant_key, key, method, path, request_hash)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_key, key) DO NOTHING
RETURNING created_at;

-- name: GetIdempotencyKey :one
SELECT * FROM idempotency_keys WHERE tenant_key = $1 AND key = $2;

-- name: CompleteIdempotencyKey :exec
UPDATE idempotency_keys SET status = @status, content_type = @content_type, response_body = @response_body
WHERE tenant_key = @tenant_key AND key = @key;

-- name: ReleaseIdempotencyKey :exec
DELETE FROM idempotency_keys WHERE tenant_key = $1 AND key = $2 AND status IS NULL;

-- name: DeleteExpiredIdempotencyKeys :execrows
DELETE FROM idempotency_keys WHERE tenant_key = $1 AND created_at < $2;

-- name: CountEnrollmentsByState :many
SELECT state, count(*)::bigint AS n FROM enrollments WHERE tenant_key = $1 GROUP BY state;

-- name: CountDueExecutions :one
SELECT count(*)::bigint AS n, coalesce(min(scheduled_for), sqlc.arg(due_by)::timestamptz)::timestamptz AS oldest
FROM step_executions
WHERE tenant_key = sqlc.arg(tenant_key) AND state = 'scheduled' AND scheduled_for <= sqlc.arg(due_by)::timestamptz;

-- name: CountAdaptersByHealth :many
SELECT health_state, count(*)::bigint AS n FROM adapters
WHERE tenant_key = $1 AND deleted_at IS NULL GROUP BY health_state;
