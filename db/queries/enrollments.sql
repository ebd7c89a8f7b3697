-- name: GetActiveVersionBySequenceKey :one
SELECT s.id AS sequence_id, s.key AS sequence_key, v.*
FROM sequences s
JOIN sequence_versions v ON v.tenant_key = s.tenant_key AND v.sequence_id = s.id AND v.state = 'active'
WHERE s.tenant_key = $1 AND s.key = $2;

-- name: GetFirstStep :one
SELECT * FROM steps WHERE tenant_key = $1 AND sequence_version_id = $2 ORDER BY position LIMIT 1;

-- name: LockPool :one
SELECT * FROM pools WHERE tenant_key = $1 AND id = $2 FOR UPDATE;

-- name: PoolCandidates :many
-- The pool's members with their adapters and counters, each reached by key
-- from its member (lateral, OFFSET 0): with statistics older than a bulk
-- load of adapters, a free join matched every member against every adapter.
-- Every table reference names the tenant (a router query on Citus).
SELECT m.id AS member_id, m.adapter_id, m.weight, m.active AS member_active,
       a.active AS adapter_active, a.deleted_at, a.health_state, a.health_score, a.resting_until,
       a.daily_cap, a.ramp_floor, a.ramp_increment, a.ramp_started_at, a.timezone, a.mailbox_provider,
       coalesce(c.counter, 0)::bigint AS counter
FROM pool_members m
CROSS JOIN LATERAL (
    SELECT ad.* FROM adapters ad WHERE ad.tenant_key = @tenant_key AND ad.id = m.adapter_id OFFSET 0
) a
LEFT JOIN LATERAL (
    SELECT wc.counter FROM wdrr_counters wc WHERE wc.tenant_key = @tenant_key AND wc.pool_id = m.pool_id
       AND wc.sequence_version_id = @sequence_version_id AND wc.adapter_id = m.adapter_id OFFSET 0
) c ON true
WHERE m.tenant_key = @tenant_key AND m.pool_id = @pool_id
ORDER BY m.id;

-- name: SentOnDay :many
SELECT adapter_id, day, sum(sent)::int AS sent
FROM adapter_daily_usage
WHERE tenant_key = @tenant_key AND adapter_id = ANY(@adapter_ids::uuid[]) AND day = ANY(@days::date[])
GROUP BY adapter_id, day;

-- name: SetWDRRCounter :exec
INSERT INTO wdrr_counters (tenant_key, pool_id, sequence_version_id, adapter_id, counter)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (tenant_key, pool_id, sequence_version_id, adapter_id) DO UPDATE SET counter = EXCLUDED.counter;

-- name: LivePinCounts :many
SELECT adapter_id, count(*)::bigint AS pins FROM enrollments
WHERE tenant_key = @tenant_key AND adapter_id = ANY(@adapter_ids::uuid[]) AND state IN ('active', 'paused')
GROUP BY adapter_id;

-- name: InsertEnrollment :one
INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, email, first_name, last_name, company,
                         timezone, vars, adapter_id, recipient_provider, created_at, updated_at)
VALUES (@tenant_key, @id, @sequence_id, @sequence_version_id, @email, @first_name, @last_name, @company,
        @timezone, @vars, @adapter_id, @recipient_provider, @now, @now)
ON CONFLICT (tenant_key, sequence_id, email_norm) WHERE state IN ('active', 'paused') DO NOTHING
RETURNING *;

-- name: GetLiveEnrollmentByEmail :one
SELECT * FROM enrollments
WHERE tenant_key = $1 AND sequence_id = $2 AND email_norm = lower(@email::text) AND state IN ('active', 'paused');

-- name: LiveEnrollmentsByEmails :many
SELECT id, email_norm FROM enrollments
WHERE tenant_key = $1 AND sequence_id = $2 AND email_norm = ANY(@emails::text[]) AND state IN ('active', 'paused');

-- name: InsertExecution :one
INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, followup, attempt_window, scheduled_for, created_at, updated_at)
VALUES (@tenant_key, @id, @enrollment_id, @step_id, @adapter_id, @followup, @attempt_window, @scheduled_for, @now, @now)
RETURNING *;

-- name: BulkEnroll :many
-- A batch import's write, one statement: the enrollments (a contact already
-- live in the sequence is skipped; the answer lists the positions, from 0,
-- of the rows inserted), the first
-- execution of each one inserted, and its adapter_pinned outbox row, built
-- here from the inserted row (its metadata is evAdapterPinned's, db/events.go;
-- TestBulkEnrollOutboxRowsMatchTheEvents compares them) and written as
-- pending when the tenant has an active subscription, else as no_match
-- (as the outbox seam writes every event, db/outbox.go). Every input array
-- has one element per row; a new column is one more array here and in the
-- enrollments insert, and one more column of the copy on Citus
-- (db/batch_citus.go).
WITH u AS MATERIALIZED (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@execution_ids::uuid[]) AS execution_id, unnest(@emails::text[]) AS email,
           unnest(@first_names::text[]) AS first_name, unnest(@last_names::text[]) AS last_name,
           unnest(@companies::text[]) AS company, unnest(@timezones::text[]) AS timezone,
           unnest(@vars_list::text[]) AS vars, unnest(@adapter_ids::uuid[]) AS adapter_id,
           unnest(@recipient_providers::text[]) AS recipient_provider,
           generate_series(0, cardinality(@ids::uuid[]) - 1) AS pos
), enr AS (
    INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, email, first_name, last_name, company,
                             timezone, vars, adapter_id, recipient_provider, created_at, updated_at)
    SELECT @tenant_key::text, u.id, @sequence_id::uuid, @sequence_version_id::uuid, u.email, nullif(u.first_name, ''),
           nullif(u.last_name, ''), nullif(u.company, ''), nullif(u.timezone, ''), u.vars::jsonb, u.adapter_id,
           nullif(u.recipient_provider, ''), @now::timestamptz, @now::timestamptz
    FROM u
    ON CONFLICT (tenant_key, sequence_id, email_norm) WHERE state IN ('active', 'paused') DO NOTHING
    RETURNING id, adapter_id
), exe AS (
    INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, scheduled_for, created_at, updated_at)
    SELECT @tenant_key::text, u.execution_id, enr.id, @step_id::uuid, coalesce(sqlc.narg(override_adapter_id)::uuid, enr.adapter_id),
           @scheduled_for::timestamptz, @now::timestamptz, @now::timestamptz
    FROM enr JOIN u ON u.id = enr.id
), sub AS (
    SELECT EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.tenant_key = @tenant_key::text AND w.active) AS pending
), ev AS (
    INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at, status)
    SELECT @tenant_key::text, 'dripdrop.dispatch.adapter_pinned', '{"count": 1}'::jsonb,
           jsonb_build_object('enrollment_id', enr.id, 'sequence_version_id', @sequence_version_id::uuid,
                              'adapter_id', enr.adapter_id, 'tenant_key', @tenant_key::text),
           @now::timestamptz, CASE WHEN sub.pending THEN 'pending' ELSE 'no_match' END
    FROM enr CROSS JOIN sub
)
SELECT u.pos::int AS pos, sub.pending FROM enr JOIN u ON u.id = enr.id CROSS JOIN sub;

-- name: SuppressedAmong :many
SELECT kind, value FROM suppressions
WHERE tenant_key = @tenant_key
  AND ((kind = 'email' AND value = ANY(@emails::text[])) OR (kind = 'domain' AND value = ANY(@domains::text[])));

-- name: GetEnrollment :one
SELECT * FROM enrollments WHERE tenant_key = $1 AND id = $2;

-- name: GetEnrollmentForUpdate :one
SELECT * FROM enrollments WHERE tenant_key = $1 AND id = $2 FOR UPDATE;

-- name: ListExecutions :many
SELECT x.*, s.key AS step_key, s.position
FROM step_executions x JOIN steps s ON s.tenant_key = x.tenant_key AND s.id = x.step_id
WHERE x.tenant_key = $1 AND x.enrollment_id = $2
ORDER BY s.position, x.attempt_window;

-- name: SetEnrollmentState :one
UPDATE enrollments SET state = @state, stop_reason = @stop_reason, pause_reason = @pause_reason,
       ended_at = CASE WHEN @state IN ('completed', 'stopped', 'cancelled') THEN @now::timestamptz ELSE ended_at END,
       updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: CancelPendingExecutions :execrows
UPDATE step_executions SET state = 'cancelled', updated_at = @now
WHERE tenant_key = @tenant_key AND enrollment_id = @enrollment_id AND state = 'scheduled';

-- name: RescheduleNotBefore :execrows
UPDATE step_executions SET scheduled_for = greatest(scheduled_for, @now::timestamptz), updated_at = @now
WHERE tenant_key = @tenant_key AND enrollment_id = @enrollment_id AND state = 'scheduled';

-- name: Repin :one
UPDATE enrollments SET adapter_id = @adapter_id, thread_no = thread_no + 1, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: RepinPendingExecutions :exec
-- Pending executions follow the pin, except steps with their own sender.
UPDATE step_executions x SET adapter_id = @adapter_id, updated_at = @now
FROM steps s
WHERE x.tenant_key = @tenant_key AND x.enrollment_id = @enrollment_id AND x.state = 'scheduled'
  AND s.tenant_key = x.tenant_key AND s.id = x.step_id AND s.adapter_override_id IS NULL;

-- name: LivePinnedEnrollments :many
SELECT e.*, v.pool_id FROM enrollments e
JOIN sequence_versions v ON v.tenant_key = e.tenant_key AND v.id = e.sequence_version_id
WHERE e.tenant_key = @tenant_key AND e.adapter_id = @adapter_id AND e.state IN ('active', 'paused')
ORDER BY e.id
FOR UPDATE OF e;

-- name: LiveEnrollmentsOfPool :many
SELECT e.* FROM enrollments e
JOIN sequence_versions v ON v.tenant_key = e.tenant_key AND v.id = e.sequence_version_id
WHERE e.tenant_key = @tenant_key AND v.pool_id = @pool_id AND e.state IN ('active', 'paused')
ORDER BY e.id
FOR UPDATE OF e;

-- name: DueRecoveries :many
SELECT * FROM adapters
WHERE tenant_key = @tenant_key AND health_state = 'resting' AND resting_until <= @now::timestamptz AND deleted_at IS NULL
  AND id = ANY(@ids::uuid[])
FOR UPDATE;

-- name: SearchEnrollments :many
SELECT e.*, s.key AS sequence_key
FROM enrollments e JOIN sequences s ON s.tenant_key = e.tenant_key AND s.id = e.sequence_id
WHERE e.tenant_key = @tenant_key
  AND (sqlc.narg(sequence_key)::text IS NULL OR s.key = sqlc.narg(sequence_key)::text)
  AND (sqlc.narg(state)::text IS NULL OR e.state = sqlc.narg(state)::text)
  AND (sqlc.narg(pause_reason)::text IS NULL OR e.pause_reason = sqlc.narg(pause_reason)::text)
  AND (sqlc.narg(stop_reason)::text IS NULL OR e.stop_reason = sqlc.narg(stop_reason)::text)
  AND (sqlc.narg(email)::text IS NULL OR e.email_norm = lower(sqlc.narg(email)::text))
  AND (sqlc.narg(adapter_id)::uuid IS NULL OR e.adapter_id = sqlc.narg(adapter_id)::uuid)
  AND e.id > @after
ORDER BY e.id
LIMIT @lim;

-- name: UpdateEnrollmentContact :one
UPDATE enrollments SET email = @email, first_name = @first_name, last_name = @last_name, company = @company,
       timezone = @timezone, vars = @vars, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: StatsEnrollments :many
SELECT sequence_version_id, state, coalesce(stop_reason, '')::text AS stop_reason, count(*)::int AS n
FROM enrollments
WHERE tenant_key = @tenant_key AND sequence_id = @sequence_id
GROUP BY sequence_version_id, state, stop_reason;

-- name: StatsSteps :many
SELECT st.sequence_version_id, st.id AS step_id, st.key, st.position,
       count(x.id) FILTER (WHERE x.state IN ('scheduled', 'sending'))::int AS scheduled,
       count(x.id) FILTER (WHERE x.state = 'sent')::int AS sent,
       count(x.id) FILTER (WHERE x.state = 'failed')::int AS failed
FROM steps st
JOIN sequence_versions v ON v.tenant_key = st.tenant_key AND v.id = st.sequence_version_id
LEFT JOIN step_executions x ON x.tenant_key = st.tenant_key AND x.step_id = st.id
WHERE st.tenant_key = @tenant_key AND v.sequence_id = @sequence_id
GROUP BY st.sequence_version_id, st.id, st.key, st.position
ORDER BY st.sequence_version_id, st.position;

-- name: StatsEvents :many
SELECT me.sequence_version_id, me.type, coalesce(me.subtype, '')::text AS subtype, count(*)::int AS n
FROM message_events me
JOIN sequence_versions v ON v.tenant_key = me.tenant_key AND v.id = me.sequence_version_id
WHERE me.tenant_key = @tenant_key AND v.sequence_id = @sequence_id
  AND me.type IN ('replied', 'ooo', 'bounced', 'complained', 'unsubscribed')
GROUP BY me.sequence_version_id, me.type, me.subtype;
