// Package dbtest gives every test its own freshly migrated PostgreSQL
// database on a real server: TEST_DATABASE_URL when set (it must point at a
// database whose role may CREATE DATABASE), otherwise a managed local cluster
// in <repo>/.dripdrop/testpg. Databases are cloned from a migrated template,
// so a new one costs a few tens of milliseconds.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/localpg"
)

// cluster is one managed server and its migrated template.
type cluster struct {
	once     sync.Once
	adminURL string
	template string
	err      error
}

var (
	fast    = &cluster{} // fsync off: tests
	durable = &cluster{} // fsync on: benchmarks measure durable commits
)

// URL returns the connection string of a new, migrated, empty database that
// is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	return fast.url(t, "testpg", true)
}

// DurableURL is URL on a cluster with fsync and synchronous commit on
// (BENCH_DATABASE_URL when set, otherwise a managed local cluster in
// <repo>/.dripdrop/benchpg): what benchmarks of durable commits measure.
func DurableURL(t testing.TB) string {
	t.Helper()
	return durable.url(t, "benchpg", false)
}

func (c *cluster) url(t testing.TB, dir string, fastCluster bool) string {
	t.Helper()
	c.once.Do(func() { c.adminURL, c.template, c.err = setup(dir, fastCluster) })
	if c.err != nil {
		t.Fatalf("dbtest: %v", c.err)
	}
	adminURL, template := c.adminURL, c.template
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "t_" + randHex(8)
	if err := exec(ctx, adminURL, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = exec(ctx, adminURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return withDB(adminURL, name)
}

// Store returns a *db.Store on a fresh database, closed when the test ends.
func Store(t testing.TB, opts db.Options) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), URL(t), opts)
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func setup(dir string, fastCluster bool) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin := os.Getenv("TEST_DATABASE_URL")
	if !fastCluster {
		admin = os.Getenv("BENCH_DATABASE_URL")
	}
	if admin == "" {
		root, err := repoRoot()
		if err != nil {
			return "", "", err
		}
		c, err := localpg.Ensure(ctx, filepath.Join(root, ".dripdrop", dir), localpg.Options{Fast: fastCluster})
		if err != nil {
			return "", "", err
		}
		admin = c.URL("postgres")
	}
	fp, err := db.SchemaFingerprint()
	if err != nil {
		return "", "", err
	}
	tmpl := "dripdrop_tmpl_" + fp
	// Test binaries of several packages run at once: serialise template
	// creation with an advisory lock on the admin database.
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", "", fmt.Errorf("connect %s: %w", redact(admin), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7301)"); err != nil {
		return "", "", err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(7301)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return "", "", err
	}
	if !exists {
		building := tmpl + "_build"
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)")
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+building); err != nil {
			return "", "", err
		}
		if _, err := db.Migrate(ctx, withDB(admin, building)); err != nil {
			return "", "", err
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", building, tmpl)); err != nil {
			return "", "", err
		}
	}
	return admin, tmpl, nil
}

func exec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func withDB(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + name
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// connect opens a connection closed when fn returns.
func connect(t testing.TB, dsn string, fn func(ctx context.Context, conn *pgx.Conn)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	fn(ctx, conn)
}

// RowCounts returns the number of rows of every table in the public schema
// of the database at url, to prove that a rejected request changed nothing.
func RowCounts(t testing.TB, dsn string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	connect(t, dsn, func(ctx context.Context, conn *pgx.Conn) {
		rows, _ := conn.Query(ctx, "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("dbtest: list tables: %v", err)
		}
		for _, tb := range tables {
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{tb}.Sanitize()).Scan(&n); err != nil {
				t.Fatalf("dbtest: count %s: %v", tb, err)
			}
			out[tb] = n
		}
	})
	return out
}

// Exec runs one SQL statement on the database at dsn (test fixtures).
func Exec(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	connect(t, dsn, func(ctx context.Context, conn *pgx.Conn) {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("dbtest: exec: %v", err)
		}
	})
}

// ExecParallel runs each script on its own connection, all at once (bulk
// loads that use more than one core), and fails the test if any failed.
func ExecParallel(t testing.TB, dsn string, scripts ...string) {
	t.Helper()
	ctx := context.Background()
	errs := make([]error, len(scripts))
	var wg sync.WaitGroup
	for i, sql := range scripts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close(ctx)
			_, errs[i] = conn.Exec(ctx, sql)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("dbtest: exec: %v", err)
		}
	}
}

// Query runs a query on the database at dsn and returns its rows (test
// assertions that need SQL the store does not expose).
func Query(t testing.TB, dsn, sql string, args ...any) (out [][]any) {
	t.Helper()
	connect(t, dsn, func(ctx context.Context, conn *pgx.Conn) {
		rows, err := conn.Query(ctx, sql, args...)
		if err == nil {
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		}
		if err != nil {
			t.Fatalf("dbtest: query %q: %v", sql, err)
		}
	})
	return out
}

// Conn is one open connection for tests that query in a loop.
type Conn struct {
	t    testing.TB
	conn *pgx.Conn
}

// Connect opens a connection to the database at dsn, closed when the test ends.
func Connect(t testing.TB, dsn string) *Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("dbtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &Conn{t: t, conn: conn}
}

// Query runs a query and returns its rows.
func (c *Conn) Query(sql string, args ...any) [][]any {
	c.t.Helper()
	rows, err := c.conn.Query(context.Background(), sql, args...)
	var out [][]any
	if err == nil {
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
	}
	if err != nil {
		c.t.Fatalf("dbtest: query %q: %v", sql, err)
	}
	return out
}

// WaitOutboxPublished waits until every committed telemetry outbox row is
// visible in the feed. The feed publishes a row only once every transaction
// older than its writer has ended — in the whole cluster, so another test's
// CREATE DATABASE can hold it back for a moment.
func WaitOutboxPublished(t testing.TB, dsn string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		rows := Query(t, dsn, "SELECT count(*) FROM telemetry_outbox WHERE writer_xid >= pg_snapshot_xmin(pg_current_snapshot())")
		if rows[0][0].(int64) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("dbtest: outbox rows still unpublished after a minute (a long-running transaction in the cluster?)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
