package db

// citusTriggerFunctions replace, on a Citus coordinator being distributed,
// the bodies of the functions behind the schema's triggers (the ready
// queue of 0009/0014 and the reference guards of 0018) with shard-local
// ones; the ready queue's insert trigger has had one body for both since
// 0043. Citus runs a distributed table's triggers on each shard; a body
// that names another distributed table there would start a distributed
// query from inside a shard query, which Citus refuses (and a transition
// table is lost on the way). The tables are colocated, so the rows the
// trigger must reach live in the same node's shard of the other table:
// dripdrop_shard_rel names it, and the bodies run their statements on it
// with EXECUTE. On a plain PostgreSQL the migrations' bodies stay; the
// semantics are the same (docs/scaling.md#what-runs-where).
//
// One trigger exists only on Citus, on the outbox rows. It takes their
// writer_xid: the column default would be evaluated on the coordinator
// (Citus evaluates a distributed insert's volatile expressions there), but
// the feed compares it with the snapshot of the node that stores the
// tenant's rows (docs/scaling.md#the-feed-order). And it turns a pending
// row of a tenant without an active subscription into no_match: the outbox
// seam's insert on Citus is a plain multi-row INSERT … VALUES, the one
// insert Citus sends to the tenant's worker alone, and VALUES cannot hold
// the subscription check (docs/scaling.md#writing-queries-that-shard).
const citusTriggerFunctions = `
CREATE OR REPLACE FUNCTION dripdrop_outbox_writer_xid() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    subscribed boolean;
BEGIN
    NEW.writer_xid := pg_current_xact_id();
    IF NEW.status = 'pending' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s w WHERE w.tenant_key = $1 AND w.active)',
            dripdrop_shard_rel('webhook_subscriptions', NEW.tenant_key, TG_TABLE_NAME, 'telemetry_outbox'))
            INTO subscribed USING NEW.tenant_key;
        IF NOT subscribed THEN
            NEW.status := 'no_match';
        END IF;
    END IF;
    RETURN NEW;
END $f$;

DROP TRIGGER IF EXISTS telemetry_outbox_writer_xid ON telemetry_outbox;
CREATE TRIGGER telemetry_outbox_writer_xid BEFORE INSERT ON telemetry_outbox
    FOR EACH ROW EXECUTE FUNCTION dripdrop_outbox_writer_xid();

CREATE OR REPLACE FUNCTION dripdrop_shard_rel(rel text, tenant text, trigger_table text, logical_table text)
RETURNS text LANGUAGE plpgsql STABLE AS $f$
BEGIN
    -- On the table itself (not a shard): the other table by its name.
    IF trigger_table = logical_table THEN
        RETURN quote_ident(rel);
    END IF;
    RETURN shard_name(rel::regclass, get_shard_id_for_distribution_column(rel::regclass, tenant));
END $f$;

-- dripdrop_due_on_insert runs on shards as migration 0043 wrote it.

CREATE OR REPLACE FUNCTION dripdrop_due_on_update() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format($q$INSERT INTO %s AS d (tenant_key, adapter_id, due_at) VALUES ($1, $2, $3)
        ON CONFLICT (tenant_key, adapter_id) DO UPDATE SET due_at = least(d.due_at, excluded.due_at), ver = d.ver + 1$q$,
        dripdrop_shard_rel('adapter_due', NEW.tenant_key, TG_TABLE_NAME, 'step_executions'))
    USING NEW.tenant_key, NEW.adapter_id, NEW.scheduled_for;
    RETURN NULL;
END $f$;

CREATE OR REPLACE FUNCTION dripdrop_due_on_adapter() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format($q$UPDATE %s SET due_at = least(due_at, coalesce($3, '-infinity')), ver = ver + 1
        WHERE tenant_key = $1 AND adapter_id = $2$q$,
        dripdrop_shard_rel('adapter_due', NEW.tenant_key, TG_TABLE_NAME, 'adapters'))
    USING NEW.tenant_key, NEW.id, NEW.next_send_at;
    RETURN NULL;
END $f$;

CREATE OR REPLACE FUNCTION dripdrop_due_on_resume() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format($q$UPDATE %s d SET due_at = least(d.due_at, m.due_at), ver = d.ver + 1
        FROM (SELECT x.adapter_id, min(x.scheduled_for) AS due_at FROM %s x
              WHERE x.tenant_key = $1 AND x.enrollment_id = $2 AND x.state = 'scheduled'
              GROUP BY x.adapter_id) m
        WHERE d.tenant_key = $1 AND d.adapter_id = m.adapter_id$q$,
        dripdrop_shard_rel('adapter_due', NEW.tenant_key, TG_TABLE_NAME, 'enrollments'),
        dripdrop_shard_rel('step_executions', NEW.tenant_key, TG_TABLE_NAME, 'enrollments'))
    USING NEW.tenant_key, NEW.id;
    RETURN NULL;
END $f$;

CREATE OR REPLACE FUNCTION dripdrop_guard_referenced() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
    referenced boolean;
    base text := regexp_replace(TG_TABLE_NAME, '_[0-9]+$', '');
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant_key = OLD.tenant_key AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF base = 'adapters' THEN
        EXECUTE format($q$SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_key = $1 AND adapter_id = $2)
            OR EXISTS (SELECT 1 FROM %s WHERE tenant_key = $1 AND adapter_id = $2)
            OR EXISTS (SELECT 1 FROM %s WHERE tenant_key = $1 AND adapter_id = $2)$q$,
            dripdrop_shard_rel('enrollments', OLD.tenant_key, TG_TABLE_NAME, base),
            dripdrop_shard_rel('step_executions', OLD.tenant_key, TG_TABLE_NAME, base),
            dripdrop_shard_rel('message_events', OLD.tenant_key, TG_TABLE_NAME, base))
        INTO referenced USING OLD.tenant_key, OLD.id;
    ELSIF base = 'enrollments' THEN
        EXECUTE format($q$SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_key = $1 AND enrollment_id = $2)$q$,
            dripdrop_shard_rel('step_executions', OLD.tenant_key, TG_TABLE_NAME, base))
        INTO referenced USING OLD.tenant_key, OLD.id;
    ELSIF base = 'sequence_versions' THEN
        EXECUTE format($q$SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_key = $1 AND sequence_version_id = $2)$q$,
            dripdrop_shard_rel('enrollments', OLD.tenant_key, TG_TABLE_NAME, base))
        INTO referenced USING OLD.tenant_key, OLD.id;
    ELSE -- steps
        EXECUTE format($q$SELECT EXISTS (SELECT 1 FROM %s WHERE tenant_key = $1 AND step_id = $2)$q$,
            dripdrop_shard_rel('step_executions', OLD.tenant_key, TG_TABLE_NAME, base))
        INTO referenced USING OLD.tenant_key, OLD.id;
    END IF;
    IF referenced THEN
        RAISE EXCEPTION '% % is still referenced', base, OLD.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $f$;

CREATE OR REPLACE FUNCTION dripdrop_enrollment_deleted() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE format('DELETE FROM %s WHERE tenant_key = $1 AND enrollment_id = $2',
        dripdrop_shard_rel('step_executions', OLD.tenant_key, TG_TABLE_NAME, 'enrollments'))
    USING OLD.tenant_key, OLD.id;
    RETURN NULL;
END $f$;
`
