-- Adapter health (SPEC §5) and adapter-level failures (SPEC §6.1).

-- rest_streak: consecutive failures (breach, probe failure, AUTH) not yet
-- forgiven by 7 clean days; the rest of the n-th is 24 h × 2^(n−1), ≤ 7 days.
-- adapter_failures / auth_failures: consecutive sender-side send failures
-- (connection, TLS, AUTH, policy); reset by a successful send.
ALTER TABLE adapters
    ADD COLUMN rest_streak      integer NOT NULL DEFAULT 0 CHECK (rest_streak >= 0),
    ADD COLUMN adapter_failures integer NOT NULL DEFAULT 0 CHECK (adapter_failures >= 0),
    ADD COLUMN auth_failures    integer NOT NULL DEFAULT 0 CHECK (auth_failures >= 0);

-- GET /v1/enrollments?state=paused&pause_reason=step_failed
CREATE INDEX IF NOT EXISTS enrollments_pause_reason_idx ON enrollments (tenant_key, pause_reason) WHERE state = 'paused';

-- The health sweep counts an adapter's events by type over its window.
CREATE INDEX IF NOT EXISTS message_events_health_idx ON message_events (tenant_key, adapter_id, occurred_at, type)
    WHERE type IN ('sent', 'bounced', 'complained');
