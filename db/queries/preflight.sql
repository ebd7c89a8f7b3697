-- name: EnsureSenderDomain :exec
INSERT INTO sender_domains (tenant_key, domain, next_check_at, created_at, updated_at)
VALUES (@tenant_key, @domain, @now, @now, @now)
ON CONFLICT (tenant_key, domain) DO NOTHING;

-- name: GetSenderDomain :one
SELECT * FROM sender_domains WHERE tenant_key = $1 AND domain = $2;

-- name: ListSenderDomains :many
SELECT * FROM sender_domains
WHERE tenant_key = @tenant_key AND domain > @after
ORDER BY domain
LIMIT @lim;

-- name: DueSenderDomains :many
SELECT * FROM sender_domains
WHERE tenant_key = @tenant_key AND next_check_at <= @now
ORDER BY next_check_at
LIMIT @lim;

-- name: SetSenderDomainSettings :exec
UPDATE sender_domains SET dkim_selectors = @dkim_selectors, provider_set = @provider_set, updated_at = @now
WHERE tenant_key = @tenant_key AND domain = @domain;

-- name: SaveSenderDomain :one
UPDATE sender_domains SET
    status = @status, checked = true, checks = @checks, provider = @provider, checked_at = @now::timestamptz,
    expires_at = @expires_at, next_check_at = @next_check_at, updated_at = @now::timestamptz,
    failing_since = CASE WHEN @status::text = 'fail' THEN coalesce(failing_since, @now::timestamptz) ELSE NULL END
WHERE tenant_key = @tenant_key AND domain = @domain
RETURNING *;

-- name: AdaptersOfDomain :many
SELECT * FROM adapters
WHERE tenant_key = @tenant_key AND deleted_at IS NULL AND lower(split_part(from_address, '@', 2)) = @domain::text
ORDER BY id;

-- name: ExtendRest :exec
UPDATE adapters SET resting_until = greatest(resting_until, @until::timestamptz), updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND health_state = 'resting';

-- name: GetRequireDomainAuth :one
SELECT require_domain_auth FROM tenants WHERE tenant_key = $1;

-- name: SetRequireDomainAuth :one
UPDATE tenants SET require_domain_auth = @require_domain_auth WHERE tenant_key = @tenant_key
RETURNING require_domain_auth;

-- name: CachedRecipientDomains :many
SELECT * FROM recipient_domains
WHERE tenant_key = @tenant_key AND domain = ANY(@domains::text[]) AND expires_at > @now;

-- name: SaveRecipientDomains :exec
INSERT INTO recipient_domains (tenant_key, domain, status, code, provider, evidence, checked_at, expires_at)
SELECT @tenant_key::text, u.domain, u.status, u.code, u.provider, u.evidence::jsonb, u.checked_at, u.expires_at
FROM (SELECT unnest(@domains::text[]) AS domain, unnest(@statuses::text[]) AS status, unnest(@codes::text[]) AS code,
             unnest(@providers::text[]) AS provider, unnest(@evidence::text[]) AS evidence,
             unnest(@checked_at::timestamptz[]) AS checked_at, unnest(@expires_at::timestamptz[]) AS expires_at) u
ON CONFLICT (tenant_key, domain) DO UPDATE SET
    status = excluded.status, code = excluded.code, provider = excluded.provider, evidence = excluded.evidence,
    checked_at = excluded.checked_at, expires_at = excluded.expires_at;

-- name: SetMailboxProvider :exec
UPDATE adapters SET mailbox_provider = @mailbox_provider
WHERE tenant_key = @tenant_key AND id = @id;

-- name: ProviderUsage :many
-- Today's sends of capped providers per adapter (adapter-local days).
SELECT u.adapter_id, u.provider, u.sent
FROM (SELECT unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@days::date[]) AS day) k
JOIN adapter_provider_usage u ON u.tenant_key = @tenant_key AND u.adapter_id = k.adapter_id AND u.day = k.day;

-- name: AddProviderUsage :exec
-- The rows are joined to the tenant's adapters so that Citus runs the
-- statement on the tenant's shard (docs/scaling.md#writing-queries-that-shard).
INSERT INTO adapter_provider_usage (tenant_key, adapter_id, day, provider, sent)
SELECT a.tenant_key, a.id, r.day, r.provider, count(*)::int
FROM (SELECT unnest(@adapter_ids::uuid[]) AS adapter_id, unnest(@days::date[]) AS day, unnest(@providers::text[]) AS provider) r
JOIN adapters a ON a.tenant_key = @tenant_key::text AND a.id = r.adapter_id
GROUP BY a.tenant_key, a.id, r.day, r.provider
ON CONFLICT (tenant_key, adapter_id, day, provider) DO UPDATE SET sent = adapter_provider_usage.sent + excluded.sent;

-- name: SetProviderCaps :exec
UPDATE adapters SET provider_caps = @provider_caps WHERE tenant_key = @tenant_key AND id = @id;

-- name: ForecastProviderUsage :many
SELECT u.adapter_id, u.day, u.provider, u.sent FROM adapter_provider_usage u
WHERE u.tenant_key = @tenant_key AND u.day >= @since::date;

-- name: ReleaseProviderUsage :exec
-- A reservation given back (temporary failure, adapter failure, rescue)
-- frees its place under the provider cap too.
UPDATE adapter_provider_usage u SET sent = greatest(u.sent - 1, 0)
FROM enrollments e
WHERE u.tenant_key = @tenant_key AND u.adapter_id = @adapter_id AND u.day = @day
  AND e.tenant_key = @tenant_key AND e.id = @enrollment_id AND u.provider = e.recipient_provider;

-- name: SaveSentDKIM :one
-- What mailbox sync saw on our own sent copy, with the checks and status
-- recomputed from it.
UPDATE sender_domains SET
    dkim_seen = @dkim_seen, checks = @checks, status = @status, updated_at = @now::timestamptz,
    failing_since = CASE WHEN @status::text = 'fail' THEN coalesce(failing_since, @now::timestamptz) ELSE NULL END
WHERE tenant_key = @tenant_key AND domain = @domain
RETURNING *;
