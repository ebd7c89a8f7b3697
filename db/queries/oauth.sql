-- name: CreateOAuthApp :one
INSERT INTO oauth_apps (tenant_key, id, name, provider, client_id, client_secret, auth_url, token_url, scopes,
    smtp_host, smtp_port, imap_host, imap_port, created_at, updated_at)
VALUES (@tenant_key, @id, @name, @provider, @client_id, @client_secret, @auth_url, @token_url, @scopes,
    @smtp_host, @smtp_port, @imap_host, @imap_port, @now, @now)
RETURNING *;

-- name: GetOAuthApp :one
SELECT * FROM oauth_apps WHERE tenant_key = $1 AND id = $2 AND deleted_at IS NULL;

-- name: GetOAuthAppForUpdate :one
SELECT * FROM oauth_apps WHERE tenant_key = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE;

-- name: ListOAuthApps :many
SELECT * FROM oauth_apps
WHERE tenant_key = @tenant_key AND deleted_at IS NULL AND id > @after
ORDER BY id
LIMIT @lim;

-- name: CountOAuthAppAdapters :one
SELECT count(*) FROM adapters WHERE tenant_key = $1 AND oauth_app_id = $2 AND deleted_at IS NULL;

-- name: SoftDeleteOAuthApp :execrows
UPDATE oauth_apps SET deleted_at = @now::timestamptz, client_secret = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND deleted_at IS NULL;

-- name: SetAdapterAuth :exec
UPDATE adapters SET auth = @auth, oauth_app_id = sqlc.narg(oauth_app_id), updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id;

-- name: GetOAuthToken :one
SELECT * FROM oauth_tokens WHERE tenant_key = $1 AND adapter_id = $2;

-- name: GetOAuthTokenForUpdate :one
SELECT * FROM oauth_tokens WHERE tenant_key = $1 AND adapter_id = $2 FOR UPDATE;

-- name: PutOAuthGrant :one
INSERT INTO oauth_tokens (tenant_key, adapter_id, refresh_token, access_token, access_expires_at, state,
    connected_at, refreshed_at, updated_at)
VALUES (@tenant_key, @adapter_id, @refresh_token, @access_token, @access_expires_at, 'connected', @now, @now, @now)
ON CONFLICT (tenant_key, adapter_id) DO UPDATE SET
    refresh_token = excluded.refresh_token, access_token = excluded.access_token,
    access_expires_at = excluded.access_expires_at, state = 'connected', connected_at = excluded.connected_at,
    refreshed_at = excluded.refreshed_at, last_error = NULL, prior_health_state = NULL, prior_resting_until = NULL,
    refresh_lease_id = NULL, refresh_lease_until = NULL, updated_at = excluded.updated_at
RETURNING *;

-- name: StoreRefreshedToken :execrows
-- Stores a refresh's result when the grant still holds the refresh token
-- it was made with (used), and ends the refresher's lease.
UPDATE oauth_tokens SET refresh_token = @refresh_token, access_token = @access_token,
    access_expires_at = @access_expires_at, refreshed_at = @now::timestamptz, refresh_count = refresh_count + 1,
    last_error = NULL, refresh_lease_id = NULL, refresh_lease_until = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND state = 'connected' AND refresh_token = @used;

-- name: LeaseOAuthRefresh :one
-- One replica at a time refreshes a grant: the lease is taken when no live
-- one is held (a crashed refresher's lease runs out).
UPDATE oauth_tokens SET refresh_lease_id = @lease_id, refresh_lease_until = @until::timestamptz
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND state = 'connected'
  AND (refresh_lease_until IS NULL OR refresh_lease_until <= @now::timestamptz)
RETURNING *;

-- name: ReleaseOAuthRefresh :exec
UPDATE oauth_tokens SET refresh_lease_id = NULL, refresh_lease_until = NULL
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND refresh_lease_id = @lease_id;

-- name: SetOAuthTokenError :exec
UPDATE oauth_tokens SET last_error = @last_error, updated_at = @now
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id;

-- name: ClearOAuthAccessToken :exec
UPDATE oauth_tokens SET access_token = NULL, access_expires_at = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id AND access_token IS NOT NULL;

-- name: MarkReconnectRequired :exec
UPDATE oauth_tokens SET state = 'reconnect_required', access_token = NULL, access_expires_at = NULL,
    refresh_lease_id = NULL, refresh_lease_until = NULL,
    last_error = @last_error, prior_health_state = @prior_health_state,
    prior_resting_until = sqlc.narg(prior_resting_until), updated_at = @now
WHERE tenant_key = @tenant_key AND adapter_id = @adapter_id;

-- name: HoldForReconnect :one
UPDATE adapters SET health_state = 'resting', reconnect_required = true, resting_until = NULL,
    health_since = @now, next_send_at = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: ReleaseReconnect :one
UPDATE adapters SET health_state = @health_state::text, reconnect_required = false,
    resting_until = sqlc.narg(resting_until)::timestamptz, health_since = @now::timestamptz,
    healthy_since = CASE WHEN @health_state::text IN ('active', 'ramping') THEN @now::timestamptz ELSE healthy_since END,
    adapter_failures = 0, auth_failures = 0, next_send_at = NULL, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: CreateOAuthState :exec
INSERT INTO oauth_states (tenant_key, id, adapter_id, verifier, expires_at, created_at)
VALUES (@tenant_key, @id, @adapter_id, @verifier, @expires_at, @now);

-- name: ConsumeOAuthState :one
UPDATE oauth_states SET used_at = @now::timestamptz
WHERE tenant_key = @tenant_key AND id = @id AND adapter_id = @adapter_id AND used_at IS NULL AND expires_at > @now
RETURNING *;

-- name: DeleteExpiredOAuthStates :execrows
DELETE FROM oauth_states WHERE tenant_key = @tenant_key AND expires_at < @before;
