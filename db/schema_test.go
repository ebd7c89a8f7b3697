package db_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestMigrateIsIdempotentAndConcurrencySafe(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t) // already migrated from the template
	ms, err := db.Migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v, %d", err, len(ms))
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	applied := make([][]int, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); applied[i], errs[i] = db.Migrate(context.Background(), url) }()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || len(applied[i]) != 0 {
			t.Fatalf("re-running migrations: applied %v, err %v", applied[i], errs[i])
		}
	}
	conn := connect(t, url)
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(ms))
	}
	// A released migration that changes is refused.
	if _, err := conn.Exec(context.Background(), "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(context.Background(), url); err == nil {
		t.Fatal("Migrate accepted a changed migration")
	}
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestEveryIndexLeadsWithTenantKey: every table holding tenant data has
// tenant_key as the first column of its primary key and of every index, so
// the schema shards by tenant without changes.
func TestEveryIndexLeadsWithTenantKey(t *testing.T) {
	t.Parallel()
	conn := connect(t, dbtest.URL(t))
	global := map[string]bool{"schema_migrations": true, "leader_leases": true}
	rows, err := conn.Query(context.Background(), `
		SELECT t.relname, i.relname, a.attname
		FROM pg_index x
		JOIN pg_class t ON t.oid = x.indrelid
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
		WHERE n.nspname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var table, index, first string
		if err := rows.Scan(&table, &index, &first); err != nil {
			t.Fatal(err)
		}
		seen++
		if !global[table] && first != "tenant_key" {
			t.Errorf("index %s on %s leads with %s, not tenant_key", index, table, first)
		}
	}
	if seen < 20 {
		t.Fatalf("only %d indexes inspected", seen)
	}
	// Every tenant table has a NOT NULL tenant_key column.
	tables, err := conn.Query(context.Background(), `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'
		  AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_key' AND a.attnotnull)`)
	if err != nil {
		t.Fatal(err)
	}
	defer tables.Close()
	for tables.Next() {
		var name string
		_ = tables.Scan(&name)
		if !global[name] {
			t.Errorf("table %s has no NOT NULL tenant_key", name)
		}
	}
}

// TestConstraintsEnforceInvariants: the database itself rejects states the
// the engine forbids, whatever the application does.
func TestConstraintsEnforceInvariants(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	conn := connect(t, url)
	ctx := context.Background()
	mustExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustFail := func(why, sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, "SAVEPOINT s"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, sql, args...); err == nil {
			t.Errorf("accepted: %s", why)
		}
		_, _ = conn.Exec(ctx, "ROLLBACK TO SAVEPOINT s")
	}
	mustExec("BEGIN")
	mustExec("INSERT INTO tenants (tenant_key) VALUES ('a'), ('b')")
	mustExec(`INSERT INTO adapters (tenant_key, id, name, provider, from_address, health_state)
		VALUES ('a', '00000000-0000-0000-0000-00000000000a', 'x', 'sink', 'x@a.example', 'active'),
		       ('b', '00000000-0000-0000-0000-00000000000b', 'x', 'sink', 'x@b.example', 'active')`)
	mustExec(`INSERT INTO pools (tenant_key, id, name) VALUES ('a', '00000000-0000-0000-0000-0000000000a1', 'p')`)
	mustFail("a pool member of another tenant's adapter",
		`INSERT INTO pool_members (tenant_key, pool_id, adapter_id, id) VALUES ('a', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000b', gen_random_uuid())`)
	mustFail("weight 0", `INSERT INTO pool_members (tenant_key, pool_id, adapter_id, id, weight) VALUES ('a', '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', gen_random_uuid(), 0)`)
	mustFail("health_score 1.5", `UPDATE adapters SET health_score = 1.5 WHERE tenant_key = 'a'`)
	mustFail("unknown health state", `UPDATE adapters SET health_state = 'dead' WHERE tenant_key = 'a'`)
	mustFail("resting without resting_until", `UPDATE adapters SET health_state = 'resting' WHERE tenant_key = 'a'`)
	mustFail("daily_cap 0", `UPDATE adapters SET daily_cap = 0 WHERE tenant_key = 'a'`)
	mustFail("negative min gap", `UPDATE adapters SET min_gap_seconds = -1 WHERE tenant_key = 'a'`)
	mustFail("duplicate pool name", `INSERT INTO pools (tenant_key, id, name) VALUES ('a', gen_random_uuid(), 'p')`)
	mustFail("uppercase suppression", `INSERT INTO suppressions (tenant_key, id, kind, value, reason) VALUES ('a', gen_random_uuid(), 'email', 'X@Y.COM', 'manual')`)
	mustFail("max_share_pct 0 budget", `INSERT INTO budgets (tenant_key, adapter_id, sequence_version_id, max_share_pct) VALUES ('a', '00000000-0000-0000-0000-00000000000a', gen_random_uuid(), 0)`)
	mustExec("ROLLBACK")
}

// Adapters, sequence versions and steps referenced by enrollments,
// executions or message events cannot be deleted or re-keyed, nor can an
// enrollment with executions be re-keyed (migration 0018 checks this on the
// parents instead of once per inserted row); unreferenced ones can, and a
// deleted enrollment takes its executions with it.
func TestReferencedConfigurationIsGuarded(t *testing.T) {
	t.Parallel()
	conn := connect(t, dbtest.URL(t))
	ctx := context.Background()
	exec := func(sql string) error {
		t.Helper()
		if _, err := conn.Exec(ctx, "SAVEPOINT s"); err != nil {
			t.Fatal(err)
		}
		_, err := conn.Exec(ctx, sql)
		if err != nil {
			_, _ = conn.Exec(ctx, "ROLLBACK TO SAVEPOINT s")
		}
		return err
	}
	must := func(sql string) {
		t.Helper()
		if err := exec(sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	guarded := func(why, sql string) {
		t.Helper()
		var pgErr *pgconn.PgError
		if err := exec(sql); !errors.As(err, &pgErr) || pgErr.Code != "23503" {
			t.Errorf("%s: %v, want SQLSTATE 23503", why, err)
		}
	}
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "ROLLBACK") //nolint:errcheck
	must("INSERT INTO tenants (tenant_key) VALUES ('a')")
	must(`INSERT INTO adapters (tenant_key, id, name, provider, from_address, health_state) VALUES
		('a', '00000000-0000-0000-0000-00000000000a', 'used', 'sink', 'x@a.example', 'active'),
		('a', '00000000-0000-0000-0000-00000000000b', 'spare', 'sink', 'y@a.example', 'active')`)
	must(`INSERT INTO pools (tenant_key, id, name) VALUES ('a', '00000000-0000-0000-0000-0000000000a1', 'p')`)
	must(`INSERT INTO sequences (tenant_key, id, key, name) VALUES ('a', '00000000-0000-0000-0000-0000000000c1', 's', 's')`)
	must(`INSERT INTO sequence_versions (tenant_key, id, sequence_id, version, state, pool_id) VALUES
		('a', '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', 1, 'active', '00000000-0000-0000-0000-0000000000a1'),
		('a', '00000000-0000-0000-0000-0000000000d2', '00000000-0000-0000-0000-0000000000c1', 2, 'draft', '00000000-0000-0000-0000-0000000000a1')`)
	must(`INSERT INTO steps (tenant_key, id, sequence_version_id, key, position, body_text) VALUES
		('a', '00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000d1', 'one', 1, 'hi'),
		('a', '00000000-0000-0000-0000-0000000000e2', '00000000-0000-0000-0000-0000000000d2', 'one', 1, 'hi')`)
	must(`INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, email, adapter_id) VALUES
		('a', '00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000d1', 'p@x.example', '00000000-0000-0000-0000-00000000000a')`)
	must(`INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, scheduled_for) VALUES
		('a', '00000000-0000-0000-0000-0000000000f2', '00000000-0000-0000-0000-0000000000f1', '00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-00000000000a', now())`)
	guarded("delete a referenced adapter", `DELETE FROM adapters WHERE id = '00000000-0000-0000-0000-00000000000a'`)
	guarded("re-key a referenced adapter", `UPDATE adapters SET id = gen_random_uuid() WHERE id = '00000000-0000-0000-0000-00000000000a'`)
	guarded("delete a referenced version", `DELETE FROM sequence_versions WHERE id = '00000000-0000-0000-0000-0000000000d1'`)
	guarded("delete a referenced step", `DELETE FROM steps WHERE id = '00000000-0000-0000-0000-0000000000e1'`)
	guarded("re-key an enrollment with executions", `UPDATE enrollments SET id = gen_random_uuid() WHERE id = '00000000-0000-0000-0000-0000000000f1'`)
	must(`UPDATE adapters SET name = 'renamed', deleted_at = now() WHERE id = '00000000-0000-0000-0000-00000000000a'`)
	must(`DELETE FROM steps WHERE sequence_version_id = '00000000-0000-0000-0000-0000000000d2'`) // a draft's steps
	must(`DELETE FROM sequence_versions WHERE id = '00000000-0000-0000-0000-0000000000d2'`)
	must(`DELETE FROM adapters WHERE id = '00000000-0000-0000-0000-00000000000b'`)
	// An enrollment takes its executions with it (as ON DELETE CASCADE did).
	must(`DELETE FROM enrollments WHERE id = '00000000-0000-0000-0000-0000000000f1'`)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM step_executions WHERE enrollment_id = '00000000-0000-0000-0000-0000000000f1'`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d executions left after their enrollment was deleted (%v)", left, err)
	}
}

// TestMigrationFileIsOneTransaction: a file's statements run one at a time
// in one transaction, so a statement that fails undoes the ones before it
// and the file is not recorded; fixed, it applies whole.
func TestMigrationFileIsOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	bad := db.Migration{Version: 9001, Name: "scratch", Checksum: "x", SQL: "CREATE TABLE scratch_a (x text DEFAULT 'a;b');\n" +
		"-- a comment; with a semicolon\nINSERT INTO scratch_a VALUES (DEFAULT);\nINSERT INTO no_such_table VALUES (1);\n"}
	_, err := db.ApplyMigrations(ctx, url, []db.Migration{bad})
	if err == nil || !strings.Contains(err.Error(), "9001_scratch") || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("a failing statement: %v, want an error naming the file and the statement's line 4", err)
	}
	conn := connect(t, url)
	var exists, recorded bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('scratch_a') IS NOT NULL, EXISTS (SELECT 1 FROM schema_migrations WHERE version = 9001)").Scan(&exists, &recorded); err != nil {
		t.Fatal(err)
	}
	if exists || recorded {
		t.Fatalf("after the failure: table exists %t, recorded %t; want the whole file undone", exists, recorded)
	}
	good := bad
	good.SQL = strings.Replace(bad.SQL, "INSERT INTO no_such_table VALUES (1);", "INSERT INTO scratch_a VALUES ('two');", 1)
	if applied, err := db.ApplyMigrations(ctx, url, []db.Migration{good}); err != nil || len(applied) != 1 {
		t.Fatalf("the fixed file: %v, %v", applied, err)
	}
	var rows string
	if err := conn.QueryRow(ctx, "SELECT string_agg(x, ',' ORDER BY x) FROM scratch_a").Scan(&rows); err != nil || rows != "a;b,two" {
		t.Fatalf("scratch_a holds %q (%v), want the default 'a;b' and 'two'", rows, err)
	}
}
