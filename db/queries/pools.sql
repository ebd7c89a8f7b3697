-- name: CreatePool :one
INSERT INTO pools (tenant_key, id, name, on_pin_unavailable, provider_matching, created_at, updated_at)
VALUES (@tenant_key, @id, @name, @on_pin_unavailable, @provider_matching, @now, @now)
RETURNING *;

-- name: GetPool :one
SELECT * FROM pools WHERE tenant_key = $1 AND id = $2 AND deleted_at IS NULL;

-- name: GetPoolForUpdate :one
SELECT * FROM pools WHERE tenant_key = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE;

-- name: ListPools :many
SELECT * FROM pools
WHERE tenant_key = @tenant_key AND deleted_at IS NULL AND id > @after
ORDER BY id
LIMIT @lim;

-- name: UpdatePool :one
UPDATE pools SET name = @name, on_pin_unavailable = @on_pin_unavailable, provider_matching = @provider_matching, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND deleted_at IS NULL
RETURNING *;

-- name: SoftDeletePool :execrows
UPDATE pools SET deleted_at = @now::timestamptz, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND deleted_at IS NULL;

-- name: ListPoolMembers :many
SELECT * FROM pool_members WHERE tenant_key = $1 AND pool_id = $2 ORDER BY id;

-- name: ListMembersForPools :many
SELECT * FROM pool_members WHERE tenant_key = @tenant_key AND pool_id = ANY(@pool_ids::uuid[]) ORDER BY pool_id, id;

-- name: AddPoolMember :one
INSERT INTO pool_members (tenant_key, pool_id, adapter_id, id, weight, class, active, created_at, updated_at)
VALUES (@tenant_key, @pool_id, @adapter_id, @id, @weight, @class, @active, @now, @now)
ON CONFLICT (tenant_key, pool_id, adapter_id) DO NOTHING
RETURNING *;

-- name: UpdatePoolMember :one
UPDATE pool_members SET weight = @weight, class = @class, active = @active, updated_at = @now
WHERE tenant_key = @tenant_key AND pool_id = @pool_id AND adapter_id = @adapter_id
RETURNING *;

-- name: GetPoolMember :one
SELECT * FROM pool_members WHERE tenant_key = $1 AND pool_id = $2 AND adapter_id = $3;

-- name: DeletePoolMember :execrows
DELETE FROM pool_members WHERE tenant_key = $1 AND pool_id = $2 AND adapter_id = $3;
