package db

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dripdrop/dripdrop"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// InsertOutboxSQL is the outbox insert of the transaction seam, for the
// never-skip test's hand-held writers.
const InsertOutboxSQL = insertOutboxSQL

// TxWithEvents runs a transaction of one write that reports n events
// of tenant (the outbox seam benchmark).
func (s *Store) TxWithEvents(ctx context.Context, tenant string, n int) error {
	return s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		var evs []event
		for i := 0; i < n; i++ {
			evs = append(evs, event{name: "dripdrop.enrollment.paused", metadata: map[string]any{"enrollment_id": "e", "tenant_key": tenant, "reason": "bench"}})
		}
		return evs, s.audit(ctx, q, tenant, "bench", dripdrop.NewID(), "bench", "bench", nil) // a write, like every state change
	})
}

// OpenExplained is Open with auto_explain loaded in every session: the plan
// of every statement (nested ones included), as executed, goes to plan as
// auto_explain's JSON. It needs a superuser (session_preload_libraries).
func OpenExplained(ctx context.Context, url string, opts Options, plan func(json string)) (*Store, error) {
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, err
	}
	for k, v := range map[string]string{
		"session_preload_libraries":          "auto_explain",
		"auto_explain.log_min_duration":      "0",
		"auto_explain.log_analyze":           "on",
		"auto_explain.log_timing":            "off",
		"auto_explain.log_nested_statements": "on",
		"auto_explain.log_format":            "json",
		"auto_explain.log_level":             "notice",
	} {
		cfg.ConnConfig.RuntimeParams[k] = v
	}
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if _, js, ok := strings.Cut(n.Message, "plan:\n"); ok {
			plan(js)
		}
	}
	return openPool(ctx, cfg, opts)
}

// WaitStatsRefresh waits for the statistics refresh a bulk enrollment
// started, if any (grew registers it before EnrollBatch returns).
func (s *Store) WaitStatsRefresh() { s.stats.wg.Wait() }

// ClaimSettings are the claim's plan settings, for the check that
// dbtest.ClaimSettings (EXPLAIN of the claim in benchmarks) stays in step.
var ClaimSettings = claimSettings

// ApplyMigrations applies ms (not the embedded migrations) on the database
// at url, as Migrate does.
func ApplyMigrations(ctx context.Context, url string, ms []Migration) ([]int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	return applyMigrations(ctx, conn, ms)
}

// OneTripCommit runs, in one round trip with their COMMIT (pipe.runCommit),
// an insert of tenant key and then stmt: the one-trip record's shape, to
// show what commits when a statement of the batch fails.
func (s *Store) OneTripCommit(ctx context.Context, key, stmt string) error {
	return s.txPipe(ctx, []string{"begin"}, func(p *pipe) ([]event, error) {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO tenants (tenant_key, name) VALUES ($1, $1)`, key)
		b.Queue(stmt)
		return nil, p.runCommit(ctx, b)
	})
}

// CitusClaimSettings are the claim's settings on Citus.
var CitusClaimSettings = citusClaimSettings
