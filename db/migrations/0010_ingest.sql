-- Ingest (SPEC §7): the stored outcome of every inbound message (returned
-- again for duplicates) and the per-version company stop.

ALTER TABLE inbound_messages
    ADD COLUMN result jsonb NOT NULL DEFAULT '{}';

ALTER TABLE sequence_versions
    ADD COLUMN stop_company_on_reply boolean NOT NULL DEFAULT false;

-- Company stop finds the other live enrollments of a domain.
CREATE INDEX enrollments_live_domain_idx ON enrollments (tenant_key, (split_part(email_norm, '@', 2)))
    WHERE state IN ('active', 'paused');
