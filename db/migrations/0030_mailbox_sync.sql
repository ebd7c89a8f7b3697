-- Mailbox sync (docs/ingest.md#mailbox-sync): one row per adapter with IMAP
-- settings. The row holds the settings, the schedule (next_sync_at, a
-- "sync now" request), which replica owns the mailbox (lease_owner, valid
-- while that replica's leader_leases row 'mailsync/<owner>' is unexpired, so
-- an idle poll writes nothing), the outcome of the last syncs and the
-- per-folder cursors (UIDVALIDITY, last UID, HIGHESTMODSEQ) as JSON.
CREATE TABLE mailbox_sync (
    tenant_key        text NOT NULL,
    adapter_id        uuid NOT NULL,
    host              text NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
    port              integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    tls               text NOT NULL CHECK (tls IN ('tls', 'starttls', 'none')),
    username          text NOT NULL DEFAULT '' CHECK (length(username) <= 320),
    folders           text[] NOT NULL DEFAULT '{}',
    interval_seconds  integer NOT NULL DEFAULT 60 CHECK (interval_seconds BETWEEN 10 AND 86400),
    enabled           boolean NOT NULL DEFAULT true,
    tls_ca_pem        text NOT NULL DEFAULT '',
    next_sync_at      timestamptz NOT NULL,
    sync_requested_at timestamptz,
    lease_owner       text,
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'ok', 'failing', 'throttled')),
    failures          integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_attempt_at   timestamptz,
    last_success_at   timestamptz,
    last_error        text NOT NULL DEFAULT '',
    last_error_reason text NOT NULL DEFAULT '',
    last_error_at     timestamptz,
    cursors           jsonb NOT NULL DEFAULT '{}',
    fetched           bigint NOT NULL DEFAULT 0,
    candidates        bigint NOT NULL DEFAULT 0,
    applied           bigint NOT NULL DEFAULT 0,
    skipped           bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, adapter_id),
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE
);
CREATE INDEX mailbox_sync_owner_idx ON mailbox_sync (tenant_key, lease_owner) WHERE enabled;
