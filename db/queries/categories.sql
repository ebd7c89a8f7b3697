-- name: SetInboundCategory :exec
UPDATE inbound_messages SET category = @category, category_evidence = @evidence, category_source = @source,
       category_updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id;

-- name: SetEnrollmentCategory :exec
-- The enrollment's category is that of its latest human reply.
UPDATE enrollments e SET reply_category = @category, updated_at = @now::timestamptz
WHERE e.tenant_key = @tenant_key AND e.id = @id
  AND NOT EXISTS (SELECT 1 FROM inbound_messages i WHERE i.tenant_key = e.tenant_key AND i.enrollment_id = e.id
                  AND i.intent = 'reply' AND i.id <> @inbound_id AND i.received_at > @received_at::timestamptz);

-- name: ExecutionStep :one
SELECT step_id, variant FROM step_executions WHERE tenant_key = $1 AND id = $2;

-- name: GetInbound :one
SELECT i.id, i.provider, i.message_id, i.adapter_id, i.from_address, i.subject, i.intent, i.correlation,
       i.step_execution_id, i.enrollment_id, i.received_at, i.created_at, i.category, i.category_evidence,
       i.category_source, i.category_updated_at, x.variant, x.step_id
FROM inbound_messages i
LEFT JOIN step_executions x ON x.tenant_key = i.tenant_key AND x.id = i.step_execution_id
WHERE i.tenant_key = $1 AND i.id = $2;

-- name: LockInbound :one
SELECT id, intent, category, enrollment_id, step_execution_id, received_at FROM inbound_messages
WHERE tenant_key = $1 AND id = $2 FOR UPDATE;

-- name: EnrollmentInbound :many
-- An enrollment's inbound messages, oldest first (the dashboard's timeline).
SELECT i.id, i.intent, i.category, i.category_evidence, i.category_source, i.received_at, i.step_execution_id
FROM inbound_messages i
WHERE i.tenant_key = $1 AND i.enrollment_id = $2
ORDER BY i.received_at, i.id
LIMIT 200;
