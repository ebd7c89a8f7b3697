-- The ready queue's update trigger, per row with a WHEN condition.
--
-- The statement-level trigger of 0009 ran for every UPDATE of
-- step_executions — every claim, reservation and record on the hot path —
-- and captured transition tables for each, although only rare updates
-- matter to the ready queue: a row becoming scheduled (retry, rescue,
-- reschedule), moving earlier, changing adapter, or having its claim
-- released. A row trigger's WHEN clause is evaluated without calling the
-- function, so the hot path's updates now cost nothing here.
DROP TRIGGER step_executions_due_update ON step_executions;
DROP FUNCTION dripdrop_due_on_update();

CREATE FUNCTION dripdrop_due_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The adapter's row exists and is no later than this work; the wake-up
    -- bumps ver so a claim computed from an older snapshot leaves it be.
    INSERT INTO adapter_due AS d (tenant_key, adapter_id, due_at) VALUES (NEW.tenant_key, NEW.adapter_id, NEW.scheduled_for)
    ON CONFLICT (tenant_key, adapter_id) DO UPDATE SET due_at = least(d.due_at, excluded.due_at), ver = d.ver + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER step_executions_due_update AFTER UPDATE ON step_executions FOR EACH ROW
    WHEN (NEW.state = 'scheduled' AND (OLD.state <> 'scheduled' OR OLD.adapter_id <> NEW.adapter_id
          OR NEW.scheduled_for < OLD.scheduled_for OR (OLD.claimed_until IS NOT NULL AND NEW.claimed_until IS NULL)))
    EXECUTE FUNCTION dripdrop_due_on_update();

-- Statement triggers fire for every INSERT statement, rows or not (each
-- send's record may insert a next step): return at once when none came.
CREATE OR REPLACE FUNCTION dripdrop_due_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE state = 'scheduled') THEN
        RETURN NULL;
    END IF;
    INSERT INTO adapter_due (tenant_key, adapter_id, due_at)
    SELECT tenant_key, adapter_id, min(scheduled_for) FROM new_rows
    WHERE state = 'scheduled' GROUP BY tenant_key, adapter_id
    ON CONFLICT (tenant_key, adapter_id) DO NOTHING;
    UPDATE adapter_due d SET due_at = least(d.due_at, m.due_at), ver = d.ver + 1
    FROM (SELECT tenant_key, adapter_id, min(scheduled_for) AS due_at FROM new_rows
          WHERE state = 'scheduled' GROUP BY tenant_key, adapter_id) m
    WHERE d.tenant_key = m.tenant_key AND d.adapter_id = m.adapter_id;
    RETURN NULL;
END $$;
