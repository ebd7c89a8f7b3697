package dbtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// Benchmark hooks that reach below the store's API: they live here, beside
// the test databases, so the engine's own API holds only what the engine
// uses.

// ClaimSettings are the claim's plan settings (the store's claim runs its
// statement under them); a test of package db checks they stay the same.
var ClaimSettings = []string{
	"set local synchronous_commit = off",
	"set local plan_cache_mode = force_generic_plan",
	"set local enable_hashjoin = off",
	"set local enable_mergejoin = off",
}

// Bare is the hot-path benchmark's baseline writer: a pool of its own on
// the benchmark's database, as large as the store's, that marks a claimed
// execution sent with one durable commit and nothing else (no policies,
// rendering or bookkeeping).
type Bare struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	now  func() time.Time
}

// NewBare opens a Bare writer of conns connections on dsn; now is the
// store's clock.
func NewBare(t testing.TB, dsn string, conns int32, now func() time.Time) *Bare {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	cfg.MaxConns = conns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return &Bare{pool: pool, q: dbsqlc.New(pool), now: now}
}

// RecordSent marks one claimed execution sent.
func (b *Bare) RecordSent(ctx context.Context, tenant string, id uuid.UUID) error {
	_, err := b.q.RecordBareSend(ctx, dbsqlc.RecordBareSendParams{TenantKey: tenant, ID: id, Now: b.now()})
	return err
}

// ExplainClaim runs one claim of up to limit executions of tenant at now
// under EXPLAIN (ANALYZE, BUFFERS), with the claim's settings, and rolls it
// back: the plan and its measured cost, for benchmarks that prove the
// claim costs O(claimed).
func ExplainClaim(t testing.TB, dsn, tenant string, limit int, now time.Time) string {
	t.Helper()
	var plan string
	connect(t, dsn, func(ctx context.Context, conn *pgx.Conn) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck
		for _, set := range ClaimSettings {
			if _, err := tx.Exec(ctx, set); err != nil {
				t.Fatalf("dbtest: %v", err)
			}
		}
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+dbsqlc.ClaimReadySQL,
			[]uuid.UUID{}, []int{}, now, tenant, limit+16, limit, now.Add(time.Minute))
		if err != nil {
			t.Fatalf("dbtest: explain: %v", err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("dbtest: explain: %v", err)
		}
		plan = strings.Join(lines, "\n")
	})
	return plan
}
