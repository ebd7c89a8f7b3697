-- name: HealthTransition :one
-- A health state change. healthy_since moves only on entry into
-- active/ramping from probing/resting (graduation keeps the window); leaving
-- resting lifts the block the rest put on next_send_at.
UPDATE adapters SET health_state = @health_state::text, health_since = @now::timestamptz,
       healthy_since = CASE WHEN @health_state::text IN ('active', 'ramping') AND health_state NOT IN ('active', 'ramping')
                            THEN @now::timestamptz ELSE healthy_since END,
       resting_until = sqlc.narg(resting_until)::timestamptz, ramp_started_at = sqlc.narg(ramp_started_at)::timestamptz,
       rest_streak = @rest_streak::int, rest_backoff_seconds = @rest_backoff_seconds::int,
       next_send_at = CASE WHEN health_state = 'resting' AND @health_state::text <> 'resting' AND next_send_at > @now::timestamptz
                           THEN NULL ELSE next_send_at END,
       auth_failures = CASE WHEN @health_state::text = 'resting' THEN 0 ELSE auth_failures END,
       updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: SetHealthFields :one
-- An external signal that keeps the state: score and resting_until only.
UPDATE adapters SET health_score = sqlc.narg(health_score)::float8, resting_until = sqlc.narg(resting_until)::timestamptz,
       updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: ResetRestBackoff :exec
UPDATE adapters SET rest_streak = 0, rest_backoff_seconds = @rest_backoff_seconds::int, updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id;

-- name: HealthCounts :many
-- Sends, hard bounces and complaints of each adapter since its own window
-- start (the rules choose the start).
SELECT w.adapter_id::uuid AS adapter_id,
       count(m.id) FILTER (WHERE m.type = 'sent')::int AS sent,
       count(m.id) FILTER (WHERE m.type = 'bounced' AND coalesce(m.subtype, 'hard') = 'hard')::int AS bounced,
       count(m.id) FILTER (WHERE m.type = 'complained')::int AS complained
FROM (SELECT unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@since::timestamptz[]) AS since) w
LEFT JOIN message_events m ON m.tenant_key = @tenant_key AND m.adapter_id = w.adapter_id
     AND m.occurred_at >= w.since AND m.type IN ('sent', 'bounced', 'complained')
GROUP BY w.adapter_id;

-- name: HealthSweepAdapters :many
SELECT * FROM adapters WHERE tenant_key = @tenant_key AND deleted_at IS NULL ORDER BY id;

-- name: HealthAudit :many
-- The last 50 health entries of an adapter, newest first.
SELECT * FROM audit_log
WHERE tenant_key = @tenant_key AND entity_type = 'adapter' AND entity_id = @entity_id
  AND action IN ('health_state_changed', 'health_backoff_reset', 'health_signal')
ORDER BY created_at DESC, id DESC
LIMIT 50;

-- name: RequeueAfterAdapterFailure :execrows
-- The sender failed, not the recipient: back to scheduled without using an
-- attempt (the reservation counted one), fenced by the lease.
UPDATE step_executions SET state = 'scheduled', attempt = greatest(attempt - 1, 0), lease_expires_at = NULL, reserved_day = NULL,
       claimed_until = NULL, error_code = @error_code, error = @error, defer_reason = 'adapter_error',
       defer_until = @defer_until::timestamptz, updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id AND state = 'sending' AND lease_expires_at = @lease_expires_at::timestamptz;

-- name: SetAdapterFailures :exec
UPDATE adapters SET adapter_failures = @adapter_failures::int, auth_failures = @auth_failures::int,
       next_send_at = sqlc.narg(next_send_at)::timestamptz
WHERE tenant_key = @tenant_key AND id = @id;

-- name: ResetAdapterFailures :exec
UPDATE adapters SET adapter_failures = 0, auth_failures = 0
WHERE tenant_key = @tenant_key AND id = @id AND (adapter_failures > 0 OR auth_failures > 0);
