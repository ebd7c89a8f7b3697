package db

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// OutboxChannel is the LISTEN/NOTIFY channel announcing new outbox rows; the
// payload is the tenant key.
const OutboxChannel = "dripdrop_outbox"

// outboxRows are the events of evs that go to the outbox (every event that
// names its tenant) and the distinct tenants to notify.
func outboxRows(evs []*[]event) ([]event, []string) {
	var rows []event
	var tenants []string
	seen := map[string]bool{}
	for _, p := range evs {
		for _, e := range *p {
			tenant, _ := e.metadata["tenant_key"].(string)
			if tenant == "" {
				continue
			}
			if !seen[tenant] {
				seen[tenant] = true
				tenants = append(tenants, tenant)
			}
			rows = append(rows, e)
		}
	}
	return rows, tenants
}

// insertOutboxSQL writes many events in one statement; writer_xid defaults
// to the transaction's id (the feed's never-skip order). An event of a
// tenant without an active subscription is written as no_match at once:
// the feed and the stream read it all the same, and the fan-out has nothing
// to do for it (updating it later cost a second version of every row). It
// returns how many of each name were so written.
const insertOutboxSQL = `WITH ins AS (
    INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at, status)
    SELECT u.t, u.n, '{"count": 1}'::jsonb, u.m, $4,
           CASE WHEN u.t = ANY(coalesce((SELECT array_agg(w.tenant_key) FROM webhook_subscriptions w
                                         WHERE w.tenant_key = ANY($1::text[]) AND w.active), '{}'))
                THEN 'pending' ELSE 'no_match' END
    FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(t, n, m)
    RETURNING name, status
)
SELECT name, count(*)::int FROM ins WHERE status = 'no_match' GROUP BY name`

type nameCount struct {
	name string
	n    int
}

// tx runs fn in a transaction, committing when it returns nil.
//
// This is the outbox seam: every event fn appends to one of evs is written
// to telemetry_outbox in the same transaction (SPEC §9), whether or not its
// tenant subscribes: the outbox is also the tenant's event feed and stream.
// The multi-row insert is pipelined with COMMIT in one round trip, so a
// transaction pays nothing more on the wire; the NOTIFY that announces the
// rows goes out after commit (notifier). Events are still emitted
// in-process by the caller after commit (s.emit).
func (s *Store) tx(ctx context.Context, fn func(q *dbsqlc.Queries) error, evs ...*[]event) error {
	if len(evs) == 0 {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
	}
	return s.txPipe(ctx, []string{"begin"}, func(p *pipe) error {
		q, err := p.Q(ctx)
		if err != nil {
			return err
		}
		return fn(q)
	}, evs...)
}

// beginGeneric starts a hot-path transaction (reservation, record) whose
// prepared statements run on generic plans: their shapes never depend on
// parameter values (ids, arrays, one tenant), and re-planning them for
// every execution cost more than executing them (LoadSendsLocked's
// five-way join took over a millisecond to plan per send).
var beginGeneric = []string{"begin", "set local plan_cache_mode = force_generic_plan"}

// txPipe is tx for a function that sends its statements in batches
// (pipe.run): the begin statements go out with its first batch, and what
// it queues on pipe.tail with the outbox rows and COMMIT.
func (s *Store) txPipe(ctx context.Context, begin []string, fn func(p *pipe) error, evs ...*[]event) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	p := &pipe{c: c, q: dbsqlc.New(c), begin: begin}
	committed := false
	defer func() {
		if p.begun && !committed {
			// A failed or panicking fn, or a failed commit: roll back (a
			// conn still in a transaction would not be reused by the pool
			// anyway).
			_, _ = c.Exec(context.WithoutCancel(ctx), "rollback")
		}
	}()
	if err := fn(p); err != nil {
		return err
	}
	if p.failed {
		return errors.New("db: a pipelined batch failed")
	}
	rows, tenants := outboxRows(evs)
	if len(rows) == 0 && len(p.tail.QueuedQueries) == 0 {
		if !p.begun {
			return nil // nothing was sent: no transaction to end
		}
		_, err := c.Exec(ctx, "commit")
		committed = err == nil
		return err
	}
	b := &p.tail
	var noMatch []nameCount
	if len(rows) > 0 {
		ts, names, metas := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
		for i, e := range rows {
			js, err := json.Marshal(e.metadata)
			if err != nil {
				return err
			}
			ts[i], names[i], metas[i] = e.metadata["tenant_key"].(string), e.name, string(js)
		}
		b.Queue(insertOutboxSQL, ts, names, metas, s.clock.Now()).Query(func(r pgx.Rows) error {
			var err error
			noMatch, err = pgx.CollectRows(r, func(r pgx.CollectableRow) (nameCount, error) {
				var nc nameCount
				return nc, r.Scan(&nc.name, &nc.n)
			})
			return err
		})
	}
	b.Queue("commit")
	if err := p.run(ctx, b); err != nil {
		return err
	}
	committed = true
	for _, nc := range noMatch {
		for range nc.n {
			s.outboxMetrics.OutboxEventsNoMatch(nc.name)
		}
	}
	// Listeners hear of the rows after commit (see notifier).
	for _, t := range tenants {
		s.notes.add(OutboxChannel, t)
	}
	for _, e := range rows {
		s.outboxMetrics.OutboxEventsPublished(e.name)
	}
	return nil
}
