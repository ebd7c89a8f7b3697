-- The feed's order per tenant: every transaction that writes events takes
-- its tenant's next feed positions from telemetry_feed_heads, a row it
-- keeps locked until it commits, so a tenant's events commit in feed order
-- and a reader's cursor never skips one. Unlike the writer's transaction
-- id (0012), this holds when the tenant's rows live on any node of a
-- sharded cluster (docs/scaling.md).
CREATE TABLE telemetry_feed_heads (
    tenant_key text NOT NULL,
    last_seq   bigint NOT NULL,
    PRIMARY KEY (tenant_key)
);
-- dripdrop:distribute telemetry_feed_heads
ALTER TABLE telemetry_feed_heads ADD CONSTRAINT telemetry_feed_heads_tenant_key_fkey
    FOREIGN KEY (tenant_key) REFERENCES tenants (tenant_key) ON DELETE CASCADE;

ALTER TABLE telemetry_outbox ADD COLUMN feed_seq bigint;

-- Existing events keep the order the feed gave them.
UPDATE telemetry_outbox o SET feed_seq = r.seq
FROM (SELECT tenant_key, id, row_number() OVER (PARTITION BY tenant_key ORDER BY writer_xid, id) AS seq
      FROM telemetry_outbox) r
WHERE o.tenant_key = r.tenant_key AND o.id = r.id;
INSERT INTO telemetry_feed_heads (tenant_key, last_seq)
SELECT tenant_key, max(feed_seq) FROM telemetry_outbox GROUP BY tenant_key;

CREATE UNIQUE INDEX telemetry_outbox_feed_seq_idx ON telemetry_outbox (tenant_key, feed_seq);
DROP INDEX telemetry_outbox_feed_idx;
