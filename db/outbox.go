package db

import (
	"context"
	"encoding/json"

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

// batchRows passes on a batch result's rows: their error, if any, surfaces from
// pgx.CollectRows.
func batchRows(rows pgx.Rows, _ error) pgx.Rows { return rows }

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
	return s.txBegin(ctx, "begin", fn, evs...)
}

// beginGeneric starts a hot-path transaction (reservation, record) whose
// prepared statements run on generic plans: their shapes never depend on
// parameter values (ids, arrays, one tenant), and re-planning them for
// every execution cost more than executing them (LoadSendsLocked's
// five-way join took over a millisecond to plan per send).
const beginGeneric = "begin; set local plan_cache_mode = force_generic_plan"

// txBegin is tx started by the begin statement given (one round trip).
func (s *Store) txBegin(ctx context.Context, begin string, fn func(q *dbsqlc.Queries) error, evs ...*[]event) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	if _, err := c.Exec(ctx, begin); err != nil {
		return err
	}
	open := true
	defer func() {
		if open {
			// A failed or panicking fn: roll back (a conn still in a
			// transaction would not be reused by the pool anyway).
			_, _ = c.Exec(context.WithoutCancel(ctx), "rollback")
		}
	}()
	if err := fn(dbsqlc.New(c)); err != nil {
		return err
	}
	rows, tenants := outboxRows(evs)
	if len(rows) == 0 {
		_, err := c.Exec(ctx, "commit")
		open = err != nil
		return err
	}
	ts, names, metas := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	for i, e := range rows {
		b, err := json.Marshal(e.metadata)
		if err != nil {
			return err
		}
		ts[i], names[i], metas[i] = e.metadata["tenant_key"].(string), e.name, string(b)
	}
	b := &pgx.Batch{}
	b.Queue(insertOutboxSQL, ts, names, metas, s.clock.Now())
	b.Queue("commit")
	br := c.SendBatch(ctx, b)
	noMatch, err := pgx.CollectRows(batchRows(br.Query()), func(r pgx.CollectableRow) (nameCount, error) {
		var nc nameCount
		return nc, r.Scan(&nc.name, &nc.n)
	})
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	open = false
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
