package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Copy is one table's prebuilt rows for Copier.Run.
type Copy struct {
	Table   string
	Columns []string
	Rows    [][]any
}

// Copier writes prebuilt rows with binary COPY (the physical baseline of
// bulk benchmarks: what the rows cost to write, with the tables' indexes
// and triggers, and nothing else). It holds one connection, opened before
// anything is timed.
type Copier struct {
	t    testing.TB
	conn *pgx.Conn
}

// NewCopier connects to the database at dsn; the connection closes when the
// test ends.
func NewCopier(t testing.TB, dsn string) *Copier {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &Copier{t: t, conn: conn}
}

// Run copies every table's rows in one transaction, in order, commits, and
// returns how long that took from BEGIN to the commit's answer.
func (c *Copier) Run(copies ...Copy) time.Duration {
	c.t.Helper()
	ctx := context.Background()
	start := time.Now()
	tx, err := c.conn.Begin(ctx)
	if err != nil {
		c.t.Fatalf("dbtest: copy: %v", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after a commit it does nothing
	for _, cp := range copies {
		n, err := tx.CopyFrom(ctx, pgx.Identifier{cp.Table}, cp.Columns, pgx.CopyFromRows(cp.Rows))
		if err != nil || int(n) != len(cp.Rows) {
			c.t.Fatalf("dbtest: copy %s: %d of %d rows, %v", cp.Table, n, len(cp.Rows), err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		c.t.Fatalf("dbtest: copy: commit: %v", err)
	}
	return time.Since(start)
}

// Scan runs a query that returns one row and scans it into dest (test
// fixtures: ids a benchmark needs for its prebuilt rows).
func (c *Copier) Scan(sql string, args []any, dest ...any) {
	c.t.Helper()
	if err := c.conn.QueryRow(context.Background(), sql, args...).Scan(dest...); err != nil {
		c.t.Fatalf("dbtest: scan: %v", err)
	}
}

// Quiesce waits until no other session of the database is running a
// statement (a statistics refresh, an autovacuum worker), at most 30 s, so
// a timed section does not share the server with the previous one's
// aftermath.
func (c *Copier) Quiesce() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var busy int
		if err := c.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`).Scan(&busy); err != nil {
			c.t.Fatalf("dbtest: quiesce: %v", err)
		}
		if busy == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
