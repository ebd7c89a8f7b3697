-- Telemetry subscriptions (SPEC §9): the outbox feed's never-skip column,
-- subscription state, delivery leases and the per-attempt delivery log.

-- The writer's transaction id: the feed is ordered by (writer_xid, id) and
-- publishes only rows whose writer is older than every transaction still in
-- progress, so an event committed after a later one is never skipped.
ALTER TABLE telemetry_outbox ADD COLUMN writer_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX telemetry_outbox_feed_idx ON telemetry_outbox (tenant_key, writer_xid, id);
CREATE INDEX telemetry_outbox_age_idx ON telemetry_outbox (tenant_key, occurred_at);

ALTER TABLE webhook_subscriptions
    ADD COLUMN disabled_reason text,
    ADD COLUMN failing_since   timestamptz,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
CREATE INDEX webhook_subscriptions_active_idx ON webhook_subscriptions (tenant_key) WHERE active;

ALTER TABLE webhook_deliveries
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_status integer;

CREATE TABLE webhook_delivery_attempts (
    tenant_key       text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    subscription_id  uuid NOT NULL,
    event_id         bigint NOT NULL,
    attempt          integer NOT NULL,
    status_code      integer,          -- NULL: no HTTP response
    latency_ms       integer NOT NULL,
    response_snippet text NOT NULL DEFAULT '',
    error            text,
    attempted_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, id),
    FOREIGN KEY (tenant_key, subscription_id) REFERENCES webhook_subscriptions (tenant_key, id) ON DELETE CASCADE
);
CREATE INDEX webhook_delivery_attempts_sub_idx ON webhook_delivery_attempts (tenant_key, subscription_id, id DESC);
CREATE INDEX webhook_delivery_attempts_age_idx ON webhook_delivery_attempts (tenant_key, attempted_at);
