-- The ready queue's wake-ups after an insert lock the adapters' queue rows
-- in adapter order.
--
-- A statement that inserts work for several adapters (a record's next
-- steps, a batch import) woke their rows in the order of a hash
-- aggregate. Two such wakers, or one and a claim release (which locks the
-- rows in adapter order, ReleaseClaims), took two rows in opposite orders
-- and deadlocked: PostgreSQL aborted one after its deadlock timeout, a
-- second of stalled sending each time, with two engines on one tenant.
-- One upsert in adapter order now does what the insert and the update
-- did.
--
-- The body runs on a plain PostgreSQL and on a Citus shard alike. On a
-- shard (the trigger's table is a shard of step_executions) the queue's
-- rows are in the colocated shard of adapter_due on the same worker,
-- named by dripdrop_shard_rel, which the distribution installs
-- (docs/scaling.md#what-runs-where).
CREATE OR REPLACE FUNCTION dripdrop_due_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tenant text;
BEGIN
    SELECT tenant_key INTO tenant FROM new_rows WHERE state = 'scheduled' LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'step_executions' THEN
        INSERT INTO adapter_due AS d (tenant_key, adapter_id, due_at)
        SELECT tenant_key, adapter_id, min(scheduled_for) FROM new_rows
        WHERE state = 'scheduled' GROUP BY tenant_key, adapter_id ORDER BY tenant_key, adapter_id
        ON CONFLICT (tenant_key, adapter_id) DO UPDATE SET due_at = least(d.due_at, excluded.due_at), ver = d.ver + 1;
    ELSE
        -- Every row of a shard's statement is in the same shard of adapter_due.
        EXECUTE format($q$INSERT INTO %s AS d (tenant_key, adapter_id, due_at)
            SELECT tenant_key, adapter_id, min(scheduled_for) FROM new_rows
            WHERE state = 'scheduled' GROUP BY tenant_key, adapter_id ORDER BY tenant_key, adapter_id
            ON CONFLICT (tenant_key, adapter_id) DO UPDATE SET due_at = least(d.due_at, excluded.due_at), ver = d.ver + 1$q$,
            dripdrop_shard_rel('adapter_due', tenant, TG_TABLE_NAME, 'step_executions'));
    END IF;
    RETURN NULL;
END $$;
