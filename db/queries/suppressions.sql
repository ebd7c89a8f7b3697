-- name: UpsertSuppression :one
INSERT INTO suppressions (tenant_key, id, kind, value, reason, source, created_at)
VALUES (@tenant_key, @id, @kind, @value, @reason, @source, @now)
ON CONFLICT (tenant_key, kind, value) DO UPDATE SET kind = EXCLUDED.kind
RETURNING *;

-- name: ListSuppressions :many
SELECT * FROM suppressions
WHERE tenant_key = @tenant_key AND id > @after
  AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind))
  AND (sqlc.narg(value)::text IS NULL OR value = sqlc.narg(value))
ORDER BY id
LIMIT @lim;

-- name: DeleteSuppression :execrows
DELETE FROM suppressions WHERE tenant_key = $1 AND kind = $2 AND value = $3;

-- name: IsSuppressed :one
SELECT EXISTS (
    SELECT 1 FROM suppressions
    WHERE tenant_key = @tenant_key
      AND ((kind = 'email' AND value = @email) OR (kind = 'domain' AND value = @domain))
);
