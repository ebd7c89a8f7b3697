-- name: ListTenantKeys :many
SELECT tenant_key FROM tenants ORDER BY tenant_key;

-- name: ClaimReady :batchmany
-- One tenant's claim (docs/sending.md#fairness-and-concurrency), cost O(claimed): it reads the ready
-- queue (adapter_due rows due by now, least recently served first), takes up
-- to each ready adapter's free in-flight room of its due work (follow-ups
-- first, then oldest, ties in enrollment order, then by id: the order the
-- forecast replays; never more than round-robin can reach: ceil(lim /
-- ready adapters)), ranks round-robin (rank 1 of every adapter before
-- rank 2 of any), and locks and claims only the rows it returns. A blocked
-- adapter's backlog is never read (LIMIT 0): its queue row moves to when it
-- unblocks. Served adapters go to the back of the line; adapters with
-- nothing left to claim move to their next scheduled work. A queue row
-- woken meanwhile (ver changed: new work, an unblocked adapter) is left as
-- the wake-up wrote it, since this claim computed from an older snapshot.
-- The rows it locks and claims are reached by primary key from the chosen
-- ids (= ANY), so stale statistics cannot turn that into a scan of the
-- backlog once per chosen row.
WITH busy AS (
    SELECT unnest(@busy_ids::uuid[]) AS adapter_id, unnest(@busy_counts::int[]) AS n
), cand AS (
    SELECT c.* FROM (
        SELECT d.adapter_id, d.due_at, d.served, d.ver,
               (a.deleted_at IS NULL AND (a.next_send_at IS NULL OR a.next_send_at <= @now::timestamptz)) AS ready,
               CASE WHEN a.deleted_at IS NULL THEN a.next_send_at ELSE 'infinity'::timestamptz END AS blocked_until,
               greatest(dripdrop_max_in_flight(a.max_in_flight, a.min_gap_seconds, a.gap_jitter_seconds)
                        - greatest(coalesce((SELECT b.n FROM busy b WHERE b.adapter_id = d.adapter_id), 0),
                                   -- The adapter's sends in flight in every process (dripdrop_in_flight's rule,
                                   -- written out: a function would run its query inside a shard query on Citus).
                                   (SELECT count(*) FROM step_executions f WHERE f.tenant_key = @tenant_key AND f.adapter_id = d.adapter_id
                                      AND f.state = 'sending' AND f.lease_expires_at > @now::timestamptz)::int), 0)::int AS room
        FROM adapter_due d
        JOIN adapters a ON a.tenant_key = d.tenant_key AND a.id = d.adapter_id
        WHERE d.tenant_key = @tenant_key AND d.due_at <= @now::timestamptz
        ORDER BY d.due_at, d.served
    ) c
    WHERE c.room > 0
    LIMIT @scan::int
), share AS (
    SELECT l.lim, ((l.lim + count(c.adapter_id) - 1) / greatest(count(c.adapter_id), 1))::int AS per
    FROM (SELECT @lim::int AS lim) l LEFT JOIN cand c ON c.ready GROUP BY l.lim
), picked AS (
    SELECT x.id, c.adapter_id, c.due_at, c.served,
           row_number() OVER (PARTITION BY c.adapter_id ORDER BY x.followup DESC, x.scheduled_for, x.enrollment_id, x.id) AS rn
    FROM cand c
    CROSS JOIN LATERAL (
        SELECT s.id, s.followup, s.scheduled_for, s.enrollment_id FROM step_executions s
        JOIN enrollments e ON e.tenant_key = s.tenant_key AND e.id = s.enrollment_id
        WHERE s.tenant_key = @tenant_key AND s.adapter_id = c.adapter_id AND s.state = 'scheduled'
          AND s.scheduled_for <= @now::timestamptz
          AND (s.claimed_until IS NULL OR s.claimed_until < @now::timestamptz)
          AND e.state <> 'paused'
        ORDER BY s.followup DESC, s.scheduled_for, s.enrollment_id, s.id
        LIMIT CASE WHEN c.ready THEN least(c.room, (SELECT sh.per FROM share sh)) ELSE 0 END
    ) x
), chosen AS (
    SELECT p.id, p.adapter_id FROM picked p ORDER BY p.rn, p.due_at, p.served, p.adapter_id, p.id LIMIT (SELECT sh.lim FROM share sh)
), locked AS (
    SELECT s.id FROM step_executions s
    WHERE s.tenant_key = @tenant_key AND s.id = ANY(ARRAY(SELECT ch.id FROM chosen ch)) AND s.state = 'scheduled'
      AND (s.claimed_until IS NULL OR s.claimed_until < @now::timestamptz)
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE step_executions x SET claimed_until = @claim_until::timestamptz
    FROM locked l
    WHERE x.tenant_key = @tenant_key AND x.id = ANY(ARRAY(SELECT lk.id FROM locked lk)) AND x.id = l.id
    -- (timestamptz - timestamptz is IMMUTABLE, timestamptz + interval is not:
    -- Citus allows only IMMUTABLE expressions in RETURNING.)
    RETURNING x.id, x.adapter_id, (x.scheduled_for - x.updated_at <= interval '1 second')::bool AS due_on_write
), counts AS MATERIALIZED (
    -- Counted once per candidate (the requeue's join would otherwise count
    -- again for every pair it tries: cubic in the claim's size).
    SELECT c.adapter_id, c.due_at, c.ver, c.ready, c.blocked_until, least(c.room, (SELECT sh.per FROM share sh)) AS take,
           (SELECT count(*) FROM picked p WHERE p.adapter_id = c.adapter_id)::int AS npicked,
           (SELECT count(*) FROM chosen ch WHERE ch.adapter_id = c.adapter_id)::int AS nchosen,
           (SELECT max(c2.served) FROM cand c2) AS top,
           row_number() OVER (ORDER BY c.due_at, c.served, c.adapter_id) AS ord
    FROM cand c
), requeue AS (
    UPDATE adapter_due d SET due_at = CASE
        WHEN NOT k.ready THEN coalesce(k.blocked_until, @now::timestamptz)
        WHEN k.nchosen > 0 AND (k.npicked >= k.take OR k.npicked > k.nchosen) THEN @now::timestamptz
        ELSE coalesce(least(
            (SELECT min(s.scheduled_for) FROM step_executions s WHERE s.tenant_key = @tenant_key AND s.adapter_id = k.adapter_id
               AND s.state = 'scheduled' AND s.followup AND s.scheduled_for > @now::timestamptz),
            (SELECT min(s.scheduled_for) FROM step_executions s WHERE s.tenant_key = @tenant_key AND s.adapter_id = k.adapter_id
               AND s.state = 'scheduled' AND NOT s.followup AND s.scheduled_for > @now::timestamptz),
            CASE WHEN k.npicked > 0 OR EXISTS (SELECT 1 FROM step_executions s WHERE s.tenant_key = @tenant_key AND s.adapter_id = k.adapter_id
               AND s.state = 'scheduled' AND s.scheduled_for <= @now::timestamptz AND s.claimed_until >= @now::timestamptz)
              THEN @claim_until::timestamptz END
        ), 'infinity'::timestamptz)
    END,
    -- Served adapters go behind every candidate of this claim, in the
    -- order they stood (the tenant's own clock: no global sequence).
    served = CASE WHEN k.nchosen > 0 THEN k.top + k.ord ELSE d.served END
    FROM counts k
    WHERE d.tenant_key = @tenant_key AND d.adapter_id = k.adapter_id AND d.ver = k.ver
      AND (NOT k.ready OR k.nchosen > 0 OR k.npicked = 0)
      -- Never waits for a queue row: one locked by another transaction is
      -- being woken (its ver moves, so this update would be skipped after
      -- the wait anyway) or requeued by another claim. Waiting deadlocked
      -- against a record or an enrollment whose wake-ups lock several
      -- adapters' rows in another order. A row left as it was stays due (a
      -- candidate's due_at is at or before now), so it is only looked at
      -- again sooner.
      AND d.adapter_id = ANY(ARRAY(
          SELECT q.adapter_id FROM adapter_due q
          WHERE q.tenant_key = @tenant_key
            AND q.adapter_id = ANY(ARRAY(SELECT k2.adapter_id FROM counts k2 WHERE NOT k2.ready OR k2.nchosen > 0 OR k2.npicked = 0))
          FOR UPDATE SKIP LOCKED))
    RETURNING d.adapter_id
)
SELECT cl.id, cl.adapter_id, cl.due_on_write FROM claimed cl;

-- name: LoadSend :one
SELECT x.id, x.enrollment_id, x.step_id, x.state, x.scheduled_for, x.attempt, x.attempt_window, x.adapter_id, x.out_message_id,
       x.followup, x.claimed_until, x.thread_no AS exec_thread_no,
       st.key AS step_key, st.position, st.subject AS step_subject, st.body_text, st.body_html, st.spintax,
       st.adapter_override_id, st.variants, st.winner_variant, x.variant,
       e.state AS enrollment_state, e.email, e.first_name, e.last_name, e.company, e.timezone AS contact_timezone,
       e.vars, e.thread_no, e.adapter_id AS pin_id, e.sequence_version_id, e.sequence_id, e.thread_refs, e.thread_subject, e.recipient_provider,
       v.window_days, v.window_start, v.window_end, v.window_timezone, v.window_holidays, v.pool_id, v.list_unsubscribe,
       sq.key AS sequence_key
FROM step_executions x
JOIN steps st ON st.tenant_key = x.tenant_key AND st.id = x.step_id
JOIN enrollments e ON e.tenant_key = x.tenant_key AND e.id = x.enrollment_id
JOIN sequence_versions v ON v.tenant_key = e.tenant_key AND v.id = e.sequence_version_id
JOIN sequences sq ON sq.tenant_key = e.tenant_key AND sq.id = e.sequence_id
WHERE x.tenant_key = $1 AND x.id = $2;

-- name: LockAdapter :one
-- FOR NO KEY UPDATE: serialises reservations of one adapter without
-- blocking the foreign-key checks of rows that reference it.
SELECT * FROM adapters WHERE tenant_key = $1 AND id = $2 FOR NO KEY UPDATE;

-- name: LockAdapters :many
-- A claim's adapters, locked in id order (so concurrent reservations of
-- overlapping sets never deadlock), FOR NO KEY UPDATE as LockAdapter.
SELECT * FROM adapters WHERE tenant_key = @tenant_key AND id = ANY(@ids::uuid[]) ORDER BY id FOR NO KEY UPDATE;

-- name: ReleaseClaims :exec
-- Claims a reservation does not send, given back: each released row's
-- trigger wakes its adapter's ready-queue row. Those rows are locked
-- first, in adapter order, the order in which every statement that wakes
-- several adapters takes them (the insert trigger's upsert), so two
-- wakers never deadlock; the update then finds them held. (The locking
-- subquery runs once, before the first row is updated and long before
-- the row triggers fire at the statement's end.)
WITH due AS (
    SELECT d.adapter_id FROM adapter_due d
    WHERE d.tenant_key = @tenant_key
      AND d.adapter_id = ANY(ARRAY(SELECT s.adapter_id FROM step_executions s
                                   WHERE s.tenant_key = @tenant_key AND s.id = ANY(@ids::uuid[]) AND s.state = 'scheduled'
                                     AND s.claimed_until IS NOT NULL))
    ORDER BY d.adapter_id
    FOR UPDATE
)
UPDATE step_executions x SET claimed_until = NULL
WHERE x.tenant_key = @tenant_key AND x.id = ANY(@ids::uuid[]) AND x.state = 'scheduled'
  AND (SELECT count(*) FROM due) >= 0;

-- name: ThreadsOf :many
-- The sent messages of several threads (enrollment, thread number), oldest first.
SELECT s.enrollment_id, s.thread_no, s.out_message_id, s.subject
FROM step_executions s
JOIN (SELECT unnest(@enrollment_ids::uuid[]) AS enrollment_id, unnest(@thread_nos::int[]) AS thread_no) t
  ON s.enrollment_id = t.enrollment_id AND s.thread_no = t.thread_no
WHERE s.tenant_key = @tenant_key AND s.state = 'sent' AND s.out_message_id IS NOT NULL
ORDER BY s.enrollment_id, s.thread_no, s.sent_at, s.id;

-- name: ReleaseUsage :exec
UPDATE adapter_daily_usage SET sent = greatest(sent - 1, 0)
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND day = @day AND sequence_version_id = @sequence_version_id;

-- name: SetAdapterNextSend :exec
-- An adapter-level block never shortens a longer one (such as the in-flight
-- guard of an adapter with a gap, lifted only when its conversation ends).
UPDATE adapters SET next_send_at = greatest(next_send_at, @next_send_at::timestamptz) WHERE tenant_key = @tenant_key AND id = @id;

-- name: ReleaseClaim :exec
UPDATE step_executions SET claimed_until = NULL WHERE tenant_key = $1 AND id = $2;

-- name: DeferExecution :exec
UPDATE step_executions SET scheduled_for = @scheduled_for, defer_reason = @defer_reason, defer_until = @defer_until,
       claimed_until = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id;

-- name: FinishExecution :exec
-- Ends an execution that never went out (cancelled, skipped, failed before sending).
UPDATE step_executions SET state = @state, error_code = @error_code, error = @error, claimed_until = NULL,
       lease_expires_at = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id;

-- name: MarkSendFailed :one
UPDATE step_executions SET state = @state, scheduled_for = @scheduled_for, error_code = @error_code, error = @error,
       lease_expires_at = NULL, reserved_day = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND state = 'sending' AND lease_expires_at = @lease_expires_at
RETURNING *;

-- name: InsertMessageEvent :exec
INSERT INTO message_events (tenant_key, id, type, subtype, adapter_id, step_execution_id, enrollment_id,
                            sequence_version_id, reason, data, occurred_at)
VALUES (@tenant_key, @id, @type, @subtype, @adapter_id, @step_execution_id, @enrollment_id,
        @sequence_version_id, @reason, @data, @occurred_at)
ON CONFLICT DO NOTHING;

-- name: StaleSending :many
SELECT id, adapter_id, reserved_day, enrollment_id FROM step_executions
WHERE tenant_key = @tenant_key AND state = 'sending' AND lease_expires_at < @now::timestamptz
ORDER BY lease_expires_at
LIMIT 500
FOR UPDATE SKIP LOCKED;

-- name: AdapterAfterSend :exec
-- After a conversation ends: the gap runs from now (so it holds on the
-- receiver's clock too) and the in-flight guard is lifted.
UPDATE adapters SET last_send_at = @now::timestamptz, next_send_at = sqlc.narg(next_send_at)
WHERE tenant_key = @tenant_key AND id = @id AND (min_gap_seconds > 0 OR gap_jitter_seconds > 0);

-- name: ClearAdapterGuard :exec
UPDATE adapters SET next_send_at = NULL
WHERE tenant_key = @tenant_key AND id = @id AND next_send_at > @now::timestamptz
  AND (min_gap_seconds > 0 OR gap_jitter_seconds > 0);

-- name: RescueExecution :exec
UPDATE step_executions SET state = 'scheduled', scheduled_for = @now, lease_expires_at = NULL, reserved_day = NULL,
       claimed_until = NULL, defer_reason = 'rescued', rescues = rescues + 1, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id;

-- name: UpsertSuppressionIfAbsent :exec
INSERT INTO suppressions (tenant_key, id, kind, value, reason, source, created_at)
VALUES (@tenant_key, @id, @kind, @value, @reason, @source, @now)
ON CONFLICT (tenant_key, kind, value) DO NOTHING;

-- name: StopEnrollment :execrows
-- A completed enrollment is stopped too when from_completed: the
-- recipient's bounce, complaint or unsubscribe of the last step is the
-- outcome that counts.
UPDATE enrollments SET state = 'stopped', stop_reason = @stop_reason, ended_at = @now::timestamptz, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
  AND (state IN ('active', 'paused') OR (@from_completed::boolean AND state = 'completed'));

-- name: CompleteEnrollment :execrows
UPDATE enrollments SET state = 'completed', ended_at = @now::timestamptz, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND state IN ('active', 'paused');

-- name: TryLeader :one
-- Expiry uses the database clock only, so replicas with skewed clocks agree.
INSERT INTO leader_leases (name, holder, expires_at)
VALUES (@name, @holder, now() + make_interval(secs => @ttl_seconds::float8))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
WHERE leader_leases.holder = EXCLUDED.holder OR leader_leases.expires_at < now()
RETURNING holder;

-- name: ResignLeader :exec
DELETE FROM leader_leases WHERE name = @name AND holder = @holder;

-- name: NotifyWork :exec
SELECT pg_notify('dripdrop_work', @tenant_key::text);

-- name: GetAdapterAny :one
SELECT * FROM adapters WHERE tenant_key = $1 AND id = $2;

-- name: NextPendingExecution :one
SELECT x.id FROM step_executions x JOIN steps s ON s.tenant_key = x.tenant_key AND s.id = x.step_id
WHERE x.tenant_key = $1 AND x.enrollment_id = $2 AND x.state IN ('scheduled', 'sending')
ORDER BY s.position LIMIT 1;

-- name: UsageByVersion :many
SELECT u.sequence_version_id, u.sent, coalesce(b.max_share_pct, 100)::int AS max_share_pct,
       s.key AS sequence_key, v.version
FROM adapter_daily_usage u
JOIN sequence_versions v ON v.tenant_key = u.tenant_key AND v.id = u.sequence_version_id
JOIN sequences s ON s.tenant_key = v.tenant_key AND s.id = v.sequence_id
LEFT JOIN budgets b ON b.tenant_key = u.tenant_key AND b.adapter_id = u.adapter_id AND b.sequence_version_id = u.sequence_version_id
WHERE u.tenant_key = @tenant_key AND u.adapter_id = @adapter_id AND u.day = @day
ORDER BY s.key, v.version;

-- name: RecordBareSend :execrows
UPDATE step_executions SET state = 'sent', sent_at = @now::timestamptz, claimed_until = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND state = 'scheduled';

-- name: LoadSendsLocked :many
-- A reservation's executions, locked, in claim order (follow-ups first,
-- then oldest, then enrollment, then id: ClaimReady's order). Every row
-- is reached from the ids: each execution by primary key, then its
-- enrollment, step, version and sequence by theirs, each join a lateral
-- subquery of the row before it (OFFSET 0 keeps the planner from
-- flattening them), so the plan is the same whatever the statistics say.
-- Planned from statistics older than a bulk enrollment (autovacuum
-- analyzes within a minute or so), a free join order started from the
-- sequence's enrollments and matched each against every id: 1.3 million
-- row visits and 6 s to reserve 256 sends out of 5 000 enrollments.
-- Rows are locked in the order of ids (callers sort them). Every table
-- reference names the tenant (a single-shard router query on Citus).
SELECT x.id, x.enrollment_id, x.step_id, x.state, x.scheduled_for, x.attempt, x.attempt_window, x.adapter_id, x.out_message_id,
       x.followup, x.claimed_until, x.thread_no AS exec_thread_no,
       st.key AS step_key, st.position, st.subject AS step_subject, st.body_text, st.body_html, st.spintax,
       st.adapter_override_id, st.variants, st.winner_variant, x.variant,
       e.state AS enrollment_state, e.email, e.first_name, e.last_name, e.company, e.timezone AS contact_timezone,
       e.vars, e.thread_no, e.adapter_id AS pin_id, e.sequence_version_id, e.sequence_id, e.thread_refs, e.thread_subject, e.recipient_provider,
       v.window_days, v.window_start, v.window_end, v.window_timezone, v.window_holidays, v.pool_id, v.list_unsubscribe,
       sq.key AS sequence_key
FROM unnest(@ids::uuid[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT s.* FROM step_executions s WHERE s.tenant_key = @tenant_key AND s.id = i.id OFFSET 0 FOR UPDATE
) x
CROSS JOIN LATERAL (
    SELECT en.* FROM enrollments en WHERE en.tenant_key = @tenant_key AND en.id = x.enrollment_id OFFSET 0
) e
CROSS JOIN LATERAL (
    SELECT sp.* FROM steps sp WHERE sp.tenant_key = @tenant_key AND sp.id = x.step_id OFFSET 0
) st
CROSS JOIN LATERAL (
    SELECT sv.* FROM sequence_versions sv WHERE sv.tenant_key = @tenant_key AND sv.id = e.sequence_version_id OFFSET 0
) v
CROSS JOIN LATERAL (
    SELECT sn.* FROM sequences sn WHERE sn.tenant_key = @tenant_key AND sn.id = e.sequence_id OFFSET 0
) sq
ORDER BY x.followup DESC, x.scheduled_for, x.enrollment_id, x.id;

-- name: BatchPolicyInputs :many
-- What the policies read for a reservation, per (adapter, adapter-local
-- day, sequence version) of its executions: the adapter's sends that day
-- (all versions), the version's sends and its share, and the adapter's
-- places left under max_in_flight over every process (room). Read after
-- the adapters are locked, by a statement of its own (so with a snapshot
-- taken after the lock: two reservations never both take the last place
-- or the last send).
SELECT p.adapter_id::uuid AS adapter_id, p.vid::uuid AS sequence_version_id,
    (SELECT dripdrop_max_in_flight(a.max_in_flight, a.min_gap_seconds, a.gap_jitter_seconds)
            - (SELECT count(*) FROM step_executions f WHERE f.tenant_key = @tenant_key AND f.adapter_id = a.id
                 AND f.state = 'sending' AND f.lease_expires_at > @now::timestamptz)::int
       FROM adapters a WHERE a.tenant_key = @tenant_key AND a.id = p.adapter_id)::int AS room,
    (SELECT coalesce(sum(u.sent), 0) FROM adapter_daily_usage u
      WHERE u.tenant_key = @tenant_key AND u.adapter_id = p.adapter_id AND u.day = p.day)::int AS sent_today,
    (SELECT coalesce(sum(u.sent), 0) FROM adapter_daily_usage u
      WHERE u.tenant_key = @tenant_key AND u.adapter_id = p.adapter_id AND u.day = p.day
        AND u.sequence_version_id = p.vid)::int AS sent_for_version,
    coalesce((SELECT b.max_share_pct FROM budgets b WHERE b.tenant_key = @tenant_key AND b.adapter_id = p.adapter_id
        AND b.sequence_version_id = p.vid), 100)::int AS max_share_pct
FROM (SELECT unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@days::date[]) AS day, unnest(@version_ids::uuid[]) AS vid) p;

-- name: ReserveSends :exec
-- Phase one of a claim's sends, any number of adapters, in one statement:
-- the executions become "sending", each adapter's counters for its local
-- day move by its sends, each adapter's send times are set (next_send_at
-- NULL unless blocked). thread_nos uses -1 for "no thread" (override sends).
-- An adapter without a gap that is not blocked and sent within the last
-- second is left as it is: only the gap policy reads last_send_at, so
-- for such an adapter it is kept to the second, and the row of a busy
-- adapter is not rewritten by every reservation.
WITH r AS (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@out_message_ids::text[]) AS msg_id,
           unnest(@thread_nos::int[]) AS thread_no, unnest(@sequence_version_ids::uuid[]) AS version,
           unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@reserved_days::date[]) AS day
), x AS (
    UPDATE step_executions s SET state = 'sending', attempt = s.attempt + 1,
           out_message_id = coalesce(s.out_message_id, r.msg_id), lease_expires_at = @lease_expires_at::timestamptz,
           reserved_day = r.day, thread_no = CASE WHEN r.thread_no < 0 THEN NULL ELSE r.thread_no END,
           claimed_until = NULL, defer_reason = NULL, defer_until = NULL, updated_at = @now::timestamptz
    FROM r
    WHERE s.tenant_key = @tenant_key AND s.id = r.id
    RETURNING s.id
), u AS (
    -- (Read through the adapters, not from r: Citus would send the
    -- results of r, or of a subquery, that an INSERT … SELECT reads to
    -- every worker, and the reservation would commit on all of them.)
    INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
    SELECT a.tenant_key, a.id, c.day, c.version, count(*)::int
    FROM adapters a
    JOIN (SELECT unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@reserved_days::date[]) AS day,
                 unnest(@sequence_version_ids::uuid[]) AS version) c ON c.adapter_id = a.id
    WHERE a.tenant_key = @tenant_key
    GROUP BY a.tenant_key, a.id, c.day, c.version
    ON CONFLICT (tenant_key, adapter_id, day, sequence_version_id) DO UPDATE SET sent = adapter_daily_usage.sent + excluded.sent
    RETURNING 1
)
UPDATE adapters a SET last_send_at = @now::timestamptz, next_send_at = CASE WHEN n.blocked THEN n.next_send_at END
FROM (SELECT unnest(@adapters::uuid[]) AS id, unnest(@blocked::bool[]) AS blocked, unnest(@next_send_ats::timestamptz[]) AS next_send_at) n
WHERE a.tenant_key = @tenant_key AND a.id = n.id
  AND (n.blocked OR a.next_send_at IS NOT NULL OR a.min_gap_seconds > 0 OR a.gap_jitter_seconds > 0
       OR a.last_send_at IS NULL OR a.last_send_at <= @recent::timestamptz);

-- name: ReserveSendsSteps :exec
-- ReserveSends on Citus without its usage insert (AddDailyUsage, sent in
-- the same round trip): Citus plans a statement whose CTEs update as one
-- router query, and one with an INSERT CTE as a step per CTE
-- (docs/scaling.md#writing-queries-that-shard).
WITH r AS (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@out_message_ids::text[]) AS msg_id,
           unnest(@thread_nos::int[]) AS thread_no, unnest(@sequence_version_ids::uuid[]) AS version,
           unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@reserved_days::date[]) AS day
), x AS (
    UPDATE step_executions s SET state = 'sending', attempt = s.attempt + 1,
           out_message_id = coalesce(s.out_message_id, r.msg_id), lease_expires_at = @lease_expires_at::timestamptz,
           reserved_day = r.day, thread_no = CASE WHEN r.thread_no < 0 THEN NULL ELSE r.thread_no END,
           claimed_until = NULL, defer_reason = NULL, defer_until = NULL, updated_at = @now::timestamptz
    FROM r
    WHERE s.tenant_key = @tenant_key AND s.id = r.id
    RETURNING s.id
)
UPDATE adapters a SET last_send_at = @now::timestamptz, next_send_at = CASE WHEN n.blocked THEN n.next_send_at END
FROM (SELECT unnest(@adapters::uuid[]) AS id, unnest(@blocked::bool[]) AS blocked, unnest(@next_send_ats::timestamptz[]) AS next_send_at) n
WHERE a.tenant_key = @tenant_key AND a.id = n.id
  AND (n.blocked OR a.next_send_at IS NOT NULL OR a.min_gap_seconds > 0 OR a.gap_jitter_seconds > 0
       OR a.last_send_at IS NULL OR a.last_send_at <= @recent::timestamptz);

-- name: AddDailyUsage :exec
-- ReserveSends' usage counters on Citus: each adapter's sends of the
-- reservation on its local day, per sequence version. Read through the
-- adapters, not from the arrays alone: an INSERT … SELECT that reads no
-- tenant table is built on the coordinator and commits on every worker.
INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
SELECT a.tenant_key, a.id, c.day, c.version, count(*)::int
FROM adapters a
JOIN (SELECT unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@reserved_days::date[]) AS day,
             unnest(@sequence_version_ids::uuid[]) AS version) c ON c.adapter_id = a.id
WHERE a.tenant_key = @tenant_key
GROUP BY a.tenant_key, a.id, c.day, c.version
ON CONFLICT (tenant_key, adapter_id, day, sequence_version_id) DO UPDATE SET sent = adapter_daily_usage.sent + excluded.sent;

-- name: PolicyInputs :one
SELECT
    (SELECT coalesce(sum(u.sent), 0) FROM adapter_daily_usage u
      WHERE u.tenant_key = @tenant_key AND u.adapter_id = @adapter_id AND u.day = @day)::int AS sent_today,
    (SELECT coalesce(sum(u.sent), 0) FROM adapter_daily_usage u
      WHERE u.tenant_key = @tenant_key AND u.adapter_id = @adapter_id AND u.day = @day
        AND u.sequence_version_id = @sequence_version_id)::int AS sent_for_version,
    coalesce((SELECT b.max_share_pct FROM budgets b WHERE b.tenant_key = @tenant_key AND b.adapter_id = @adapter_id
        AND b.sequence_version_id = @sequence_version_id), 100)::int AS max_share_pct,
    EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_key = @tenant_key AND s.kind = 'email' AND s.value = @email) AS email_suppressed,
    EXISTS (SELECT 1 FROM suppressions s WHERE s.tenant_key = @tenant_key AND s.kind = 'domain' AND s.value = @domain) AS domain_suppressed;

-- name: LockEnrollments :many
-- The lock order of everything that changes an enrollment and its
-- executions: the enrollment first (in id order), then its executions,
-- then the ready queue. Recording sends takes its enrollments' locks with
-- this before RecordSent touches the executions: an operator's resume or
-- cancel, which locks the enrollment and then updates its executions,
-- deadlocked against a record that had locked the execution first.
SELECT id FROM enrollments
WHERE tenant_key = @tenant_key AND id = ANY(@ids::uuid[])
ORDER BY id
FOR UPDATE;

-- name: RecordSent :many
-- Phase two of several accepted messages in one statement (the record,
-- docs/sending.md#the-path-of-one-step),
-- each fenced by its lease: the sends and their one "sent" event each (and
-- their outbox rows, ob below); for
-- adapters with a gap, the gap starts now (next_send_at) and the in-flight
-- guard is lifted; then each enrollment (locked) completes or gets its next
-- step, due its delay after now but never before the enrollment's
-- not_before (next_due_now: announce it after commit). It returns a row per
-- recorded send; a send missing from the result lost its lease. A gap
-- (from gap_start, the hand-over, to gap_next) at or before the epoch
-- (Go's zero time) means "no gap". Every table is reached by primary key
-- from the ids (= ANY, an index condition), never by a join the planner
-- could turn around: planned from statistics older than a bulk enrollment,
-- "id IN (…)" scanned every live enrollment once per recorded send (630 000
-- row visits and 28 s to record 128 sends).
WITH r AS (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@lease_expires_ats::timestamptz[]) AS lease,
           unnest(@provider_message_ids::text[]) AS provider_message_id, unnest(@subjects::text[]) AS subject,
           unnest(@event_ids::uuid[]) AS event_id, unnest(@sequence_version_ids::uuid[]) AS version,
           unnest(@attempts::int[]) AS attempt, unnest(@gap_starts::timestamptz[]) AS gap_start,
           unnest(@gap_next_send_ats::timestamptz[]) AS gap_next,
           unnest(@positions::int[]) AS position, unnest(@next_ids::uuid[]) AS next_id,
           unnest(@sequence_keys::text[]) AS sequence_key, unnest(@step_keys::text[]) AS step_key,
           unnest(@providers::text[]) AS provider, unnest(@out_message_ids::text[]) AS out_message_id,
           unnest(@variants::text[]) AS variant,
           generate_series(1, cardinality(@ids::uuid[])) AS ord
), x AS (
    UPDATE step_executions s SET state = 'sent', provider_message_id = r.provider_message_id, sent_at = @now::timestamptz,
           subject = r.subject, lease_expires_at = NULL, error = NULL, error_code = NULL, updated_at = @now::timestamptz
    FROM r
    WHERE s.tenant_key = @tenant_key AND s.id = r.id AND s.state = 'sending' AND s.lease_expires_at = r.lease
    RETURNING s.id, s.enrollment_id, s.adapter_id
), ev AS (
    INSERT INTO message_events (tenant_key, id, type, adapter_id, step_execution_id, enrollment_id, sequence_version_id, data, occurred_at)
    SELECT @tenant_key, r.event_id, 'sent', x.adapter_id, x.id, x.enrollment_id, r.version,
           jsonb_build_object('out_message_id', r.out_message_id, 'attempt', r.attempt)
             || CASE WHEN r.variant <> '' THEN jsonb_build_object('variant', r.variant) ELSE '{}'::jsonb END, @now::timestamptz
    FROM x JOIN r ON r.id = x.id
    ON CONFLICT DO NOTHING
    RETURNING 1
), gap AS (
    UPDATE adapters a SET last_send_at = g.last_send_at, next_send_at = g.next_send_at
    FROM (SELECT x.adapter_id, max(r.gap_start) AS last_send_at, max(r.gap_next) AS next_send_at FROM x JOIN r ON r.id = x.id
          WHERE r.gap_next > 'epoch'::timestamptz GROUP BY x.adapter_id) g
    WHERE a.tenant_key = @tenant_key AND a.id = ANY(ARRAY(SELECT x.adapter_id FROM x)) AND a.id = g.adapter_id
      AND (a.min_gap_seconds > 0 OR a.gap_jitter_seconds > 0)
    RETURNING 1
), e AS (
    SELECT en.id, en.state, en.adapter_id, en.not_before FROM enrollments en
    WHERE en.tenant_key = @tenant_key AND en.id = ANY(ARRAY(SELECT x.enrollment_id FROM x))
    FOR UPDATE
), n AS (
    SELECT x.id AS execution_id, st.id, st.delay_seconds, st.adapter_override_id
    FROM x JOIN r ON r.id = x.id
    CROSS JOIN LATERAL (
        SELECT st.id, st.delay_seconds, st.adapter_override_id FROM steps st
        WHERE st.tenant_key = @tenant_key AND st.sequence_version_id = r.version AND st.position > r.position
        ORDER BY st.position LIMIT 1
    ) st
), done AS (
    UPDATE enrollments SET state = 'completed', ended_at = @now::timestamptz, updated_at = @now::timestamptz
    WHERE enrollments.tenant_key = @tenant_key AND enrollments.state IN ('active', 'paused')
      AND enrollments.id = ANY(ARRAY(SELECT x.enrollment_id FROM x JOIN e ON e.id = x.enrollment_id
                                     WHERE e.state IN ('active', 'paused') AND NOT EXISTS (SELECT 1 FROM n WHERE n.execution_id = x.id)))
    RETURNING enrollments.id
), nx AS (
    INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, followup, attempt_window, scheduled_for, created_at, updated_at)
    SELECT @tenant_key, r.next_id, e.id, n.id, coalesce(n.adapter_override_id, e.adapter_id), true, 0,
           greatest((n.delay_seconds * interval '1 second') + @now::timestamptz, coalesce(e.not_before, '-infinity')),
           @now::timestamptz, @now::timestamptz
    FROM n JOIN x ON x.id = n.execution_id JOIN r ON r.id = x.id JOIN e ON e.id = x.enrollment_id
    WHERE e.state IN ('active', 'paused')
    RETURNING enrollment_id, (scheduled_for <= @now::timestamptz) AS due_now
), sub AS (
    SELECT EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.tenant_key = @tenant_key AND w.active) AS pending
), ob AS (
    -- The outbox rows of each recorded send's "sent" event and, when it
    -- completed its enrollment, its "completed" event, built from the rows
    -- (their metadata is evSent's and evEnrollment's, db/events.go;
    -- TestRecordOutboxRowsMatchTheEvents compares them), pending when the
    -- tenant has an active subscription, else no_match (db/outbox.go).
    INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at, status)
    SELECT @tenant_key, o.name, '{"count": 1}'::jsonb, o.metadata, @now::timestamptz,
           CASE WHEN sub.pending THEN 'pending' ELSE 'no_match' END
    FROM (
        SELECT r.ord, 0 AS k, 'dripdrop.dispatch.sent' AS name,
               jsonb_build_object('enrollment_id', x.enrollment_id, 'step_execution_id', x.id, 'sequence_key', r.sequence_key,
                                  'step_key', r.step_key, 'channel', 'email', 'adapter_provider', r.provider,
                                  'provider_message_id', r.provider_message_id, 'out_message_id', r.out_message_id,
                                  'tenant_key', @tenant_key::text) AS metadata
        FROM x JOIN r ON r.id = x.id
        UNION ALL
        SELECT r.ord, 1, 'dripdrop.enrollment.completed',
               jsonb_build_object('enrollment_id', done.id, 'tenant_key', @tenant_key::text, 'reason', 'last_step_sent')
        FROM done JOIN x ON x.enrollment_id = done.id JOIN r ON r.id = x.id
    ) o CROSS JOIN sub
    ORDER BY o.ord, o.k
)
SELECT x.id, x.enrollment_id,
       EXISTS (SELECT 1 FROM done WHERE done.id = x.enrollment_id) AS completed,
       EXISTS (SELECT 1 FROM nx WHERE nx.enrollment_id = x.enrollment_id AND nx.due_now) AS next_due_now,
       sub.pending
FROM x CROSS JOIN sub;

-- name: RecordSentSteps :many
-- RecordSent's updates and reads without its inserts, for Citus, where a
-- statement is one router query on the tenant's worker only when its CTEs
-- are SELECT, UPDATE or DELETE (docs/scaling.md#writing-queries-that-shard): the
-- sends fenced by their lease, the adapters' gaps, the enrollments locked
-- and completed, and per recorded send what the inserts that follow
-- (its sent event, its next step, the outbox rows) need: the next step
-- (none: step_id NULL) and whether its enrollment is still live.
WITH r AS (
    SELECT unnest(@ids::uuid[]) AS id, unnest(@lease_expires_ats::timestamptz[]) AS lease,
           unnest(@provider_message_ids::text[]) AS provider_message_id, unnest(@subjects::text[]) AS subject,
           unnest(@sequence_version_ids::uuid[]) AS version,
           unnest(@gap_starts::timestamptz[]) AS gap_start, unnest(@gap_next_send_ats::timestamptz[]) AS gap_next,
           unnest(@positions::int[]) AS position
), x AS (
    UPDATE step_executions s SET state = 'sent', provider_message_id = r.provider_message_id, sent_at = @now::timestamptz,
           subject = r.subject, lease_expires_at = NULL, error = NULL, error_code = NULL, updated_at = @now::timestamptz
    FROM r
    WHERE s.tenant_key = @tenant_key AND s.id = r.id AND s.state = 'sending' AND s.lease_expires_at = r.lease
    RETURNING s.id, s.enrollment_id, s.adapter_id
), gap AS (
    UPDATE adapters a SET last_send_at = g.last_send_at, next_send_at = g.next_send_at
    FROM (SELECT x.adapter_id, max(r.gap_start) AS last_send_at, max(r.gap_next) AS next_send_at FROM x JOIN r ON r.id = x.id
          WHERE r.gap_next > 'epoch'::timestamptz GROUP BY x.adapter_id) g
    WHERE a.tenant_key = @tenant_key AND a.id = ANY(ARRAY(SELECT x.adapter_id FROM x)) AND a.id = g.adapter_id
      AND (a.min_gap_seconds > 0 OR a.gap_jitter_seconds > 0)
    RETURNING 1
), e AS (
    SELECT en.id, en.state, en.adapter_id, en.not_before FROM enrollments en
    WHERE en.tenant_key = @tenant_key AND en.id = ANY(ARRAY(SELECT x.enrollment_id FROM x))
    FOR UPDATE
), n AS (
    SELECT x.id AS execution_id, st.id, st.delay_seconds, st.adapter_override_id
    FROM x JOIN r ON r.id = x.id
    CROSS JOIN LATERAL (
        SELECT st.id, st.delay_seconds, st.adapter_override_id FROM steps st
        WHERE st.tenant_key = @tenant_key AND st.sequence_version_id = r.version AND st.position > r.position
        ORDER BY st.position LIMIT 1
    ) st
), done AS (
    UPDATE enrollments SET state = 'completed', ended_at = @now::timestamptz, updated_at = @now::timestamptz
    WHERE enrollments.tenant_key = @tenant_key AND enrollments.state IN ('active', 'paused')
      AND enrollments.id = ANY(ARRAY(SELECT x.enrollment_id FROM x JOIN e ON e.id = x.enrollment_id
                                     WHERE e.state IN ('active', 'paused') AND NOT EXISTS (SELECT 1 FROM n WHERE n.execution_id = x.id)))
    RETURNING enrollments.id
), sub AS (
    SELECT EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.tenant_key = @tenant_key AND w.active) AS pending
)
SELECT x.id, x.enrollment_id, x.adapter_id,
       EXISTS (SELECT 1 FROM done WHERE done.id = x.enrollment_id) AS completed,
       coalesce(e.state IN ('active', 'paused'), false)::boolean AS live,
       e.adapter_id AS enrollment_adapter_id, e.not_before,
       n.id AS next_step_id, n.delay_seconds AS next_delay_seconds, n.adapter_override_id AS next_adapter_override_id,
       sub.pending
FROM x CROSS JOIN sub
LEFT JOIN e ON e.id = x.enrollment_id
LEFT JOIN n ON n.execution_id = x.id;

-- name: TenantNextDue :one
-- When the tenant's earliest ready-queue entry comes due (NULL when it has
-- none pending): the dispatcher's agenda of tenants with work
-- (docs/sending.md#fairness-and-concurrency). One index probe.
SELECT min(due_at)::timestamptz AS due_at FROM adapter_due
WHERE tenant_key = @tenant_key AND due_at < 'infinity';
