-- References from the high-volume tables to configuration rows.
--
-- A foreign key checks its parent row (and locks it FOR KEY SHARE) once per
-- inserted row. Enrolling 10 000 contacts ran 50 000 such checks (the
-- enrollment's adapter and sequence version, the first execution's step
-- and adapter, and its enrollment), 40 % of the batch's time in
-- PostgreSQL; every send ran four more. The parents below are
-- configuration: adapters and sequence versions are never deleted (an
-- adapter is retired with deleted_at), steps only while their version is a
-- draft (which no execution references), and their keys never change. The
-- engine writes these references from rows it has just read. So the
-- per-row checks go, and what they protected is kept by guards on the
-- parents: a referenced adapter, sequence version or step cannot be
-- deleted, nor its key changed (SQLSTATE 23503, as a foreign key would
-- report it). An execution's enrollment is written in the same
-- transaction as the execution (or read and locked by it); its check also
-- locked each new enrollment row a second time (a WAL record per row).
-- Enrollments are never deleted either; should one be, its executions go
-- with it, as the foreign key's ON DELETE CASCADE did.
ALTER TABLE enrollments DROP CONSTRAINT enrollments_tenant_key_sequence_version_id_sequence_id_fkey;
ALTER TABLE enrollments DROP CONSTRAINT enrollments_tenant_key_adapter_id_fkey;
ALTER TABLE step_executions DROP CONSTRAINT step_executions_tenant_key_step_id_fkey;
ALTER TABLE step_executions DROP CONSTRAINT step_executions_tenant_key_adapter_id_fkey;
ALTER TABLE message_events DROP CONSTRAINT message_events_tenant_key_adapter_id_fkey;
ALTER TABLE step_executions DROP CONSTRAINT step_executions_tenant_key_enrollment_id_fkey;

CREATE FUNCTION dripdrop_guard_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant_key = OLD.tenant_key AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF TG_TABLE_NAME = 'adapters' THEN
        referenced := EXISTS (SELECT 1 FROM enrollments WHERE tenant_key = OLD.tenant_key AND adapter_id = OLD.id)
            OR EXISTS (SELECT 1 FROM step_executions WHERE tenant_key = OLD.tenant_key AND adapter_id = OLD.id)
            OR EXISTS (SELECT 1 FROM message_events WHERE tenant_key = OLD.tenant_key AND adapter_id = OLD.id);
    ELSIF TG_TABLE_NAME = 'enrollments' THEN
        referenced := EXISTS (SELECT 1 FROM step_executions WHERE tenant_key = OLD.tenant_key AND enrollment_id = OLD.id);
    ELSIF TG_TABLE_NAME = 'sequence_versions' THEN
        referenced := EXISTS (SELECT 1 FROM enrollments WHERE tenant_key = OLD.tenant_key AND sequence_version_id = OLD.id);
    ELSE -- steps
        referenced := EXISTS (SELECT 1 FROM step_executions WHERE tenant_key = OLD.tenant_key AND step_id = OLD.id);
    END IF;
    IF referenced THEN
        RAISE EXCEPTION '% % is still referenced', TG_TABLE_NAME, OLD.id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER adapters_referenced BEFORE DELETE OR UPDATE OF tenant_key, id ON adapters
    FOR EACH ROW EXECUTE FUNCTION dripdrop_guard_referenced();
CREATE TRIGGER sequence_versions_referenced BEFORE DELETE OR UPDATE OF tenant_key, id ON sequence_versions
    FOR EACH ROW EXECUTE FUNCTION dripdrop_guard_referenced();
CREATE TRIGGER steps_referenced BEFORE DELETE OR UPDATE OF tenant_key, id ON steps
    FOR EACH ROW EXECUTE FUNCTION dripdrop_guard_referenced();

CREATE FUNCTION dripdrop_enrollment_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM step_executions WHERE tenant_key = OLD.tenant_key AND enrollment_id = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER enrollments_deleted AFTER DELETE ON enrollments
    FOR EACH ROW EXECUTE FUNCTION dripdrop_enrollment_deleted();
CREATE TRIGGER enrollments_referenced BEFORE UPDATE OF tenant_key, id ON enrollments
    FOR EACH ROW EXECUTE FUNCTION dripdrop_guard_referenced();
