-- name: PutInboundProvider :one
INSERT INTO inbound_providers (tenant_key, provider, settings, secret, created_at, updated_at)
VALUES (@tenant_key, @provider, @settings, @secret, @now, @now)
ON CONFLICT (tenant_key, provider) DO UPDATE SET settings = excluded.settings, secret = excluded.secret, updated_at = excluded.updated_at
RETURNING *;

-- name: GetInboundProvider :one
SELECT * FROM inbound_providers WHERE tenant_key = $1 AND provider = $2;
