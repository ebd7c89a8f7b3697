-- OAuth2 mailbox connections (docs/mailboxes.md): a tenant's OAuth apps,
-- an adapter's auth kind, its sealed tokens, and the single-use states of
-- the connect flow. Secrets and tokens are vault-sealed (AES-256-GCM with
-- the tenant and the row as associated data) and never returned.
CREATE TABLE oauth_apps (
    tenant_key    text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id            uuid NOT NULL,
    name          text NOT NULL,
    provider      text NOT NULL,
    client_id     text NOT NULL,
    client_secret bytea,
    auth_url      text NOT NULL,
    token_url     text NOT NULL,
    scopes        text[] NOT NULL,
    smtp_host     text NOT NULL DEFAULT '',
    smtp_port     integer NOT NULL DEFAULT 0,
    imap_host     text NOT NULL DEFAULT '',
    imap_port     integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    PRIMARY KEY (tenant_key, id)
);
ALTER TABLE oauth_apps ADD CONSTRAINT oauth_apps_provider_check CHECK (provider IN ('google', 'microsoft', 'custom'));

-- auth: how the adapter logs in to its server; oauth2 adapters name their app.
-- reconnect_required holds a resting adapter until it is reconnected: no
-- automatic probe, no resting_until.
ALTER TABLE adapters ADD COLUMN auth text NOT NULL DEFAULT 'password';
ALTER TABLE adapters ADD CONSTRAINT adapters_auth_check CHECK (auth IN ('password', 'oauth2'));
ALTER TABLE adapters ADD COLUMN oauth_app_id uuid;
ALTER TABLE adapters ADD CONSTRAINT adapters_oauth_app_fk FOREIGN KEY (tenant_key, oauth_app_id) REFERENCES oauth_apps (tenant_key, id);
ALTER TABLE adapters ADD CONSTRAINT adapters_oauth_app_check CHECK (auth <> 'oauth2' OR oauth_app_id IS NOT NULL);
ALTER TABLE adapters ADD COLUMN reconnect_required boolean NOT NULL DEFAULT false;
ALTER TABLE adapters DROP CONSTRAINT adapters_check;
ALTER TABLE adapters ADD CONSTRAINT adapters_resting_until_check CHECK (health_state <> 'resting' OR resting_until IS NOT NULL OR reconnect_required);
CREATE INDEX adapters_oauth_app_idx ON adapters (tenant_key, oauth_app_id) WHERE oauth_app_id IS NOT NULL AND deleted_at IS NULL;

-- One grant per adapter. access_token and its expiry are the cache every
-- replica shares; the row lock serializes refreshes. prior_* is the health
-- an adapter had when its grant died, restored by a reconnect.
CREATE TABLE oauth_tokens (
    tenant_key          text NOT NULL,
    adapter_id          uuid NOT NULL,
    refresh_token       bytea NOT NULL,
    access_token        bytea,
    access_expires_at   timestamptz,
    state               text NOT NULL,
    connected_at        timestamptz NOT NULL,
    refreshed_at        timestamptz,
    refresh_count       integer NOT NULL DEFAULT 0,
    last_error          text,
    prior_health_state  text,
    prior_resting_until timestamptz,
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, adapter_id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE
);
ALTER TABLE oauth_tokens ADD CONSTRAINT oauth_tokens_state_check CHECK (state IN ('connected', 'reconnect_required'));

-- Connect-flow states: single use (used_at), 10 minutes; the PKCE verifier sealed.
CREATE TABLE oauth_states (
    tenant_key  text NOT NULL,
    id          uuid NOT NULL,
    adapter_id  uuid NOT NULL,
    verifier    bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE
);
CREATE INDEX oauth_states_expiry_idx ON oauth_states (tenant_key, expires_at);
