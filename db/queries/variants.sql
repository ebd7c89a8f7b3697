-- name: SetExecutionVariants :exec
-- The variants reservations chose: an execution keeps the first one it was
-- given, whatever a later promotion says (sticky across retries).
UPDATE step_executions s SET variant = coalesce(s.variant, r.variant)
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@variants::text[]) AS variant) r
WHERE s.tenant_key = @tenant_key AND s.id = ANY(@ids::uuid[]) AND s.id = r.id;

-- name: StatsVariants :many
-- Per step and variant: messages sent, and of them those with a human
-- reply, a positive (interested) reply, a hard bounce, an unsubscribe.
SELECT x.step_id, x.variant::text AS variant, count(*)::int AS sent,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM inbound_messages i WHERE i.tenant_key = @tenant_key
           AND i.step_execution_id = x.id AND i.intent = 'reply'))::int AS replies,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM inbound_messages i WHERE i.tenant_key = @tenant_key
           AND i.step_execution_id = x.id AND i.intent = 'reply' AND i.category = 'interested'))::int AS positive,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_events me WHERE me.tenant_key = @tenant_key
           AND me.step_execution_id = x.id AND me.type = 'bounced' AND me.subtype = 'hard'))::int AS bounces,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM message_events me WHERE me.tenant_key = @tenant_key
           AND me.step_execution_id = x.id AND me.type = 'unsubscribed'))::int AS unsubscribes
FROM step_executions x
WHERE x.tenant_key = @tenant_key AND x.step_id = ANY(@step_ids::uuid[]) AND x.variant IS NOT NULL AND x.state = 'sent'
GROUP BY x.step_id, x.variant;

-- name: StatsCategories :many
-- A sequence's human replies per version and category.
SELECT e.sequence_version_id, coalesce(i.category, 'uncategorized')::text AS category, count(*)::int AS n
FROM inbound_messages i
JOIN enrollments e ON e.tenant_key = i.tenant_key AND e.id = i.enrollment_id
WHERE i.tenant_key = @tenant_key AND e.sequence_id = @sequence_id AND i.intent = 'reply'
GROUP BY e.sequence_version_id, coalesce(i.category, 'uncategorized');

-- name: GetStep :one
SELECT * FROM steps WHERE tenant_key = $1 AND id = $2;

-- name: StepsAwaitingWinner :many
-- Steps of active versions with an auto-winner rule and no winner yet.
SELECT st.* FROM steps st
JOIN sequence_versions v ON v.tenant_key = st.tenant_key AND v.id = st.sequence_version_id
WHERE st.tenant_key = @tenant_key AND st.auto_winner IS NOT NULL AND st.winner_variant IS NULL AND v.state = 'active'
ORDER BY st.id;

-- name: PromoteVariant :execrows
-- Once: a step's winner never changes.
UPDATE steps SET winner_variant = @variant, promoted_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id AND winner_variant IS NULL;

-- name: StepContext :one
-- A step's version and sequence, for events and audit.
SELECT st.id, st.key, v.id AS sequence_version_id, v.version, sq.id AS sequence_id, sq.key AS sequence_key
FROM steps st
JOIN sequence_versions v ON v.tenant_key = st.tenant_key AND v.id = st.sequence_version_id
JOIN sequences sq ON sq.tenant_key = v.tenant_key AND sq.id = v.sequence_id
WHERE st.tenant_key = $1 AND st.id = $2;

-- name: CarryVariant :exec
-- A new attempt window of a step keeps the variant of the window before.
UPDATE step_executions x SET variant = b.variant
FROM step_executions b
WHERE x.tenant_key = @tenant_key AND x.id = @id AND b.tenant_key = @tenant_key AND b.id = @from_id;
