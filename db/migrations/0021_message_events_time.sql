-- The dashboard's overview counts a tenant's message events since UTC
-- midnight (TenantEventCounts), and no index served a tenant's events by
-- time: the count read the whole table, which grows by a row per send.
-- Events are appended in time order, so a BRIN index finds a day's pages
-- (leading with the tenant, as every index does, SPEC §11) and costs an
-- appended row nothing, unlike a B-tree on the send path. Filled page
-- ranges are summarized by autovacuum as they fill (autosummarize); until
-- then a range matches.
CREATE INDEX message_events_time_idx ON message_events USING brin (tenant_key, occurred_at) WITH (autosummarize = on);
