package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// citusLayout reads how Citus holds each public table: "reference",
// "distributed:<column>:<colocation>", "citus-local" or "plain".
func citusLayout(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT c.relname::text,
		CASE WHEN p.logicalrelid IS NULL THEN 'plain'
		     WHEN p.partmethod = 'h' THEN 'distributed:' || column_to_column_name(p.logicalrelid, p.partkey) || ':' || p.colocationid
		     WHEN p.repmodel = 't' THEN 'reference' ELSE 'citus-local' END
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
		WHERE n.nspname = 'public' AND c.relkind = 'r'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var name, how string
		if err := rows.Scan(&name, &how); err != nil {
			t.Fatal(err)
		}
		out[name] = how
	}
	return out
}

func foreignKeys(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	fks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return fks
}

// TestCitusDistribute: on a coordinator with two workers, the command makes
// tenants a reference table, distributes every other table with tenant_key
// by it in one colocation group, leaves the engine's own tables local,
// keeps every foreign key; a second run does nothing; a migration with a
// directive applied after distribution distributes its table.
func TestCitusDistribute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.CitusEmptyURL(t)
	if _, err := db.CitusDistribute(ctx, url, dbtest.CitusShards); err == nil || !strings.Contains(err.Error(), "dripdrop migrate first") {
		t.Fatalf("distribute before migrate: %v, want a refusal naming dripdrop migrate", err)
	}
	if _, err := db.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	fksBefore := foreignKeys(t, conn)
	rep, err := db.CitusDistribute(ctx, url, dbtest.CitusShards)
	if err != nil {
		t.Fatal(err)
	}
	if rep.AlreadyDistributed || rep.ShardCount != dbtest.CitusShards || rep.ForeignKeys != len(fksBefore) || len(fksBefore) < 20 {
		t.Fatalf("report %+v, want a first distribution of %d shards keeping the %d foreign keys", rep, dbtest.CitusShards, len(fksBefore))
	}
	layout := citusLayout(t, conn)
	var coloc string
	for table, how := range layout {
		switch table {
		case "tenants":
			if how != "reference" {
				t.Errorf("tenants is %s, want reference", how)
			}
		case "leader_leases", "schema_migrations":
			if how != "plain" {
				t.Errorf("%s is %s, want a plain coordinator table", table, how)
			}
		default:
			col, group, ok := strings.Cut(strings.TrimPrefix(how, "distributed:"), ":")
			if !strings.HasPrefix(how, "distributed:") || !ok || col != "tenant_key" {
				t.Errorf("%s is %s, want distributed by tenant_key", table, how)
				continue
			}
			if coloc == "" {
				coloc = group
			} else if group != coloc {
				t.Errorf("%s is in colocation group %s, others in %s", table, group, coloc)
			}
		}
	}
	if n := len(rep.Distributed); n != len(layout)-3 || n < 23 {
		t.Errorf("distributed %d tables of %d", n, len(layout))
	}
	if got := foreignKeys(t, conn); strings.Join(got, "\n") != strings.Join(fksBefore, "\n") {
		t.Errorf("foreign keys after distribution:\n%s\nbefore:\n%s", strings.Join(got, "\n"), strings.Join(fksBefore, "\n"))
	}
	// The database's settings for the engine's sessions on the coordinator.
	var settings []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM pg_db_role_setting s, unnest(s.setconfig) x
		WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.setrole = 0`).Scan(&settings); err != nil {
		t.Fatal(err)
	}
	if want := []string{"citus.allow_modifications_from_workers_to_replicated_tables=off", "jit=off"}; strings.Join(settings, " ") != strings.Join(want, " ") {
		t.Errorf("database settings %q, want %q", settings, want)
	}
	rep, err = db.CitusDistribute(ctx, url, dbtest.CitusShards)
	if err != nil || !rep.AlreadyDistributed {
		t.Fatalf("second run: %+v, %v; want nothing to do", rep, err)
	}

	// A later migration with a distribute directive, applied to the
	// distributed schema: its new table is distributed and colocated at the
	// directive, and its foreign key added after it.
	later := db.Migration{Version: 9001, Name: "9001_later.sql", SQL: `CREATE TABLE later_notes (
    tenant_key text NOT NULL,
    id uuid NOT NULL,
    adapter_id uuid NOT NULL,
    note text NOT NULL DEFAULT 'a; b',
    PRIMARY KEY (tenant_key, id)
);
-- dripdrop:distribute later_notes
ALTER TABLE later_notes ADD CONSTRAINT later_notes_adapter_fkey
    FOREIGN KEY (tenant_key, adapter_id) REFERENCES adapters (tenant_key, id) ON DELETE CASCADE;
CREATE INDEX later_notes_adapter_idx ON later_notes (tenant_key, adapter_id);`}
	applied, err := db.ApplyMigrations(ctx, url, []db.Migration{later})
	if err != nil || len(applied) != 1 || applied[0] != 9001 {
		t.Fatalf("migrate on the distributed schema: applied %v, %v", applied, err)
	}
	if how := citusLayout(t, conn)["later_notes"]; how != "distributed:tenant_key:"+coloc {
		t.Fatalf("later_notes is %s after its migration, want distributed:tenant_key:%s", how, coloc)
	}
	if rep, err := db.CitusDistribute(ctx, url, dbtest.CitusShards); err != nil || !rep.AlreadyDistributed {
		t.Fatalf("after the migration: %+v, %v; want nothing to do", rep, err)
	}

	// A trigger function's new body (0043's), applied to the distributed
	// schema as a later migration would be: Citus sends it to the workers,
	// where the shards' triggers run it.
	ms, err := db.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var body db.Migration
	for _, m := range ms {
		if m.Version == 43 {
			body = m
		}
	}
	body.Version, body.Name = 9002, "9002_body.sql"
	body.SQL = strings.Replace(body.SQL, "ORDER BY tenant_key, adapter_id", "ORDER BY tenant_key, adapter_id /* 9002 */", 1)
	if applied, err := db.ApplyMigrations(ctx, url, []db.Migration{body}); err != nil || len(applied) != 1 {
		t.Fatalf("a new trigger body on the distributed schema: applied %v, %v", applied, err)
	}
	var onWorkers []string
	if err := conn.QueryRow(ctx, `SELECT array_agg(result ORDER BY nodeport) FROM run_command_on_workers(
		$$SELECT (prosrc LIKE '%/* 9002 */%')::text FROM pg_proc WHERE proname = 'dripdrop_due_on_insert'$$)`).Scan(&onWorkers); err != nil {
		t.Fatal(err)
	}
	if strings.Join(onWorkers, " ") != "true true" {
		t.Fatalf("the new body on the workers: %v, want it on both", onWorkers)
	}

	// A half-converted database is refused, naming what it found.
	// (undistribute_table refuses a table with foreign keys.)
	if _, err := conn.Exec(ctx, `DO $$ DECLARE c record; BEGIN
		FOR c IN SELECT conname FROM pg_constraint WHERE conrelid = 'suppressions'::regclass AND contype = 'f' LOOP
			EXECUTE format('ALTER TABLE suppressions DROP CONSTRAINT %I', c.conname);
		END LOOP; END $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT undistribute_table('suppressions')"); err != nil {
		t.Fatal(err)
	}
	_, err = db.CitusDistribute(ctx, url, dbtest.CitusShards)
	if err == nil || !strings.Contains(err.Error(), "partly distributed") || !strings.Contains(err.Error(), "not distributed: suppressions;") {
		t.Fatalf("half-converted: %v, want a refusal", err)
	}
	t.Logf("refusal: %v", err)
}

// TestCitusClaimSettingsReachTheWorkers: the claim's planner settings are
// in force on the workers that plan its shard queries, for tenants on
// both workers (a SET LOCAL alone stays on the coordinator).
func TestCitusClaimSettingsReachTheWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "settings", 2)
	for _, tn := range tenants {
		dbtest.Exec(t, url, "INSERT INTO tenants (tenant_key, name) VALUES ($1, $1)", tn)
		dbtest.Exec(t, url, "INSERT INTO telemetry_outbox (tenant_key, name, occurred_at, status) VALUES ($1, 'x', now(), 'no_match')", tn)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	read := func(settings []string) map[string]string {
		t.Helper()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		for _, s := range settings {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		out := map[string]string{}
		for _, tn := range tenants {
			// A router query: the worker holding the tenant evaluates it.
			var port, hash, merge string
			if err := tx.QueryRow(ctx, `SELECT current_setting('port'), current_setting('enable_hashjoin'), current_setting('enable_mergejoin')
				FROM telemetry_outbox WHERE tenant_key = $1 LIMIT 1`, tn).Scan(&port, &hash, &merge); err != nil {
				t.Fatal(err)
			}
			out[port] = hash + "/" + merge
		}
		return out
	}
	got := read(db.CitusClaimSettings)
	if len(got) != 2 {
		t.Fatalf("settings read on %v, want both workers", got)
	}
	for port, v := range got {
		if v != "off/off" {
			t.Errorf("worker on port %s plans the claim with enable_hashjoin/enable_mergejoin %s, want off/off", port, v)
		}
	}
	// Without propagation the workers keep their own: the check can fail.
	for port, v := range read([]string{"set local enable_hashjoin = off", "set local enable_mergejoin = off"}) {
		if v != "on/on" {
			t.Errorf("without propagation, worker on port %s has %s: the check sees nothing", port, v)
		}
	}
}
