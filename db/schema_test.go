package db_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestMigrateIsIdempotentAndConcurrencySafe(t *testing.T) {
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
// SPEC forbids, whatever the application does.
func TestConstraintsEnforceInvariants(t *testing.T) {
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
