-- A total, deterministic order for one adapter's due work.
--
-- The claim takes an adapter's due executions follow-ups first, then by
-- scheduled_for; executions due at the same instant (every deferral to a
-- window opening writes the same scheduled_for) came out in physical row
-- order, which changes when an update moves a row. They now go in
-- enrollment order (ids are UUIDv7, fixed at enrollment, ascending with
-- it), then execution id: an order the forecast replays exactly (SPEC §14).
-- Execution ids would not do: next steps are created in the order sends
-- complete, which is not deterministic.
DROP INDEX step_executions_due_idx;
CREATE INDEX step_executions_due_idx ON step_executions (tenant_key, adapter_id, followup DESC, scheduled_for, enrollment_id, id)
    WHERE state = 'scheduled';
