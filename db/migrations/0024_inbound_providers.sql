-- Per-tenant verification material of the ESP event webhooks
-- (POST /v1/inbound/events/{provider}, docs/ingest.md#esp-event-webhooks):
-- settings holds what is not secret (SES topic ARNs, the Postmark
-- username), secret the vault-sealed secret (never returned by the API).
CREATE TABLE inbound_providers (
    tenant_key text NOT NULL REFERENCES tenants (tenant_key),
    provider   text NOT NULL,
    settings   jsonb NOT NULL DEFAULT '{}',
    secret     bytea,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, provider)
);
