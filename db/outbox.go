package db

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// OutboxChannel is the LISTEN/NOTIFY channel announcing new outbox rows; the
// payload is the tenant key.
const OutboxChannel = "dripdrop_outbox"

// subCacheTTL bounds how long another process may keep writing (or not
// writing) the outbox after a subscription appears or disappears elsewhere.
// Changes made through this process invalidate the cache at once.
const subCacheTTL = 2 * time.Second

// subCache remembers, per tenant, whether it has an active subscription,
// so transactions of tenants without subscriptions pay nothing for the
// outbox.
type subCache struct {
	mu sync.Mutex
	m  map[string]subEntry
}

type subEntry struct {
	has bool
	at  time.Time // wall time of the lookup (a cache age, not a policy time)
}

func (c *subCache) get(tenant string) (has, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[tenant]
	if !ok || time.Since(e.at) > subCacheTTL {
		return false, false
	}
	return e.has, true
}

func (c *subCache) put(tenant string, has bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]subEntry{}
	}
	c.m[tenant] = subEntry{has: has, at: time.Now()}
}

func (c *subCache) forget(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, tenant)
}

// hasSubscribers reports whether tenant has an active subscription (cached).
func (s *Store) hasSubscribers(ctx context.Context, tenant string) (bool, error) {
	if has, ok := s.subs.get(tenant); ok {
		return has, nil
	}
	has, err := s.q.TenantHasActiveSubscription(ctx, tenant)
	if err != nil {
		return false, err
	}
	s.subs.put(tenant, has)
	return has, nil
}

// outboxRows are the events of evs that go to the outbox: those of tenants
// with an active subscription.
func (s *Store) outboxRows(ctx context.Context, evs []*[]event) ([]event, []string, error) {
	var rows []event
	var tenants []string
	seen := map[string]bool{}
	for _, p := range evs {
		for _, e := range *p {
			tenant, _ := e.metadata["tenant_key"].(string)
			if tenant == "" {
				continue
			}
			has, known := seen[tenant]
			if !known {
				var err error
				if has, err = s.hasSubscribers(ctx, tenant); err != nil {
					return nil, nil, err
				}
				seen[tenant] = has
				if has {
					tenants = append(tenants, tenant)
				}
			}
			if has {
				rows = append(rows, e)
			}
		}
	}
	return rows, tenants, nil
}

// insertOutboxSQL writes many events in one statement; writer_xid defaults
// to the transaction's id (the feed's never-skip order).
const insertOutboxSQL = `INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at)
SELECT t, n, '{"count": 1}'::jsonb, m, $4 FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(t, n, m)`

// tx runs fn in a transaction, committing when it returns nil.
//
// This is the outbox seam: every event fn appends to one of evs is written
// to telemetry_outbox in the same transaction when its tenant has an active
// subscription (SPEC §9). The multi-row insert is pipelined with COMMIT in
// one round trip, so a transaction pays nothing more on the wire; a tenant
// without subscriptions pays one cached map lookup. Events are still
// emitted in-process by the caller after commit (s.emit).
func (s *Store) tx(ctx context.Context, fn func(q *dbsqlc.Queries) error, evs ...*[]event) error {
	if len(evs) == 0 {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(s.q.WithTx(tx)) })
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	c := conn.Conn()
	if _, err := c.Exec(ctx, "begin"); err != nil {
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
	rows, tenants, err := s.outboxRows(ctx, evs)
	if err != nil {
		return err
	}
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
	for _, t := range tenants {
		b.Queue("SELECT pg_notify($1, $2)", OutboxChannel, t)
	}
	b.Queue("commit")
	if err := c.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	open = false
	for _, e := range rows {
		s.outboxMetrics.OutboxEventsPublished(e.name)
	}
	return nil
}
