-- Index upkeep of the send path (SPEC §12): every send writes a message
-- event and two outbox rows, and every bulk enrollment an outbox row per
-- contact, so each index on those tables is paid for on every send.
--
-- message_events: one index per adapter instead of two. The health window
-- and the dashboard read an adapter's sent/bounced/complained events since
-- a time; the reference guard asks whether an adapter has any. The type is
-- the last column, so the window's type filter is read from the index.
DROP INDEX message_events_health_idx;
DROP INDEX message_events_adapter_idx;
CREATE INDEX message_events_adapter_idx ON message_events (tenant_key, adapter_id, occurred_at, type);

-- telemetry_outbox: retention deletes rows older than a cutoff. Rows arrive
-- in time order, so a BRIN index finds them (leading with the tenant, as
-- every index does, SPEC §11), and unlike a B-tree it costs a row appended
-- to the table's end nothing. Filled page ranges are summarized by
-- autovacuum as they fill (autosummarize); until then a range matches.
DROP INDEX telemetry_outbox_age_idx;
CREATE INDEX telemetry_outbox_age_idx ON telemetry_outbox USING brin (tenant_key, occurred_at) WITH (autosummarize = on);
