-- Dispatch at fleet scale (SPEC §6.1, §6.1a).

-- Per-adapter concurrency: at most this many sends of the adapter in flight.
-- NULL = the default (4, or 1 when the adapter has a minimum gap).
ALTER TABLE adapters ADD COLUMN max_in_flight integer CHECK (max_in_flight BETWEEN 1 AND 1000);

-- The ready queue: one row per adapter that has (or had) scheduled work.
-- due_at is a hint that is never late: nothing of the adapter can be claimed
-- before it. The claim reads only rows with due_at <= now (in due_at order,
-- which is also least-recently-served order, since serving an adapter moves
-- its due_at to the claim time), so its cost follows the work it claims, not
-- the number of adapters or the size of a blocked adapter's backlog. The
-- claim itself pushes blocked adapters to their next_send_at and idle ones to
-- their next scheduled work; the triggers below pull due_at earlier whenever
-- work becomes due sooner.
CREATE SEQUENCE adapter_due_served_seq;
CREATE TABLE adapter_due (
    tenant_key text NOT NULL,
    adapter_id uuid NOT NULL,
    due_at     timestamptz NOT NULL,
    served     bigint NOT NULL DEFAULT 0, -- when last served (a sequence number): ties in due_at go least recently served first
    ver        bigint NOT NULL DEFAULT 0, -- bumped by every wake-up, so a claim never overwrites one it did not see
    PRIMARY KEY (tenant_key, adapter_id)
);
CREATE INDEX adapter_due_at_idx ON adapter_due (tenant_key, due_at, served);

-- New scheduled work: the adapter's row exists and is no later than it.
-- Wake-ups always write (ver + 1): a claim that computed a later due_at
-- from a snapshot without this change then skips its update (see
-- ClaimReady), so no wake-up is lost.
CREATE FUNCTION dripdrop_due_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
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

-- Updates matter when a row becomes scheduled, moves earlier, changes
-- adapter or has its claim released (claimed_until set back to NULL).
CREATE FUNCTION dripdrop_due_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE adapter_due d SET due_at = least(d.due_at, m.due_at), ver = d.ver + 1
    FROM (SELECT n.tenant_key, n.adapter_id, min(n.scheduled_for) AS due_at
          FROM new_rows n JOIN old_rows o ON o.tenant_key = n.tenant_key AND o.id = n.id
          WHERE n.state = 'scheduled'
            AND (o.state <> 'scheduled' OR o.adapter_id <> n.adapter_id OR n.scheduled_for < o.scheduled_for
                 OR (o.claimed_until IS NOT NULL AND n.claimed_until IS NULL))
          GROUP BY n.tenant_key, n.adapter_id) m
    WHERE d.tenant_key = m.tenant_key AND d.adapter_id = m.adapter_id;
    INSERT INTO adapter_due (tenant_key, adapter_id, due_at)
    SELECT n.tenant_key, n.adapter_id, min(n.scheduled_for)
    FROM new_rows n JOIN old_rows o ON o.tenant_key = n.tenant_key AND o.id = n.id
    WHERE n.state = 'scheduled' AND o.adapter_id <> n.adapter_id
    GROUP BY n.tenant_key, n.adapter_id
    ON CONFLICT (tenant_key, adapter_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER step_executions_due_insert AFTER INSERT ON step_executions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dripdrop_due_on_insert();
CREATE TRIGGER step_executions_due_update AFTER UPDATE ON step_executions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dripdrop_due_on_update();

-- An adapter unblocked earlier (next_send_at lowered or cleared, health or
-- activity changed) is looked at again from its new ready time.
CREATE FUNCTION dripdrop_due_on_adapter() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE adapter_due SET due_at = least(due_at, coalesce(NEW.next_send_at, '-infinity')), ver = ver + 1
    WHERE tenant_key = NEW.tenant_key AND adapter_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER adapters_due AFTER UPDATE ON adapters FOR EACH ROW
    WHEN (OLD.next_send_at IS DISTINCT FROM NEW.next_send_at OR OLD.health_state IS DISTINCT FROM NEW.health_state
          OR OLD.resting_until IS DISTINCT FROM NEW.resting_until OR OLD.active IS DISTINCT FROM NEW.active
          OR OLD.max_in_flight IS DISTINCT FROM NEW.max_in_flight OR OLD.min_gap_seconds IS DISTINCT FROM NEW.min_gap_seconds)
    EXECUTE FUNCTION dripdrop_due_on_adapter();

-- A resumed enrollment's due executions become claimable again.
CREATE FUNCTION dripdrop_due_on_resume() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE adapter_due d SET due_at = least(d.due_at, m.due_at), ver = d.ver + 1
    FROM (SELECT x.adapter_id, min(x.scheduled_for) AS due_at FROM step_executions x
          WHERE x.tenant_key = NEW.tenant_key AND x.enrollment_id = NEW.id AND x.state = 'scheduled'
          GROUP BY x.adapter_id) m
    WHERE d.tenant_key = NEW.tenant_key AND d.adapter_id = m.adapter_id;
    RETURN NULL;
END $$;
CREATE TRIGGER enrollments_due_resume AFTER UPDATE OF state ON enrollments FOR EACH ROW
    WHEN (OLD.state = 'paused' AND NEW.state = 'active') EXECUTE FUNCTION dripdrop_due_on_resume();

-- Existing work.
INSERT INTO adapter_due (tenant_key, adapter_id, due_at)
SELECT tenant_key, adapter_id, min(scheduled_for) FROM step_executions WHERE state = 'scheduled'
GROUP BY tenant_key, adapter_id;
