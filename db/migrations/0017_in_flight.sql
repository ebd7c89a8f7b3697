-- max_in_flight across replicas (SPEC §6.1a, §11): claims and reservations
-- count an adapter's sends in flight ("sending" with a live lease) in the
-- database, not only in their own process. The index of sending rows leads
-- with the adapter for that count; the rescue of stale sends reads the
-- tenant's few sending rows through it as well (they are bounded by the
-- sends in flight).
DROP INDEX step_executions_sending_idx;
CREATE INDEX step_executions_sending_idx ON step_executions (tenant_key, adapter_id, lease_expires_at) WHERE state = 'sending';
