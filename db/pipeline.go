package db

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// Pipelining: the statements of one step of a hot-path transaction go out
// together (a pgx.Batch, one round trip) instead of one round trip each.
// queueRows and queueExec take the statement a generated query method
// would run, with its arguments in the generated order, by calling the
// method on a capturing DBTX, so the SQL and its parameters are never
// written twice.

// errCaptured stops a generated method once its statement is captured.
var errCaptured = errors.New("db: statement captured for a batch")

// capture is a DBTX that records the statement a generated method runs.
type capture struct {
	sql  string
	args []any
}

func (c *capture) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.sql, c.args = sql, args
	return pgconn.CommandTag{}, errCaptured
}

func (c *capture) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.sql, c.args = sql, args
	return nil, errCaptured
}

func (c *capture) QueryRow(context.Context, string, ...any) pgx.Row {
	panic("db: QueryRow cannot be queued in a batch")
}

func (c *capture) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults {
	panic("db: SendBatch cannot be queued in a batch")
}

// captured is the statement and arguments call runs.
func captured(call func(q *dbsqlc.Queries) error) *capture {
	c := &capture{}
	if err := call(dbsqlc.New(c)); !errors.Is(err, errCaptured) {
		panic("db: the queued call ran no statement")
	}
	return c
}

// queueRows queues the statement of call (a generated :many method) on b;
// when the batch runs, its rows are collected into *out, scanned by
// position into T (the method's row type, whose fields follow the
// statement's columns).
func queueRows[T any](b *pgx.Batch, out *[]T, call func(q *dbsqlc.Queries) error) {
	c := captured(call)
	b.Queue(c.sql, c.args...).Query(func(rows pgx.Rows) error {
		v, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
		*out = v
		return err
	})
}

// queueExec queues the statement of call (a generated :exec method) on b.
func queueExec(b *pgx.Batch, call func(q *dbsqlc.Queries) error) {
	c := captured(call)
	b.Queue(c.sql, c.args...)
}

// pipe is an open transaction whose statements go out in batches: the
// begin goes with the first batch, and statements queued on tail go with
// the outbox rows and COMMIT (see txPipe).
type pipe struct {
	c      *pgx.Conn
	q      *dbsqlc.Queries
	begin  []string // the statements that start the transaction
	begun  bool
	failed bool // a batch failed: the transaction is aborted
	// committed: the COMMIT went out with a batch (runCommit), so the
	// transaction has nothing more to send.
	committed bool
	tail      pgx.Batch
}

// runCommit is run with COMMIT queued last in the same round trip, for a
// transaction whose every event's outbox row its own statements write and
// that has nothing to decide after them. A failed statement makes the
// server skip the rest of the batch, COMMIT included, so nothing commits
// that failed.
func (p *pipe) runCommit(ctx context.Context, b *pgx.Batch) error {
	b.Queue("commit")
	if err := p.run(ctx, b); err != nil {
		return err
	}
	p.committed = true
	return nil
}

// run sends b as one round trip (after the begin when it has not gone out
// yet) and runs its queued callbacks in order.
func (p *pipe) run(ctx context.Context, b *pgx.Batch) error {
	if !p.begun {
		head := make([]*pgx.QueuedQuery, 0, len(p.begin)+len(b.QueuedQueries))
		for _, sql := range p.begin {
			head = append(head, &pgx.QueuedQuery{SQL: sql})
		}
		b.QueuedQueries = append(head, b.QueuedQueries...)
		p.begun = true
	}
	if err := p.c.SendBatch(ctx, b).Close(); err != nil {
		p.failed = true
		return err
	}
	return nil
}

// Q returns the transaction's queries for statements run one at a time
// (rare paths), starting the transaction first when no batch has.
func (p *pipe) Q(ctx context.Context) (*dbsqlc.Queries, error) {
	if !p.begun {
		if err := p.run(ctx, &pgx.Batch{}); err != nil {
			return nil, err
		}
	}
	return p.q, nil
}
