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
	"github.com/dripdrop/dripdrop/db/internal/pgxuuid"
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

// Bare is the hot-path benchmark's baseline: a pool of its own on the
// benchmark's database, configured and sized like the store's, that claims
// with the store's claim statement and settings (Claim) and marks a claimed
// execution sent with one durable commit and nothing else (RecordSent: no
// policies, rendering or bookkeeping). Claims and records share the pool,
// as they share the store's in the engine.
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
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return &Bare{pool: pool, q: dbsqlc.New(pool), now: now}
}

// Claim claims up to limit due executions of tenant at now, as the store's
// claim does (busy: this process's sends in flight per adapter; claims are
// held until now+hold).
func (b *Bare) Claim(ctx context.Context, tenant string, limit int, busy map[uuid.UUID]int, hold time.Duration) ([]uuid.UUID, []uuid.UUID, error) {
	now := b.now()
	ids := make([]uuid.UUID, 0, len(busy))
	counts := make([]int, 0, len(busy))
	for id, n := range busy {
		if n > 0 {
			ids, counts = append(ids, id), append(counts, n)
		}
	}
	// One round trip, as the store's claim: begin, settings, the claim,
	// commit.
	batch := &pgx.Batch{}
	batch.Queue("begin")
	for _, set := range ClaimSettings {
		batch.Queue(set)
	}
	var execs, adapters []uuid.UUID
	batch.Queue(dbsqlc.ClaimReadySQL, ids, counts, now, tenant, limit+16, limit, now.Add(hold)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, adapter uuid.UUID
			var dueOnWrite bool
			if err := rows.Scan(&id, &adapter, &dueOnWrite); err != nil {
				return err
			}
			execs, adapters = append(execs, id), append(adapters, adapter)
		}
		return rows.Err()
	})
	batch.Queue("commit")
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Release()
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "rollback")
		return nil, nil, err
	}
	return execs, adapters, nil
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
