-- Lookup and numbers (issue 13): GET /v1/enrollments search and
-- GET /v1/sequences/{id}/stats. Every index leads with tenant_key.
CREATE INDEX enrollments_email_idx ON enrollments (tenant_key, email_norm, id);
CREATE INDEX enrollments_state_idx ON enrollments (tenant_key, state, pause_reason, id);
CREATE INDEX enrollments_sequence_state_idx ON enrollments (tenant_key, sequence_id, state, id);
CREATE INDEX enrollments_pin_all_idx ON enrollments (tenant_key, adapter_id, id);
CREATE INDEX message_events_version_idx ON message_events (tenant_key, sequence_version_id, type)
    WHERE sequence_version_id IS NOT NULL;
CREATE INDEX step_executions_step_state_idx ON step_executions (tenant_key, step_id, state);
