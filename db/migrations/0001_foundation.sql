-- dripdrop foundation schema.
--
-- Every tenant table and every index on it leads with tenant_key, and every
-- foreign key between tenant tables is composite (tenant_key, id): a row can
-- never reference a row of another tenant, and a Citus cluster can shard all
-- of them by tenant_key without schema changes. Only schema_migrations and
-- leader_leases (engine bookkeeping, no tenant data) are global.

CREATE TABLE tenants (
    tenant_key text PRIMARY KEY CHECK (tenant_key ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    tenant_key   text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id           uuid NOT NULL,
    name         text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    key_hash     bytea NOT NULL CHECK (length(key_hash) = 32), -- SHA-256 of the secret
    hint         text NOT NULL,                                -- last characters, for humans
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_key, id)
);
CREATE UNIQUE INDEX api_keys_hash_idx ON api_keys (tenant_key, key_hash);

CREATE TABLE adapters (
    tenant_key           text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id                   uuid NOT NULL,
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    channel              text NOT NULL DEFAULT 'email' CHECK (channel IN ('email')),
    provider             text NOT NULL CHECK (provider IN ('smtp', 'sink')),
    from_address         text NOT NULL CHECK (length(from_address) BETWEEN 3 AND 254),
    from_name            text NOT NULL DEFAULT '' CHECK (length(from_name) <= 200),
    credentials          bytea,          -- AES-256-GCM, associated data tenant_key|id
    active               boolean NOT NULL DEFAULT true,
    timezone             text NOT NULL DEFAULT 'UTC',
    health_state         text NOT NULL CHECK (health_state IN ('active', 'ramping', 'probing', 'resting')),
    health_score         double precision CHECK (health_score BETWEEN 0 AND 1),
    health_since         timestamptz NOT NULL DEFAULT now(), -- entry into the current health_state
    healthy_since        timestamptz NOT NULL DEFAULT now(), -- last entry into active/ramping
    resting_until        timestamptz,
    rest_backoff_seconds integer NOT NULL DEFAULT 86400 CHECK (rest_backoff_seconds > 0),
    daily_cap            integer CHECK (daily_cap > 0),
    ramp_floor           integer NOT NULL DEFAULT 0 CHECK (ramp_floor >= 0),
    ramp_increment       integer CHECK (ramp_increment > 0),
    ramp_started_at      timestamptz,
    min_gap_seconds      integer NOT NULL DEFAULT 0 CHECK (min_gap_seconds >= 0),
    gap_jitter_seconds   integer NOT NULL DEFAULT 0 CHECK (gap_jitter_seconds >= 0),
    last_send_at         timestamptz,
    next_send_at         timestamptz,    -- adapter-level block: nothing is claimed for it before this
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,    -- soft delete keeps history and lets pins see "deleted"
    PRIMARY KEY (tenant_key, id),
    CHECK (health_state <> 'resting' OR resting_until IS NOT NULL)
);
CREATE INDEX adapters_list_idx ON adapters (tenant_key, id) WHERE deleted_at IS NULL;

-- Sends reserved per adapter-local day and sequence version (ramp and share caps).
CREATE TABLE adapter_daily_usage (
    tenant_key          text NOT NULL,
    adapter_id          uuid NOT NULL,
    day                 date NOT NULL,
    sequence_version_id uuid NOT NULL,
    sent                integer NOT NULL DEFAULT 0 CHECK (sent >= 0),
    PRIMARY KEY (tenant_key, adapter_id, day, sequence_version_id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE
);

CREATE TABLE pools (
    tenant_key         text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id                 uuid NOT NULL,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    on_pin_unavailable text NOT NULL DEFAULT 'pause' CHECK (on_pin_unavailable IN ('pause', 'reassign')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    PRIMARY KEY (tenant_key, id)
);
CREATE UNIQUE INDEX pools_name_idx ON pools (tenant_key, name) WHERE deleted_at IS NULL;

CREATE TABLE pool_members (
    tenant_key text NOT NULL,
    pool_id    uuid NOT NULL,
    adapter_id uuid NOT NULL,
    id         uuid NOT NULL, -- member id: WDRR iterates members in this order
    weight     integer NOT NULL DEFAULT 1 CHECK (weight > 0 AND weight <= 1000000),
    class      text NOT NULL DEFAULT 'mailbox' CHECK (class IN ('mailbox', 'esp_api')),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, pool_id, adapter_id),
    FOREIGN KEY (tenant_key, pool_id) REFERENCES pools (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX pool_members_id_idx ON pool_members (tenant_key, id);
CREATE INDEX pool_members_adapter_idx ON pool_members (tenant_key, adapter_id);

CREATE TABLE sequences (
    tenant_key text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id         uuid NOT NULL,
    key        text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id)
);
CREATE UNIQUE INDEX sequences_key_idx ON sequences (tenant_key, key);

CREATE TABLE sequence_versions (
    tenant_key      text NOT NULL,
    id              uuid NOT NULL,
    sequence_id     uuid NOT NULL,
    version         integer NOT NULL CHECK (version > 0),
    state           text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'active', 'archived')),
    mode            text NOT NULL DEFAULT 'outbound' CHECK (mode IN ('outbound')),
    pool_id         uuid NOT NULL,
    window_days     smallint[] NOT NULL DEFAULT '{1,2,3,4,5}'
                    CHECK (cardinality(window_days) BETWEEN 1 AND 7 AND window_days <@ '{0,1,2,3,4,5,6}'::smallint[]),
    window_start    smallint NOT NULL DEFAULT 480 CHECK (window_start BETWEEN 0 AND 1439),  -- minutes after local midnight
    window_end      smallint NOT NULL DEFAULT 1080 CHECK (window_end BETWEEN 0 AND 1439),
    window_timezone text NOT NULL DEFAULT 'UTC',
    stop_on_reply   boolean NOT NULL DEFAULT true,
    activated_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id),
    UNIQUE (tenant_key, sequence_id, version),
    UNIQUE (tenant_key, id, sequence_id), -- target of enrollments' (version, sequence) key
    FOREIGN KEY (tenant_key, sequence_id) REFERENCES sequences (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, pool_id) REFERENCES pools (tenant_key, id),
    CHECK (window_start <> window_end)
);
CREATE UNIQUE INDEX sequence_versions_one_active_idx ON sequence_versions (tenant_key, sequence_id) WHERE state = 'active';

CREATE TABLE steps (
    tenant_key          text NOT NULL,
    id                  uuid NOT NULL,
    sequence_version_id uuid NOT NULL,
    key                 text NOT NULL CHECK (key ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
    position            integer NOT NULL CHECK (position > 0),
    delay_seconds       bigint NOT NULL DEFAULT 0 CHECK (delay_seconds BETWEEN 0 AND 31536000),
    subject             text NOT NULL DEFAULT '' CHECK (octet_length(subject) <= 65536),
    body_text           text NOT NULL CHECK (octet_length(body_text) <= 65536),
    body_html           text CHECK (octet_length(body_html) <= 65536),
    spintax             boolean NOT NULL DEFAULT true,
    adapter_override_id uuid,
    PRIMARY KEY (tenant_key, id),
    UNIQUE (tenant_key, sequence_version_id, key),
    UNIQUE (tenant_key, sequence_version_id, position),
    FOREIGN KEY (tenant_key, sequence_version_id) REFERENCES sequence_versions (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, adapter_override_id) REFERENCES adapters (tenant_key, id)
);

CREATE TABLE budgets (
    tenant_key          text NOT NULL,
    adapter_id          uuid NOT NULL,
    sequence_version_id uuid NOT NULL,
    max_share_pct       integer NOT NULL DEFAULT 100 CHECK (max_share_pct BETWEEN 1 AND 100),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, adapter_id, sequence_version_id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, sequence_version_id) REFERENCES sequence_versions (tenant_key, id) ON DELETE CASCADE
);

-- Smooth weighted round robin state per (pool, sequence version, member).
CREATE TABLE wdrr_counters (
    tenant_key          text NOT NULL,
    pool_id             uuid NOT NULL,
    sequence_version_id uuid NOT NULL,
    adapter_id          uuid NOT NULL,
    counter             bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_key, pool_id, sequence_version_id, adapter_id),
    FOREIGN KEY (tenant_key, pool_id, adapter_id) REFERENCES pool_members (tenant_key, pool_id, adapter_id) ON DELETE CASCADE
);

CREATE TABLE enrollments (
    tenant_key          text NOT NULL,
    id                  uuid NOT NULL,
    sequence_id         uuid NOT NULL,
    sequence_version_id uuid NOT NULL,
    email               text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    email_norm          text GENERATED ALWAYS AS (lower(email)) STORED,
    first_name          text CHECK (length(first_name) <= 200),
    last_name           text CHECK (length(last_name) <= 200),
    company             text CHECK (length(company) <= 200),
    timezone            text,
    vars                jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(vars) = 'object'),
    state               text NOT NULL DEFAULT 'active'
                        CHECK (state IN ('active', 'paused', 'completed', 'stopped', 'cancelled')),
    stop_reason         text CHECK (stop_reason IN ('replied', 'bounced', 'complained', 'unsubscribed', 'suppressed', 'company_replied')),
    pause_reason        text,
    adapter_id          uuid NOT NULL, -- the pin
    thread_no           integer NOT NULL DEFAULT 1 CHECK (thread_no > 0), -- bumped on repin: new thread
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    ended_at            timestamptz,
    PRIMARY KEY (tenant_key, id),
    -- One key checks both the version and that it belongs to sequence_id.
    FOREIGN KEY (tenant_key, sequence_version_id, sequence_id) REFERENCES sequence_versions (tenant_key, id, sequence_id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id),
    CHECK ((state = 'stopped') = (stop_reason IS NOT NULL))
);
CREATE UNIQUE INDEX enrollments_live_contact_idx ON enrollments (tenant_key, sequence_id, email_norm)
    WHERE state IN ('active', 'paused');
CREATE INDEX enrollments_adapter_idx ON enrollments (tenant_key, adapter_id) WHERE state IN ('active', 'paused');

CREATE TABLE step_executions (
    tenant_key          text NOT NULL,
    id                  uuid NOT NULL,
    enrollment_id       uuid NOT NULL,
    step_id             uuid NOT NULL,
    state               text NOT NULL DEFAULT 'scheduled'
                        CHECK (state IN ('scheduled', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    scheduled_for       timestamptz NOT NULL,
    attempt             integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    attempt_window      integer NOT NULL DEFAULT 0 CHECK (attempt_window >= 0),
    adapter_id          uuid NOT NULL, -- sender: the pin (kept in step with repins) or the step override
    followup            boolean NOT NULL DEFAULT false, -- not the first step: dispatched before first touches
    thread_no           integer,       -- thread this message belongs to (NULL for override sends)
    subject             text,          -- rendered subject as sent (threads reuse the first one)
    out_message_id      text,          -- RFC 5322 Message-ID with angle brackets, reused by every retry
    provider_message_id text,
    lease_expires_at    timestamptz,   -- while sending: when the rescuer may retry it
    claimed_until       timestamptz,   -- a worker has claimed it until then
    reserved_day        date,          -- adapter-local day whose counters the send reserved
    rescues             integer NOT NULL DEFAULT 0, -- times a stale "sending" was rescued (possible duplicates)
    defer_reason        text,
    defer_until         timestamptz,
    error_code          text,
    error               text,
    sent_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id),
    UNIQUE (tenant_key, enrollment_id, step_id, attempt_window),
    FOREIGN KEY (tenant_key, enrollment_id) REFERENCES enrollments (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, step_id) REFERENCES steps (tenant_key, id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id),
    CHECK (state <> 'sending' OR (out_message_id IS NOT NULL AND lease_expires_at IS NOT NULL))
);
CREATE UNIQUE INDEX step_executions_message_id_idx ON step_executions (tenant_key, out_message_id)
    WHERE out_message_id IS NOT NULL;
-- The claim reads due work per ready adapter: blocked adapters' backlogs are never scanned.
CREATE INDEX step_executions_due_idx ON step_executions (tenant_key, adapter_id, followup DESC, scheduled_for)
    WHERE state = 'scheduled';
CREATE INDEX step_executions_sending_idx ON step_executions (tenant_key, lease_expires_at) WHERE state = 'sending';
CREATE INDEX step_executions_provider_id_idx ON step_executions (tenant_key, provider_message_id)
    WHERE provider_message_id IS NOT NULL;

CREATE TABLE message_events (
    tenant_key          text NOT NULL,
    id                  uuid NOT NULL,
    type                text NOT NULL CHECK (type IN ('sent', 'bounced', 'complained', 'replied', 'ooo',
                                                      'auto_reply', 'unsubscribed', 'deferred')),
    subtype             text CHECK (subtype IN ('hard', 'soft')),
    adapter_id          uuid,
    step_execution_id   uuid,
    enrollment_id       uuid,
    sequence_version_id uuid,
    reason              text,
    data                jsonb NOT NULL DEFAULT '{}',
    occurred_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id)
);
CREATE INDEX message_events_adapter_idx ON message_events (tenant_key, adapter_id, occurred_at);
CREATE UNIQUE INDEX message_events_one_sent_idx ON message_events (tenant_key, step_execution_id) WHERE type = 'sent';
CREATE INDEX message_events_execution_idx ON message_events (tenant_key, step_execution_id);

CREATE TABLE inbound_messages (
    tenant_key        text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id                uuid NOT NULL,
    provider          text NOT NULL CHECK (length(provider) BETWEEN 1 AND 64),
    message_id        text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 998),
    adapter_id        uuid,
    in_reply_to       text,
    refs              text[] NOT NULL DEFAULT '{}',
    from_address      text NOT NULL,
    subject           text,
    body_text         text, -- capped at ingest
    headers           jsonb NOT NULL DEFAULT '{}',
    intent            text NOT NULL CHECK (intent IN ('reply', 'ooo', 'auto_reply', 'bounce', 'complaint', 'unsubscribe')),
    intent_data       jsonb NOT NULL DEFAULT '{}',
    correlation       text NOT NULL, -- in_reply_to | references | provider_message_id | dsn | unmatched
    step_execution_id uuid,
    enrollment_id     uuid,
    received_at       timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id)
);
CREATE UNIQUE INDEX inbound_messages_dedup_idx ON inbound_messages (tenant_key, provider, message_id);

CREATE TABLE suppressions (
    tenant_key text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id         uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('email', 'domain')),
    value      text NOT NULL CHECK (value = lower(value) AND length(value) BETWEEN 1 AND 254),
    reason     text NOT NULL CHECK (reason IN ('bounce', 'complaint', 'unsubscribe', 'manual')),
    source     text NOT NULL DEFAULT '' CHECK (length(source) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id)
);
CREATE UNIQUE INDEX suppressions_value_idx ON suppressions (tenant_key, kind, value);

CREATE TABLE audit_log (
    tenant_key  text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id          uuid NOT NULL,
    entity_type text NOT NULL,
    entity_id   uuid NOT NULL,
    action      text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    actor       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id)
);
CREATE INDEX audit_log_entity_idx ON audit_log (tenant_key, entity_type, entity_id, created_at);

-- Telemetry outbox: written in the same transaction as the state change it reports.
CREATE TABLE telemetry_outbox (
    tenant_key   text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    name         text NOT NULL,
    measurements jsonb NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    occurred_at  timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fanned_out', 'no_match')),
    PRIMARY KEY (tenant_key, id)
);
CREATE INDEX telemetry_outbox_pending_idx ON telemetry_outbox (tenant_key, id) WHERE status = 'pending';

CREATE TABLE webhook_subscriptions (
    tenant_key text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    id         uuid NOT NULL,
    url        text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    events     text[] NOT NULL DEFAULT '{}', -- name prefixes; empty = all
    secret     bytea NOT NULL,               -- encrypted
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, id)
);

CREATE TABLE webhook_deliveries (
    tenant_key      text NOT NULL,
    subscription_id uuid NOT NULL,
    event_id        bigint NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    PRIMARY KEY (tenant_key, subscription_id, event_id),
    FOREIGN KEY (tenant_key, subscription_id) REFERENCES webhook_subscriptions (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, event_id) REFERENCES telemetry_outbox (tenant_key, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (tenant_key, next_attempt_at) WHERE status = 'pending';

CREATE TABLE idempotency_keys (
    tenant_key    text NOT NULL REFERENCES tenants (tenant_key) ON DELETE CASCADE,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method        text NOT NULL,
    path          text NOT NULL,
    request_hash  bytea NOT NULL,
    status        integer,   -- NULL while the first request is in flight
    content_type  text,
    response_body bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_key, key)
);
CREATE INDEX idempotency_keys_age_idx ON idempotency_keys (tenant_key, created_at);

-- Engine bookkeeping (not tenant data).
CREATE TABLE leader_leases (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
