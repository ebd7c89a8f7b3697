package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// OutboxChannel is the LISTEN/NOTIFY channel announcing new outbox rows; the
// payload is the tenant key.
const OutboxChannel = "dripdrop_outbox"

// outboxTenants are the distinct tenants of evs, to notify after commit.
// Every event names its tenant: one that does not is a programming error,
// refused before anything commits.
func outboxTenants(evs []event) ([]string, error) {
	var tenants []string
	for _, e := range evs {
		tenant := e.tenantKey()
		if tenant == "" {
			return nil, fmt.Errorf("event %s names no tenant_key", e.name)
		}
		if !slices.Contains(tenants, tenant) {
			tenants = append(tenants, tenant)
		}
	}
	return tenants, nil
}

// insertOutboxSQL writes the events of one tenant ($1) in one statement
// (a single-shard statement when the cluster is sharded by tenant);
// writer_xid defaults to the transaction's id (the feed's never-skip order,
// docs/telemetry.md#the-event-feed). An event of a tenant without an active
// subscription is written as no_match at once: the feed and the stream read
// it all the same, and the fan-out has nothing to do for it (updating it
// later cost a second version of every row). It returns how many of each
// name were so written.
const insertOutboxSQL = `WITH ins AS (
    INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at, status)
    SELECT $1, u.n, u.x, u.m, $4,
           CASE WHEN EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.tenant_key = $1 AND w.active)
                THEN 'pending' ELSE 'no_match' END
    FROM unnest($2::text[], $3::jsonb[], $5::jsonb[]) AS u(n, m, x)
    RETURNING name, status
)
SELECT name, count(*)::int FROM ins WHERE status = 'no_match' GROUP BY name`

// citusOutboxInsert is insertOutboxSQL on Citus: a multi-row INSERT …
// VALUES of pending rows, which Citus sends to the tenant's worker alone
// (an INSERT … SELECT is collected on the coordinator and makes every
// worker a participant of the transaction). The shard-local outbox trigger
// takes writer_xid and turns the rows of a tenant without an active
// subscription into no_match (citusTriggerFunctions); RETURNING reports
// each row's status. Many rows (a batch import's) take several statements.
func citusOutboxInsert(tenant string, at time.Time, names, metas, ms []string) (sqls []string, args [][]any) {
	rows := make([][]any, len(names))
	for i := range names {
		rows[i] = []any{names[i], metas[i], ms[i]}
	}
	for _, chunk := range valuesChunks(rows, 2) {
		sql, a := valuesInsert("INSERT INTO telemetry_outbox (tenant_key, name, metadata, measurements, occurred_at, status) VALUES ",
			"($1, ?, ?::jsonb, ?::jsonb, $2, 'pending')", " RETURNING name, status", chunk, tenant, at)
		sqls, args = append(sqls, sql), append(args, a)
	}
	return sqls, args
}

// tenantKey is the tenant an event belongs to.
func (e event) tenantKey() string {
	if e.tenant != "" {
		return e.tenant
	}
	t, _ := e.metadata["tenant_key"].(string)
	return t
}

// countJSON is a counter's measurements, {"count": 1}.
const countJSON = `{"count": 1}`

type nameCount struct {
	name string
	n    int
}

// tx runs fn in a transaction, committing when it returns a nil error.
//
// This is the outbox seam, and the only way events leave the store: the
// events fn returns are written to telemetry_outbox in the same transaction
// (whether or not their tenant subscribes: the outbox is also the tenant's
// event feed and stream) and emitted in-process only after COMMIT. A
// transaction cannot emit an event it did not write. The multi-row insert
// is pipelined with COMMIT in one round trip, so a transaction pays nothing
// more on the wire; the NOTIFY that announces the rows goes out after
// commit (notifier).
func (s *Store) tx(ctx context.Context, fn func(q *dbsqlc.Queries) ([]event, error)) error {
	return s.txPipe(ctx, []string{"begin"}, func(p *pipe) ([]event, error) {
		q, err := p.Q(ctx)
		if err != nil {
			return nil, err
		}
		return fn(q)
	})
}

// publish writes events that report no other change (a refused enrollment's
// pool_exhausted) to the outbox in a transaction of their own, then emits
// them: they reach the feed and the subscribers like every other event.
func (s *Store) publish(ctx context.Context, evs ...event) error {
	return s.tx(ctx, func(*dbsqlc.Queries) ([]event, error) { return evs, nil })
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
func (s *Store) txPipe(ctx context.Context, begin []string, fn func(p *pipe) ([]event, error)) error {
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
	evs, err := fn(p)
	if err != nil {
		return err
	}
	if p.failed {
		return errors.New("a pipelined batch failed")
	}
	tenants, err := outboxTenants(evs)
	if err != nil {
		return err
	}
	// The rows to write here: every event but those whose outbox row the
	// transaction's own statements wrote.
	rows := evs
	var noMatch []nameCount
	if slices.ContainsFunc(evs, func(e event) bool { return e.written }) {
		rows = nil
		for _, e := range evs {
			switch {
			case !e.written:
				rows = append(rows, e)
			case e.noMatch:
				noMatch = countName(noMatch, e.name)
			}
		}
	}
	if p.committed {
		if len(rows) > 0 || len(p.tail.QueuedQueries) > 0 {
			return errors.New("events or statements queued after the transaction's commit went out")
		}
		committed = true
		s.published(ctx, evs, tenants, noMatch)
		return nil
	}
	if len(rows) == 0 && len(p.tail.QueuedQueries) == 0 {
		if !p.begun {
			return nil // nothing was sent: no transaction to end
		}
		if _, err := c.Exec(ctx, "commit"); err != nil {
			return err
		}
		committed = true
		s.published(ctx, evs, tenants, noMatch)
		return nil
	}
	b := &p.tail
	// One statement per tenant, in tenant order.
	byTenant := map[string][]event{}
	for _, e := range rows {
		byTenant[e.tenantKey()] = append(byTenant[e.tenantKey()], e)
	}
	slices.Sort(tenants)
	for _, tenant := range tenants {
		evs := byTenant[tenant]
		if len(evs) == 0 {
			continue // its rows were all written by the transaction's statements
		}
		names, metas, ms := make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs))
		for i, e := range evs {
			js, err := json.Marshal(e.metadata)
			if err != nil {
				return err
			}
			names[i], metas[i], ms[i] = e.name, string(js), countJSON
			if e.measurements != nil {
				mj, err := json.Marshal(e.measurements)
				if err != nil {
					return err
				}
				ms[i] = string(mj)
			}
		}
		if s.onCitus(ctx) {
			sqls, args := citusOutboxInsert(tenant, s.clock.Now(), names, metas, ms)
			for k, sql := range sqls {
				b.Queue(sql, args[k]...).Query(func(r pgx.Rows) error {
					var name, status string
					_, err := pgx.ForEachRow(r, []any{&name, &status}, func() error {
						if status == "no_match" {
							noMatch = countName(noMatch, name)
						}
						return nil
					})
					return err
				})
			}
			continue
		}
		b.Queue(insertOutboxSQL, tenant, names, metas, s.clock.Now(), ms).Query(func(r pgx.Rows) error {
			nc, err := pgx.CollectRows(r, func(r pgx.CollectableRow) (nameCount, error) {
				var nc nameCount
				return nc, r.Scan(&nc.name, &nc.n)
			})
			noMatch = append(noMatch, nc...)
			return err
		})
	}
	b.Queue("commit")
	if err := p.run(ctx, b); err != nil {
		return err
	}
	committed = true
	s.published(ctx, evs, tenants, noMatch)
	return nil
}

// published does what follows the commit of a transaction that wrote evs
// to the outbox: the outbox metrics, the wake-up of the tenants' listeners
// (see notifier), and the in-process emit.
func (s *Store) published(ctx context.Context, evs []event, tenants []string, noMatch []nameCount) {
	for _, nc := range noMatch {
		for range nc.n {
			s.outboxMetrics.OutboxEventsNoMatch(nc.name)
		}
	}
	for _, t := range tenants {
		s.notes.add(OutboxChannel, t)
	}
	for _, e := range evs {
		s.outboxMetrics.OutboxEventsPublished(e.name)
	}
	s.emit(ctx, evs...)
}

// countName adds one to name's count in ncs.
func countName(ncs []nameCount, name string) []nameCount {
	for i := range ncs {
		if ncs[i].name == name {
			ncs[i].n++
			return ncs
		}
	}
	return append(ncs, nameCount{name: name, n: 1})
}
