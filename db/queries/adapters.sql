-- name: CreateAdapter :one
INSERT INTO adapters (
    tenant_key, id, name, channel, provider, from_address, from_name, credentials, active, timezone,
    health_state, health_score, daily_cap, ramp_floor, ramp_increment, ramp_started_at,
    min_gap_seconds, gap_jitter_seconds, max_in_flight, auth, oauth_app_id, health_since, healthy_since, created_at, updated_at
) VALUES (
    @tenant_key, @id, @name, @channel, @provider, @from_address, @from_name, @credentials, @active, @timezone,
    @health_state, @health_score, @daily_cap, @ramp_floor, @ramp_increment, @ramp_started_at,
    @min_gap_seconds, @gap_jitter_seconds, sqlc.narg(max_in_flight), @auth, sqlc.narg(oauth_app_id), @now, @now, @now, @now
)
RETURNING *;

-- name: GetAdapter :one
SELECT * FROM adapters WHERE tenant_key = $1 AND id = $2 AND deleted_at IS NULL;

-- name: GetAdapterForUpdate :one
SELECT * FROM adapters WHERE tenant_key = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE;

-- name: ListAdapters :many
SELECT * FROM adapters
WHERE tenant_key = @tenant_key AND deleted_at IS NULL AND id > @after
ORDER BY id
LIMIT @lim;

-- name: UpdateAdapter :one
UPDATE adapters SET
    name = @name, from_address = @from_address, from_name = @from_name, credentials = @credentials,
    active = @active, timezone = @timezone, daily_cap = @daily_cap, ramp_floor = @ramp_floor,
    ramp_increment = @ramp_increment, ramp_started_at = @ramp_started_at,
    min_gap_seconds = @min_gap_seconds, gap_jitter_seconds = @gap_jitter_seconds, max_in_flight = sqlc.narg(max_in_flight),
    auth = @auth, oauth_app_id = sqlc.narg(oauth_app_id), updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND deleted_at IS NULL
RETURNING *;

-- name: SoftDeleteAdapter :execrows
UPDATE adapters SET deleted_at = @now::timestamptz, active = false, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND deleted_at IS NULL;

