-- name: PutMailboxSettings :one
INSERT INTO mailbox_sync (tenant_key, adapter_id, host, port, tls, username, folders, interval_seconds, enabled, tls_ca_pem,
                          next_sync_at, created_at, updated_at)
VALUES (@tenant_key, @adapter_id, @host, @port, @tls, @username, @folders::text[], @interval_seconds, @enabled, @tls_ca_pem, @now, @now, @now)
ON CONFLICT (tenant_key, adapter_id) DO UPDATE SET host = excluded.host, port = excluded.port, tls = excluded.tls,
    username = excluded.username, folders = excluded.folders, interval_seconds = excluded.interval_seconds,
    enabled = excluded.enabled, tls_ca_pem = excluded.tls_ca_pem, next_sync_at = excluded.next_sync_at,
    updated_at = excluded.updated_at
RETURNING *;

-- name: DeleteMailboxSettings :exec
DELETE FROM mailbox_sync WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id;

-- name: GetMailboxSync :one
SELECT * FROM mailbox_sync WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id;

-- name: GetMailboxSyncForUpdate :one
SELECT * FROM mailbox_sync WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id FOR UPDATE;

-- name: ListMailboxSyncs :many
SELECT * FROM mailbox_sync WHERE tenant_key = @tenant_key AND adapter_id = ANY(@ids::uuid[]);

-- name: RequestMailboxSync :one
UPDATE mailbox_sync SET sync_requested_at = @now, next_sync_at = LEAST(next_sync_at, @now)
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id
RETURNING *;

-- name: ClaimMailboxes :many
-- Takes up to @lim enabled mailboxes of live adapters that no live replica
-- owns (its leader_leases row 'mailsync/<owner>' expired or missing),
-- soonest due first; SKIP LOCKED lets replicas claim side by side.
UPDATE mailbox_sync m SET lease_owner = @owner::text
FROM (
    SELECT s.tenant_key, s.adapter_id FROM mailbox_sync s
    JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id AND a.deleted_at IS NULL
    WHERE s.enabled
      AND (s.lease_owner IS NULL OR (s.lease_owner <> @owner::text AND NOT EXISTS (
          SELECT 1 FROM leader_leases l WHERE l.name = 'mailsync/' || s.lease_owner AND l.expires_at > now())))
    ORDER BY s.next_sync_at
    LIMIT @lim
    FOR UPDATE OF s SKIP LOCKED
) c
WHERE m.tenant_key = c.tenant_key AND m.adapter_id = c.adapter_id
RETURNING m.*;

-- name: LiveMailsyncOwners :many
-- The sync replicas whose heartbeat lease is alive. On Citus the leases
-- are a coordinator-local table, read on their own.
SELECT substr(name, 10)::text AS owner FROM leader_leases
WHERE name LIKE 'mailsync/%' AND expires_at > now()
ORDER BY name;

-- name: MailsyncCandidates :many
-- The sharded form of ClaimMailboxes' choice, a read without locks: up to
-- @lim enabled mailboxes of live adapters that neither @owner nor a live
-- replica (@live) owns, soonest due first. ClaimTenantMailboxes then takes
-- them tenant by tenant.
SELECT s.tenant_key, s.adapter_id FROM mailbox_sync s
JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id AND a.deleted_at IS NULL
WHERE s.enabled
  AND (s.lease_owner IS NULL OR (s.lease_owner <> @owner::text AND s.lease_owner <> ALL(@live::text[])))
ORDER BY s.next_sync_at
LIMIT @lim;

-- name: ClaimTenantMailboxes :many
-- Takes the given mailboxes of one tenant that are still unowned (as in
-- MailsyncCandidates), skipping rows another replica is claiming.
UPDATE mailbox_sync m SET lease_owner = @owner::text
FROM (
    SELECT s.tenant_key, s.adapter_id FROM mailbox_sync s
    JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id AND a.deleted_at IS NULL
    WHERE s.tenant_key = @tenant_key AND a.tenant_key = @tenant_key AND s.adapter_id = ANY(@ids::uuid[]) AND s.enabled
      AND (s.lease_owner IS NULL OR (s.lease_owner <> @owner::text AND s.lease_owner <> ALL(@live::text[])))
    FOR UPDATE OF s SKIP LOCKED
) c
WHERE m.tenant_key = @tenant_key AND m.tenant_key = c.tenant_key AND m.adapter_id = c.adapter_id
RETURNING m.*;

-- name: CountSyncedMailboxes :one
-- The enabled mailboxes of live adapters (MailsyncFleet's second count).
SELECT count(*)::bigint FROM mailbox_sync s
JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id
WHERE s.enabled AND a.deleted_at IS NULL;

-- name: OwnedMailboxChanges :many
-- What an owner must react to among the mailboxes it holds (parallel
-- arrays of keys): changed settings, a "sync now" request, or a mailbox it
-- may no longer sync (settings removed, disabled, adapter deleted, taken).
SELECT k.tenant_key::text AS tenant_key, k.adapter_id::uuid AS adapter_id,
       COALESCE(s.updated_at, now())::timestamptz AS updated_at, s.sync_requested_at,
       COALESCE(s.enabled AND a.deleted_at IS NULL AND s.lease_owner IS NOT DISTINCT FROM @owner::text, false)::boolean AS keep
FROM (SELECT t.tenant_key, i.adapter_id
      FROM unnest(@tenants::text[]) WITH ORDINALITY AS t(tenant_key, n)
      JOIN unnest(@ids::uuid[]) WITH ORDINALITY AS i(adapter_id, n) ON i.n = t.n) k
LEFT JOIN mailbox_sync s ON s.tenant_key = k.tenant_key AND s.adapter_id = k.adapter_id
LEFT JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id
WHERE s.adapter_id IS NULL OR s.updated_at > @since OR s.sync_requested_at IS NOT NULL OR NOT s.enabled
   OR a.deleted_at IS NOT NULL OR s.lease_owner IS DISTINCT FROM @owner::text;

-- name: OwnedMailboxStates :many
-- The sharded form of OwnedMailboxChanges, a read pruned to the tenants'
-- shards: the rows of the given mailboxes (tenants and ids as two sets;
-- the store matches the pairs, filters the changes and reports the
-- missing mailboxes).
SELECT s.tenant_key, s.adapter_id, s.updated_at, s.sync_requested_at,
       (s.enabled AND a.deleted_at IS NULL AND s.lease_owner IS NOT DISTINCT FROM @owner::text)::boolean AS keep
FROM mailbox_sync s
JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id
WHERE s.tenant_key = ANY(@tenants::text[]) AND s.adapter_id = ANY(@ids::uuid[]);

-- name: ReleaseMailboxes :exec
UPDATE mailbox_sync SET lease_owner = NULL WHERE lease_owner = @owner::text;

-- name: SaveMailboxSync :execrows
UPDATE mailbox_sync SET state = @state, failures = @failures, last_attempt_at = @last_attempt_at,
    last_success_at = @last_success_at, last_error = @last_error, last_error_reason = @last_error_reason,
    last_error_at = @last_error_at, cursors = @cursors, next_sync_at = @next_sync_at,
    fetched = fetched + @fetched, candidates = candidates + @candidates, applied = applied + @applied, skipped = skipped + @skipped,
    sync_requested_at = CASE WHEN sync_requested_at <= @started_at THEN NULL ELSE sync_requested_at END
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND lease_owner = @owner::text;

-- name: OursMessageIDs :many
-- Which of these Message-IDs (with angle brackets, as step_executions
-- stores them) did this adapter send?
SELECT out_message_id::text FROM step_executions
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND out_message_id = ANY(@ids::text[]);

-- name: EnrolledAddresses :many
SELECT DISTINCT email_norm FROM enrollments
WHERE tenant_key = @tenant_key AND email_norm = ANY(@emails::text[]);

-- name: MailsyncFleet :one
-- Live sync replicas and the enabled mailboxes of live adapters: each
-- replica aims at its share.
SELECT (SELECT count(*) FROM leader_leases WHERE name LIKE 'mailsync/%' AND expires_at > now())::bigint AS replicas,
       (SELECT count(*) FROM mailbox_sync s JOIN adapters a ON a.tenant_key = s.tenant_key AND a.id = s.adapter_id
        WHERE s.enabled AND a.deleted_at IS NULL)::bigint AS mailboxes;

-- name: ReleaseMailbox :exec
UPDATE mailbox_sync SET lease_owner = NULL
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND lease_owner = @owner::text;
