-- name: CreateTenant :one
INSERT INTO tenants (tenant_key, name) VALUES ($1, $2)
ON CONFLICT (tenant_key) DO NOTHING
RETURNING *;

-- name: GetTenant :one
SELECT * FROM tenants WHERE tenant_key = $1;

-- name: CreateAPIKey :one
INSERT INTO api_keys (tenant_key, id, name, key_hash, hint)
VALUES ($1, $2, $3, $4, $5)
RETURNING *;

-- name: ListAPIKeys :many
SELECT * FROM api_keys WHERE tenant_key = $1 ORDER BY id;

-- name: RevokeAPIKey :one
UPDATE api_keys SET revoked_at = coalesce(revoked_at, @now::timestamptz)
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: AuthenticateAPIKey :one
UPDATE api_keys SET last_used_at = now()
WHERE tenant_key = $1 AND key_hash = $2 AND revoked_at IS NULL
RETURNING id;

-- name: APIKeyActive :one
-- Whether a key still authenticates (it exists and is not revoked): the
-- dashboard asks on every request of a session opened with the key. A
-- primary-key lookup.
SELECT EXISTS (
    SELECT 1 FROM api_keys WHERE tenant_key = $1 AND id = $2 AND revoked_at IS NULL
);
