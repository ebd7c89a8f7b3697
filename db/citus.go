package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Citus: the schema distributes by tenant_key (docs/scaling.md). `tenants`
// is a reference table (a copy on every node); every other table with a
// tenant_key column is hash-distributed by it, all in one colocation group,
// so a tenant's rows of every table live on one node and each statement
// filtered by one tenant_key is a single-shard router query. Tables without
// a tenant_key (leader_leases, schema_migrations) stay on the coordinator.

// citusReference is the one reference table; citusAnchor is the distributed
// table every other tenant table is colocated with.
const (
	citusReference = "tenants"
	citusAnchor    = "adapters"
)

// citusLocal are the engine's tables that carry no tenant data and stay on
// the coordinator.
var citusLocal = []string{"leader_leases", "schema_migrations"}

// CitusReport is what CitusDistribute found and did.
type CitusReport struct {
	AlreadyDistributed bool     // nothing was to do
	Reference          []string // reference tables
	Distributed        []string // tables distributed by tenant_key, colocated
	Local              []string // tables left on the coordinator
	ForeignKeys        int      // foreign keys dropped and added back
	ShardCount         int
}

// ErrCitusMissing means the database has no citus extension.
var ErrCitusMissing = errors.New("the citus extension is not installed in this database (run CREATE EXTENSION citus on the coordinator, with citus in shared_preload_libraries, and add the workers with citus_add_node)")

// citusPlacement is how Citus holds one table.
type citusPlacement struct {
	method   string // h: hash-distributed, n: reference or Citus-local, "": plain
	repModel string // t: reference (two-phase replicated), s: statement (distributed, Citus-local)
	column   string // distribution column
	coloc    int
}

func (p citusPlacement) String() string {
	switch {
	case p.method == "":
		return "plain"
	case p.method == "h":
		return fmt.Sprintf("distributed by %s (colocation %d)", p.column, p.coloc)
	case p.method == "n" && p.repModel == "t":
		return "reference"
	case p.method == "n":
		return "citus-local"
	}
	return "method " + p.method
}

// hasCitus reports whether the citus extension is installed.
func hasCitus(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')").Scan(&ok)
	return ok, err
}

// citusPlacements reads how Citus holds each table of the public schema.
func citusPlacements(ctx context.Context, tx pgx.Tx) (map[string]citusPlacement, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname::text, coalesce(p.partmethod::text, ''), coalesce(p.repmodel::text, ''),
		coalesce(column_to_column_name(p.logicalrelid, p.partkey), ''), coalesce(p.colocationid, 0)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')`)
	if err != nil {
		return nil, err
	}
	out := map[string]citusPlacement{}
	for rows.Next() {
		var name string
		var p citusPlacement
		if err := rows.Scan(&name, &p.method, &p.repModel, &p.column, &p.coloc); err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, rows.Err()
}

// citusDistributed reports whether the database's tables are distributed
// (CitusDistribute ran): then migration directives take effect.
func citusDistributed(ctx context.Context, tx pgx.Tx) (bool, error) {
	ok, err := hasCitus(ctx, tx)
	if err != nil || !ok {
		return false, err
	}
	var dist bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_dist_partition
		WHERE logicalrelid = to_regclass('public.`+citusReference+`') AND partmethod = 'n' AND repmodel = 't')`).Scan(&dist)
	return dist, err
}

// applyDirective carries out a migration's `-- dripdrop:distribute|reference
// <table>` on a distributed database, and does nothing elsewhere.
func applyDirective(ctx context.Context, tx pgx.Tx, st migrationStep) error {
	dist, err := citusDistributed(ctx, tx)
	if err != nil || !dist {
		return err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"); err != nil {
		return err
	}
	switch st.Directive {
	case "distribute":
		_, err = tx.Exec(ctx, "SELECT create_distributed_table($1::regclass, 'tenant_key', colocate_with => $2)", st.Table, citusAnchor)
	case "reference":
		_, err = tx.Exec(ctx, "SELECT create_reference_table($1::regclass)", st.Table)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", st.Directive, st.Table, err)
	}
	return nil
}

// CitusDistribute distributes the migrated schema on a Citus coordinator:
// tenants becomes a reference table, every tenant table is distributed by
// tenant_key with shardCount shards (0: Citus's citus.shard_count) and
// colocated, the foreign keys among them are dropped before and added back
// after (a foreign key to a reference table would otherwise turn a plain
// table into a coordinator-only one), tables without tenant_key stay local.
// It runs in one transaction under the migration lock; on a database already
// distributed this way it does nothing, and it refuses a database that is
// partly distributed (by hand, or by a Citus that converted tables itself),
// naming each table's state.
func CitusDistribute(ctx context.Context, url string, shardCount int) (_ CitusReport, err error) {
	defer wrapErr(&err, "citus distribute")
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return CitusReport{}, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLockID)); err != nil {
		return CitusReport{}, fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLockID)) //nolint:errcheck
	ok, err := hasCitus(ctx, conn)
	if err != nil {
		return CitusReport{}, err
	}
	if !ok {
		return CitusReport{}, ErrCitusMissing
	}
	if err := migrationsCurrent(ctx, conn); err != nil {
		return CitusReport{}, err
	}
	var rep CitusReport
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var err error
		rep, err = distributeTx(ctx, tx, shardCount)
		return err
	})
	return rep, err
}

// migrationsCurrent refuses to distribute a schema that is not the
// embedded one: distribution follows `dripdrop migrate`.
func migrationsCurrent(ctx context.Context, conn *pgx.Conn) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	var n int
	var max *int
	if err := conn.QueryRow(ctx, "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &max); err != nil {
		return fmt.Errorf("read schema_migrations (run dripdrop migrate first): %w", err)
	}
	if max == nil || *max < ms[len(ms)-1].Version {
		return fmt.Errorf("the schema is not migrated to %04d: run dripdrop migrate first", ms[len(ms)-1].Version)
	}
	return nil
}

func distributeTx(ctx context.Context, tx pgx.Tx, shardCount int) (CitusReport, error) {
	rep := CitusReport{}
	placements, err := citusPlacements(ctx, tx)
	if err != nil {
		return rep, err
	}
	tenantTables, err := tenantTables(ctx, tx)
	if err != nil {
		return rep, err
	}
	for name := range placements {
		if name == citusReference || slices.Contains(tenantTables, name) {
			continue
		}
		rep.Local = append(rep.Local, name)
	}
	slices.Sort(rep.Local)
	for _, l := range rep.Local {
		if !slices.Contains(citusLocal, l) {
			return rep, fmt.Errorf("table %s has no tenant_key column: every table but %s must lead with tenant_key", l, strings.Join(citusLocal, ", "))
		}
	}
	rep.Reference = []string{citusReference}
	rep.Distributed = tenantTables

	// Where does each table stand? All done, or nothing done, or refuse.
	var done, notDone, wrong []string
	ref := placements[citusReference]
	switch {
	case ref.method == "n" && ref.repModel == "t":
		done = append(done, citusReference)
	case ref.method == "":
		notDone = append(notDone, citusReference)
	default:
		wrong = append(wrong, citusReference+" is "+ref.String())
	}
	anchorColoc := placements[citusAnchor].coloc
	for _, t := range tenantTables {
		p := placements[t]
		switch {
		case p.method == "h" && p.column == "tenant_key" && p.coloc == anchorColoc:
			done = append(done, t)
		case p.method == "":
			notDone = append(notDone, t)
		default:
			wrong = append(wrong, t+" is "+p.String())
		}
	}
	for _, l := range rep.Local {
		if p := placements[l]; p.method != "" {
			wrong = append(wrong, l+" is "+p.String()+" (it must stay a plain coordinator table)")
		}
	}
	if len(wrong) == 0 && len(notDone) == 0 {
		rep.AlreadyDistributed = true
		return rep, nil
	}
	if len(wrong) > 0 || len(done) > 0 {
		var parts []string
		parts = append(parts, wrong...)
		if len(notDone) > 0 {
			parts = append(parts, "not distributed: "+strings.Join(notDone, ", "))
		}
		if len(done) > 0 {
			parts = append(parts, "already distributed: "+strings.Join(done, ", "))
		}
		return rep, fmt.Errorf("the database is partly distributed, which this command does not repair (%s); restore a backup of the plain schema, or undistribute the tables (undistribute_table), and run it again",
			strings.Join(parts, "; "))
	}

	for _, set := range []string{
		"SET LOCAL citus.multi_shard_modify_mode TO 'sequential'",
		// The ready queue's triggers move with their tables to the shards,
		// where their functions touch only shard-local rows (docs/scaling.md).
		"SET LOCAL citus.enable_unsafe_triggers TO on",
	} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return rep, err
		}
	}
	if shardCount > 0 {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL citus.shard_count TO %d", shardCount)); err != nil {
			return rep, err
		}
	}
	if err := tx.QueryRow(ctx, "SELECT current_setting('citus.shard_count')::int").Scan(&rep.ShardCount); err != nil {
		return rep, err
	}

	// Every foreign key among the tables, to drop and add back.
	all := append([]string{citusReference}, tenantTables...)
	rows, err := tx.Query(ctx, `SELECT c.conrelid::regclass::text, c.conname::text, pg_get_constraintdef(c.oid)
		FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = ANY($1::regclass[])
		ORDER BY c.conrelid::regclass::text, c.conname`, all)
	if err != nil {
		return rep, err
	}
	type fk struct{ table, name, def string }
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fk, error) {
		var f fk
		return f, r.Scan(&f.table, &f.name, &f.def)
	})
	if err != nil {
		return rep, err
	}
	for _, f := range fks {
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", pgx.Identifier{f.table}.Sanitize(), pgx.Identifier{f.name}.Sanitize())); err != nil {
			return rep, fmt.Errorf("drop %s.%s: %w", f.table, f.name, err)
		}
	}
	// Shard-local trigger bodies first: distributing a table sends its
	// triggers' functions to the workers as they are then.
	fnSteps, err := splitMigration(citusTriggerFunctions)
	if err != nil {
		return rep, err
	}
	for _, st := range fnSteps {
		if _, err := tx.Exec(ctx, st.SQL); err != nil {
			return rep, fmt.Errorf("shard-local trigger functions: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "SELECT create_distributed_function('dripdrop_shard_rel(text,text,text,text)')"); err != nil {
		return rep, fmt.Errorf("shard-local trigger functions: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT create_reference_table($1::regclass)", citusReference); err != nil {
		return rep, fmt.Errorf("reference table %s: %w", citusReference, err)
	}
	if _, err := tx.Exec(ctx, "SELECT create_distributed_table($1::regclass, 'tenant_key', colocate_with => 'none')", citusAnchor); err != nil {
		return rep, fmt.Errorf("distribute %s: %w", citusAnchor, err)
	}
	for _, t := range tenantTables {
		if t == citusAnchor {
			continue
		}
		if _, err := tx.Exec(ctx, "SELECT create_distributed_table($1::regclass, 'tenant_key', colocate_with => $2)", t, citusAnchor); err != nil {
			return rep, fmt.Errorf("distribute %s: %w", t, err)
		}
	}
	for _, f := range fks {
		if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", pgx.Identifier{f.table}.Sanitize(), pgx.Identifier{f.name}.Sanitize(), f.def)); err != nil {
			return rep, fmt.Errorf("add back %s.%s: %w", f.table, f.name, err)
		}
	}
	rep.ForeignKeys = len(fks)
	// Engines write through the coordinator only. Allowing writes from the
	// workers would make every write to a table with a foreign key to the
	// reference table (all of them) lock the reference table on the first
	// worker too, so a tenant's transaction would commit in two phases
	// across two workers (docs/scaling.md#engines-connect-to-the-coordinator).
	//
	// No JIT compilation: the coordinator plans a statement's steps over the
	// results of its earlier steps with the default estimate of 1 000 rows
	// each, their cost crosses jit_above_cost, and compiling takes longer
	// than the statement (the hot path ran at a fifth of its rate).
	if _, err := tx.Exec(ctx, `DO $$ BEGIN
		EXECUTE format('ALTER DATABASE %I SET citus.allow_modifications_from_workers_to_replicated_tables = off', current_database());
		EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
	END $$`); err != nil {
		return rep, fmt.Errorf("coordinator settings: %w", err)
	}
	return rep, nil
}

// tenantTables are the public tables other than tenants with a tenant_key
// column, by name.
func tenantTables(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname::text FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_key' AND NOT a.attisdropped
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> $1
		ORDER BY c.relname`, citusReference)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// citusProbe remembers whether the store's database has the citus
// extension, asked once on first use (and again after a failed ask).
type citusProbe struct {
	mu    sync.Mutex
	known bool
	on    bool
}

// onCitus reports whether the database runs Citus. The hot path's plan
// settings depend on it: Citus plans a router query only for its
// parameters' values (a generic plan of a statement with CTEs is refused),
// and SET LOCAL planner settings do not reach the workers anyway.
func (s *Store) onCitus(ctx context.Context) bool {
	p := &s.citus
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known {
		return p.on
	}
	on, err := hasCitus(ctx, s.pool)
	if err != nil {
		return false
	}
	p.known, p.on = true, on
	return on
}

// Sharded reports whether the database is a Citus cluster, sharded by
// tenant: callers then keep each transaction to one tenant, so that none
// commits across workers (docs/scaling.md#engines-connect-to-the-coordinator).
func (s *Store) Sharded(ctx context.Context) bool { return s.onCitus(ctx) }

// citusClaimSettings are claimSettings on Citus: no generic plan (Citus
// routes a statement by its parameters' values, and refuses a generic plan
// with CTEs), and the planner settings propagated to the workers, which
// plan the shard query (SET LOCAL stays on the coordinator unless
// citus.propagate_set_commands is 'local').
var citusClaimSettings = []string{
	"set local synchronous_commit = off",
	"set local citus.propagate_set_commands = 'local'",
	"set local enable_hashjoin = off",
	"set local enable_mergejoin = off",
}

// claimSettingsFor is claimSettings, or citusClaimSettings on Citus.
func (s *Store) claimSettingsFor(ctx context.Context) []string {
	if s.onCitus(ctx) {
		return citusClaimSettings
	}
	return claimSettings
}

// beginHot is beginGeneric, or on Citus a plain begin.
func (s *Store) beginHot(ctx context.Context) []string {
	if s.onCitus(ctx) {
		return []string{"begin"}
	}
	return beginGeneric
}
