-- name: SetVersionBranches :exec
UPDATE sequence_versions SET branches = @branches, continue_thread = @continue_thread
WHERE tenant_key = @tenant_key AND id = @id;

-- name: GetVersionBranches :one
SELECT id, sequence_id, branches, continue_thread FROM sequence_versions WHERE tenant_key = $1 AND id = $2;

-- name: ActiveBranches :many
-- The routes of every active version of the tenant (the branch graph).
SELECT v.sequence_id, sq.key, v.branches FROM sequence_versions v
JOIN sequences sq ON sq.tenant_key = v.tenant_key AND sq.id = v.sequence_id
WHERE v.tenant_key = @tenant_key AND v.state = 'active' AND v.branches <> '{}'::jsonb;

-- name: LockBranchGraph :exec
-- Serialises the authoring of a tenant's branches, so two versions written
-- at once cannot close a cycle between them.
SELECT pg_advisory_xact_lock(hashtextextended('dripdrop-branches:' || @tenant_key::text, 0));

-- name: SequenceKeys :many
SELECT id, key FROM sequences WHERE tenant_key = @tenant_key AND key = ANY(@keys::text[]);

-- name: UpsertRoute :one
-- A new route, or a pending one re-decided (replace: a later human reply).
INSERT INTO enrollment_routes (tenant_key, id, source_enrollment_id, trigger, category, inbound_id, target_sequence_id,
                               due_at, created_at, updated_at)
VALUES (@tenant_key, @id, @source_enrollment_id, @trigger, sqlc.narg(category), sqlc.narg(inbound_id), @target_sequence_id,
        @due_at, @now, @now)
ON CONFLICT (tenant_key, source_enrollment_id) DO UPDATE
    SET trigger = excluded.trigger, category = excluded.category, inbound_id = excluded.inbound_id,
        target_sequence_id = excluded.target_sequence_id, due_at = excluded.due_at, updated_at = excluded.updated_at
    WHERE enrollment_routes.state = 'pending' AND @replace::boolean
RETURNING id, due_at;

-- name: SkipPendingRoute :execrows
UPDATE enrollment_routes SET state = 'skipped', reason = @reason, updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND source_enrollment_id = @source_enrollment_id AND state = 'pending';

-- name: DueRoutes :many
SELECT id FROM enrollment_routes
WHERE tenant_key = @tenant_key AND state = 'pending' AND due_at <= @now::timestamptz
ORDER BY due_at, id
LIMIT 200;

-- name: LockRoute :one
SELECT * FROM enrollment_routes WHERE tenant_key = $1 AND id = $2 AND state = 'pending' FOR UPDATE SKIP LOCKED;

-- name: FinishRoute :exec
UPDATE enrollment_routes SET state = @state, reason = sqlc.narg(reason), result_enrollment_id = sqlc.narg(result_enrollment_id),
       updated_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id;

-- name: RoutesInto :many
-- The routes that created an enrollment or left it.
SELECT * FROM enrollment_routes
WHERE tenant_key = @tenant_key AND (source_enrollment_id = @id OR result_enrollment_id = @id)
ORDER BY created_at;

-- name: SourceThread :many
-- The sent messages of one thread of an enrollment, oldest first.
SELECT out_message_id, subject FROM step_executions
WHERE tenant_key = @tenant_key AND enrollment_id = @enrollment_id AND thread_no = @thread_no
  AND state = 'sent' AND out_message_id IS NOT NULL
ORDER BY sent_at, id;

-- name: SetEnrollmentRouting :exec
UPDATE enrollments SET routed_from = @routed_from, thread_refs = sqlc.narg(thread_refs), thread_subject = sqlc.narg(thread_subject)
WHERE tenant_key = @tenant_key AND id = @id;

-- name: GetEnrollmentRow :one
SELECT * FROM enrollments WHERE tenant_key = $1 AND id = $2;

-- name: CompletedWithoutReply :many
-- Enrollments of versions with on_completed_without_reply that completed
-- in (since, now], have no route yet and no human reply.
SELECT e.id, e.sequence_version_id, e.ended_at FROM sequence_versions v
JOIN enrollments e ON e.tenant_key = v.tenant_key AND e.sequence_version_id = v.id AND e.state = 'completed'
     AND e.ended_at > @since::timestamptz AND e.ended_at <= @now::timestamptz
WHERE v.tenant_key = @tenant_key AND v.branches -> 'on_completed_without_reply' IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM enrollment_routes r WHERE r.tenant_key = e.tenant_key AND r.source_enrollment_id = e.id)
  AND NOT EXISTS (SELECT 1 FROM inbound_messages i WHERE i.tenant_key = e.tenant_key AND i.enrollment_id = e.id AND i.intent = 'reply')
ORDER BY e.ended_at, e.id
LIMIT 500;

-- name: ActiveVersionOfSequence :one
SELECT v.id, v.sequence_id, v.pool_id, v.continue_thread, sq.key AS sequence_key
FROM sequence_versions v JOIN sequences sq ON sq.tenant_key = v.tenant_key AND sq.id = v.sequence_id
WHERE v.tenant_key = @tenant_key AND v.sequence_id = @sequence_id AND v.state = 'active';

-- name: IsSuppressedAddress :one
SELECT EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_key = @tenant_key
    AND ((s.kind = 'email' AND s.value = @email::text) OR (s.kind = 'domain' AND s.value = @domain::text)))::bool;

-- name: GetRoute :one
SELECT * FROM enrollment_routes WHERE tenant_key = $1 AND id = $2;
