-- Normalised addresses compare byte by byte (collation "C"). They are
-- matched for equality and ranges, never sorted for people, and three
-- indexes of enrollments carry them: every insert descends them, and every
-- bulk index build sorts them. The default (libc) collation compared each
-- pair with strcoll and could not use abbreviated sort keys; "C" compares
-- with memcmp. Queries need no change: the column's collation wins over
-- their parameters' default one. The indexes are rebuilt by the ALTER.
ALTER TABLE enrollments ALTER COLUMN email_norm TYPE text COLLATE "C";

-- The outbox takes a row per event (two per send, one per enrolled contact)
-- and its foreign key to tenants cost a lookup per row. Only the engine
-- writes it, for the tenant of the transaction that produced the event, and
-- tenants are never deleted, so the key checked nothing.
ALTER TABLE telemetry_outbox DROP CONSTRAINT telemetry_outbox_tenant_key_fkey;
