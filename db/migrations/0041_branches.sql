-- Branches between sequences (docs/sequences.md#branches).
--
-- sequence_versions.branches: {"on_reply": {"<category>": {"sequence_key",
-- "sequence_id", "delay_seconds"}}, "on_auto_reply": {…},
-- "on_completed_without_reply": {…}}; continue_thread: a contact routed
-- into the version gets its first message in the thread it came from.
ALTER TABLE sequence_versions ADD COLUMN branches jsonb NOT NULL DEFAULT '{}';
ALTER TABLE sequence_versions ADD COLUMN continue_thread boolean NOT NULL DEFAULT false;

-- A routed enrollment: where it came from, and (continue_thread) the
-- source thread's Message-IDs, oldest first, and its first subject.
ALTER TABLE enrollments ADD COLUMN routed_from uuid;
ALTER TABLE enrollments ADD COLUMN thread_refs text[];
ALTER TABLE enrollments ADD COLUMN thread_subject text;

-- A branch that moves a still-live enrollment stops it as routed.
ALTER TABLE enrollments DROP CONSTRAINT enrollments_stop_reason_check;
ALTER TABLE enrollments ADD CONSTRAINT enrollments_stop_reason_check
    CHECK (stop_reason IN ('replied', 'bounced', 'complained', 'unsubscribed', 'suppressed', 'company_replied', 'routed'));

-- One route per source enrollment: decided by the first outcome (a later
-- human reply re-decides a pending one), carried out when due.
CREATE TABLE enrollment_routes (
    tenant_key           text NOT NULL,
    id                   uuid NOT NULL,
    source_enrollment_id uuid NOT NULL,
    trigger              text NOT NULL CHECK (trigger IN ('on_reply', 'on_auto_reply', 'on_completed_without_reply')),
    category             text,
    inbound_id           uuid,
    target_sequence_id   uuid NOT NULL,
    due_at               timestamptz NOT NULL,
    state                text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'enrolled', 'skipped')),
    reason               text,
    result_enrollment_id uuid,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, id),
    FOREIGN KEY (tenant_key, source_enrollment_id) REFERENCES enrollments (tenant_key, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_key, target_sequence_id) REFERENCES sequences (tenant_key, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX enrollment_routes_source_idx ON enrollment_routes (tenant_key, source_enrollment_id);
CREATE INDEX enrollment_routes_due_idx ON enrollment_routes (tenant_key, due_at) WHERE state = 'pending';

-- Completed enrollments of a version, by end time: the sweep of
-- on_completed_without_reply reads a window of them.
CREATE INDEX enrollments_completed_idx ON enrollments (tenant_key, sequence_version_id, ended_at)
    WHERE state = 'completed';

-- A contact's replies, by enrollment (the latest reply's category, the
-- sweep's "without reply").
CREATE INDEX inbound_messages_enrollment_idx ON inbound_messages (tenant_key, enrollment_id)
    WHERE enrollment_id IS NOT NULL;
