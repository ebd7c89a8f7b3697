// Package db is dripdrop's PostgreSQL store: the only package that imports
// pgx and the sqlc-generated queries. Every method takes the tenant key and
// every query filters on it, so nothing is read or written across tenants.
package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/db/internal/pgxuuid"
	"github.com/dripdrop/dripdrop/preflight"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
)

// Options configure a Store.
type Options struct {
	// Vault encrypts adapter credentials; required to store or read them.
	Vault *vault.Box
	// Clock is the source of "now" (default: the system clock).
	Clock dripdrop.Clock
	// MaxConns caps the connection pool (default 10).
	MaxConns int32
	// Telemetry receives catalog events after the change they report has
	// committed (a *telemetry.Bus; nil drops them).
	Telemetry Emitter
	// Logger receives the notification listener's outage lines (default
	// slog.Default).
	Logger *slog.Logger
	// OutboxMetrics observes the telemetry outbox (default telemetry.NoOp).
	OutboxMetrics telemetry.OutboxMetrics
	// AllowPrivateTargets accepts webhook URLs on loopback, private,
	// link-local, unspecified and multicast addresses
	// (docs/security.md#the-operators-network).
	AllowPrivateTargets bool
	// StatementHook, when set, sees every statement the store sends (SQL
	// and arguments, pipelined ones included; a COPY as "COPY <table>
	// (<columns>) FROM STDIN" without its rows) before it runs: for tests
	// that examine the engine's queries, such as the Citus plan test.
	StatementHook func(sql string, args []any)
	// Resolver answers the DNS questions of the deliverability preflight
	// (sender domains, recipients at verify_recipients=mx); nil turns the
	// DNS checks off (docs/preflight.md).
	Resolver preflight.Resolver
}

// Emitter receives telemetry events.
type Emitter interface {
	Emit(ctx context.Context, name string, measurements map[string]float64, metadata map[string]any)
}

// event is a telemetry event held until its transaction commits.
type event struct {
	name string
	// tenant is the event's tenant when its metadata has no tenant_key
	// (the catalog's template events).
	tenant   string
	metadata map[string]any
	// measurements, when set, replace the counter's {"count": 1}.
	measurements map[string]float64
	// written: the transaction's own statement wrote the event's outbox
	// row (a bulk write builds them in SQL from the rows it inserted), so
	// the outbox seam only counts, announces and emits it; noMatch is the
	// status that statement gave it.
	written, noMatch bool
}

func (s *Store) emit(ctx context.Context, evs ...event) {
	if s.tel == nil {
		return
	}
	for _, e := range evs {
		m := e.measurements
		if m == nil {
			m = map[string]float64{"count": 1}
		}
		s.tel.Emit(ctx, e.name, m, e.metadata)
	}
}

// Store is the engine's handle on PostgreSQL.
type Store struct {
	pool  *pgxpool.Pool
	q     *dbsqlc.Queries
	vault *vault.Box
	clock dripdrop.Clock
	tel   Emitter
	log   *slog.Logger

	outboxMetrics telemetry.OutboxMetrics
	allowPrivate  bool
	notes         *notifier    // post-commit wake-ups (notify.go)
	stats         *statsKeeper // statistics after bulk enrollments (stats.go)
	citus         citusProbe   // whether the database runs Citus (citus.go)
	resolver      preflight.Resolver
}

// Open connects to the database at url. It does not migrate.
func Open(ctx context.Context, url string, opts Options) (_ *Store, err error) {
	defer wrapErr(&err, "open")
	cfg, err := poolConfig(url, opts)
	if err != nil {
		return nil, err
	}
	return openPool(ctx, cfg, opts)
}

// poolConfig is the connection pool's configuration for url.
func poolConfig(url string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	cfg.MaxConns = 10
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	cfg.ConnConfig.RuntimeParams["application_name"] = "dripdrop"
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		return nil
	}
	if opts.StatementHook != nil {
		cfg.ConnConfig.Tracer = statementTracer(opts.StatementHook)
	}
	return cfg, nil
}

// openPool opens a Store on a pool configured by poolConfig.
func openPool(ctx context.Context, cfg *pgxpool.Config, opts Options) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	clock := opts.Clock
	if clock == nil {
		clock = dripdrop.SystemClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	om := opts.OutboxMetrics
	if om == nil {
		om = telemetry.NoOp{}
	}
	s := &Store{pool: pool, q: dbsqlc.New(pool), vault: opts.Vault, clock: clock, tel: opts.Telemetry, log: log,
		outboxMetrics: om, allowPrivate: opts.AllowPrivateTargets, resolver: opts.Resolver}
	s.notes = newNotifier(s)
	s.stats = newStatsKeeper(s)
	return s, nil
}

// Close stops a statistics refresh in progress, sends pending wake-ups and
// releases every connection.
func (s *Store) Close() {
	s.stats.close()
	s.notes.close()
	s.pool.Close()
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return wrap("ping", s.pool.Ping(ctx)) }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.clock.Now() }

// Page selects a slice of a list ordered by id.
type Page struct {
	After uuid.UUID // exclusive lower bound; zero = from the start
	Limit int       // 1..200, default 50
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 50
	case p.Limit > 200:
		return 200
	}
	return p.Limit
}

// nextCursor returns the id to continue after when the page is full.
func nextCursor[T any](items []T, limit int, id func(T) uuid.UUID) *uuid.UUID {
	if len(items) < limit || len(items) == 0 {
		return nil
	}
	last := id(items[len(items)-1])
	return &last
}

// mapErr turns "no rows" and constraint violations into *dripdrop.Error and
// leaves everything else as an internal error.
func mapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var de *dripdrop.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return dripdrop.NotFound(what)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return &dripdrop.Error{Code: dripdrop.ECodeAlreadyExists, Message: what + " already exists"}
		case "23503": // foreign_key_violation
			return &dripdrop.Error{Code: dripdrop.ECodeNotFound, Message: "a referenced object does not exist"}
		case "23514", "22001", "22003", "22P02", "22021": // check, too long, out of range, bad text, bad encoding
			return &dripdrop.Error{Code: dripdrop.ECodeInvalidValue, Message: "value rejected by the database (" + pe.ConstraintName + ")"}
		}
	}
	return err
}

func (s *Store) audit(ctx context.Context, q *dbsqlc.Queries, tenant, entityType string, entityID uuid.UUID, action, actor string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return q.InsertAudit(ctx, dbsqlc.InsertAuditParams{
		TenantKey: tenant, ID: dripdrop.NewID(), EntityType: entityType, EntityID: entityID,
		Action: action, Data: b, Actor: actor, Now: s.clock.Now(),
	})
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID         uuid.UUID       `json:"id"`
	EntityType string          `json:"entity_type"`
	EntityID   uuid.UUID       `json:"entity_id"`
	Action     string          `json:"action"`
	Data       json.RawMessage `json:"data"`
	Actor      string          `json:"actor"`
	CreatedAt  time.Time       `json:"created_at"`
}

// Audit lists the audit entries of one entity, oldest first.
func (s *Store) Audit(ctx context.Context, tenant, entityType string, id uuid.UUID) (_ []AuditEntry, err error) {
	defer wrapErr(&err, "read audit")
	rows, err := s.q.ListAudit(ctx, dbsqlc.ListAuditParams{TenantKey: tenant, EntityType: entityType, EntityID: id})
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = AuditEntry{ID: r.ID, EntityType: r.EntityType, EntityID: r.EntityID, Action: r.Action, Data: r.Data, Actor: r.Actor, CreatedAt: r.CreatedAt}
	}
	return out, nil
}
