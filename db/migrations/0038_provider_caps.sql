-- Per-provider daily caps of an adapter (docs/preflight.md#provider-aware-sending):
-- provider_caps maps a recipient provider (google, microsoft, …) to the most
-- sends to it per adapter-local day; adapter_provider_usage counts the
-- reserved sends of capped providers, under the adapter's row lock like
-- adapter_daily_usage.
ALTER TABLE adapters ADD COLUMN provider_caps jsonb NOT NULL DEFAULT '{}';

CREATE TABLE adapter_provider_usage (
    tenant_key text NOT NULL,
    adapter_id uuid NOT NULL,
    day        date NOT NULL,
    provider   text NOT NULL,
    sent       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_key, adapter_id, day, provider),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id)
);
