-- Read models of the operator dashboard (docs/dashboard.md). Every query is tenant-scoped.

-- name: AdapterDailyEvents :many
-- Sends, hard bounces and complaints of one adapter per local day since @since.
SELECT (occurred_at AT TIME ZONE @tz::text)::date AS day,
       count(*) FILTER (WHERE type = 'sent')::int AS sent,
       count(*) FILTER (WHERE type = 'bounced' AND coalesce(subtype, 'hard') = 'hard')::int AS bounced,
       count(*) FILTER (WHERE type = 'complained')::int AS complained
FROM message_events
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND occurred_at >= @since
  AND type IN ('sent', 'bounced', 'complained')
GROUP BY 1
ORDER BY 1;

-- name: TenantEventCounts :many
-- Message events of a tenant since @since by type and reason (reason only for deferrals).
SELECT type, coalesce(CASE WHEN type = 'deferred' THEN reason END, '')::text AS reason, count(*)::int AS n
FROM message_events
WHERE tenant_key = @tenant_key AND occurred_at >= @since
GROUP BY 1, 2
ORDER BY 1, 3 DESC;

-- name: TenantDueBacklog :one
-- Scheduled executions of live enrollments that are due now.
SELECT count(*)::int FROM step_executions x
JOIN enrollments e ON e.tenant_key = x.tenant_key AND e.id = x.enrollment_id
WHERE x.tenant_key = @tenant_key AND x.state = 'scheduled' AND x.scheduled_for <= @now AND e.state = 'active';

-- name: TenantPinCounts :many
-- Active and paused enrollments pinned to each adapter.
SELECT adapter_id, count(*)::int AS n FROM enrollments
WHERE tenant_key = @tenant_key AND state IN ('active', 'paused')
GROUP BY adapter_id;

-- name: EnrollmentMessageEvents :many
-- Message events of one enrollment's executions, oldest first.
SELECT m.id, m.type, m.subtype, m.adapter_id, m.step_execution_id, m.reason, m.occurred_at
FROM message_events m
WHERE m.tenant_key = @tenant_key
  AND m.step_execution_id IN (SELECT x.id FROM step_executions x WHERE x.tenant_key = @tenant_key AND x.enrollment_id = @enrollment_id)
ORDER BY m.occurred_at, m.id
LIMIT 500;

-- name: LatestOutboxID :one
-- The newest telemetry outbox id of a tenant (0 when none).
SELECT coalesce(max(id), 0)::bigint FROM telemetry_outbox WHERE tenant_key = @tenant_key;
