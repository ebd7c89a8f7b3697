-- name: GetInboundByMessageID :one
SELECT * FROM inbound_messages
WHERE tenant_key = @tenant_key AND provider = @provider AND message_id = @message_id;

-- name: InsertInbound :one
INSERT INTO inbound_messages (tenant_key, id, provider, message_id, adapter_id, in_reply_to, refs, from_address,
                              subject, body_text, headers, intent, intent_data, correlation, step_execution_id,
                              enrollment_id, received_at, result, created_at)
VALUES (@tenant_key, @id, @provider, @message_id, sqlc.narg(adapter_id), sqlc.narg(in_reply_to), @refs, @from_address,
        sqlc.narg(subject), sqlc.narg(body_text), @headers, @intent, @intent_data, @correlation, sqlc.narg(step_execution_id),
        sqlc.narg(enrollment_id), @received_at, @result, @now)
ON CONFLICT (tenant_key, provider, message_id) DO NOTHING
RETURNING id;

-- name: FindSentByMessageID :one
-- Our Message-IDs are stored with angle brackets; provider ids as given.
SELECT id, enrollment_id, adapter_id FROM step_executions
WHERE tenant_key = @tenant_key
  AND (out_message_id = @bracketed::text OR provider_message_id = @bare::text OR provider_message_id = @bracketed::text)
ORDER BY created_at
LIMIT 1;

-- name: IngestEnrollment :one
SELECT e.id, e.email, e.state, e.timezone, e.sequence_version_id, e.adapter_id,
       v.stop_on_reply, v.stop_company_on_reply, v.window_timezone
FROM enrollments e
JOIN sequence_versions v ON v.tenant_key = e.tenant_key AND v.id = e.sequence_version_id
WHERE e.tenant_key = @tenant_key AND e.id = @id
FOR UPDATE OF e;

-- name: RescheduleOOO :many
-- Pending executions move to the return time, never earlier than planned;
-- a claim taken before the move is dropped.
UPDATE step_executions SET scheduled_for = greatest(scheduled_for, @return_at::timestamptz), claimed_until = NULL,
       updated_at = @now
WHERE tenant_key = @tenant_key AND enrollment_id = @enrollment_id AND state = 'scheduled'
RETURNING id, scheduled_for;

-- name: FenceEnrollment :exec
-- Follow-ups recorded from now on are not due before not_before (a send in
-- flight when an out-of-office reply arrives schedules its next step no
-- earlier than the return).
UPDATE enrollments SET not_before = greatest(coalesce(not_before, @not_before::timestamptz), @not_before::timestamptz), updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id;

-- name: CompanyEnrollments :many
SELECT id FROM enrollments
WHERE tenant_key = @tenant_key AND split_part(email_norm, '@', 2) = @domain::text AND state IN ('active', 'paused')
  AND id <> @except_id
ORDER BY id
FOR UPDATE;

-- name: AdaptersByFromAddress :many
-- The inbound SMTP listener learns the tenant from the recipient address:
-- the one lookup that is not tenant-scoped, because it decides the tenant.
SELECT tenant_key, id FROM adapters
WHERE lower(from_address) = lower(@address::text) AND deleted_at IS NULL
ORDER BY tenant_key, id
LIMIT 10;

-- name: AdapterExists :one
SELECT EXISTS (SELECT 1 FROM adapters WHERE tenant_key = @tenant_key AND id = @id AND deleted_at IS NULL);

-- name: FailSentForSender :execrows
-- A sent execution whose delivery report says the sender failed (the
-- message never reached the prospect): failed for the sender, retryable.
UPDATE step_executions SET state = 'failed', error_code = 'sender_rejected', error = @error, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND state = 'sent';

-- name: RetargetPending :execrows
-- The enrollment's pending execution becomes the next attempt window of
-- the step whose delivery the sender failed (same sender, same thread):
-- resuming the enrollment sends that step again before the sequence goes
-- on.
UPDATE step_executions x SET step_id = b.step_id, attempt_window = b.attempt_window + 1, followup = b.followup,
       adapter_id = b.adapter_id, out_message_id = NULL, variant = b.variant, scheduled_for = @now::timestamptz, updated_at = @now
FROM step_executions b
WHERE x.tenant_key = @tenant_key AND x.enrollment_id = @enrollment_id AND x.state = 'scheduled'
  AND b.tenant_key = @tenant_key AND b.id = @failed_id;
