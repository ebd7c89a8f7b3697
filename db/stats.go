package db

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// statsKeeper refreshes the planner's statistics of the enrollment tables
// right after a bulk enrollment has grown them by a large share, instead
// of leaving that to autovacuum's next round (autovacuum_naptime, a minute
// by default, and later on a busy cluster). Until then the planner works
// from a table several times smaller than it is — after a tenant's first
// import, from empty tables — and the send path's statements, which run
// on generic plans, pay for that on every claim, reservation and record
// (see TestSendPathPlansIgnoreStaleStatistics for what their shapes still
// guarantee without fresh statistics).
//
// A refresh runs in the background (the import's answer does not wait for
// it), at most one at a time and one per statsInterval, and only when the
// batch added at least statsMinRows rows and statsShare of what the
// planner believes the table holds. ANALYZE samples a fixed number of rows
// (30 000 at the default statistics target), so its cost does not grow
// with the table.
type statsKeeper struct {
	s      *Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	busy bool
	last time.Time // when the last ANALYZE ran
}

const (
	statsMinRows  = 1000
	statsShare    = 0.2
	statsInterval = 5 * time.Second
)

func newStatsKeeper(s *Store) *statsKeeper {
	ctx, cancel := context.WithCancel(context.Background())
	return &statsKeeper{s: s, ctx: ctx, cancel: cancel}
}

// grew notes a committed bulk enrollment of rows contacts.
func (k *statsKeeper) grew(rows int) {
	if rows < statsMinRows {
		return
	}
	k.mu.Lock()
	if k.busy || k.ctx.Err() != nil || time.Since(k.last) < statsInterval {
		k.mu.Unlock()
		return
	}
	k.busy = true
	k.wg.Add(1)
	k.mu.Unlock()
	go func() {
		defer k.wg.Done()
		ran, err := k.refresh(rows)
		k.mu.Lock()
		k.busy = false
		if ran {
			k.last = time.Now()
		}
		k.mu.Unlock()
		if err != nil && k.ctx.Err() == nil {
			k.s.log.Warn("refreshing planner statistics after a bulk enrollment failed; autovacuum will", "err", err)
		}
	}()
}

// refresh analyzes the enrollment tables when rows is a large share of
// what the planner believes enrollments holds; it reports whether it did.
func (k *statsKeeper) refresh(rows int) (bool, error) {
	ctx, cancel := context.WithTimeout(k.ctx, time.Minute)
	defer cancel()
	var planned float64
	if err := k.s.pool.QueryRow(ctx, `SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = 'enrollments'::regclass`).Scan(&planned); err != nil {
		return false, err
	}
	if float64(rows) < statsShare*planned {
		return false, nil
	}
	err := pgx.BeginFunc(ctx, k.s.pool, func(tx pgx.Tx) error {
		// Autovacuum gives way to a conflicting lock; anything else holding
		// the tables' ShareUpdateExclusive lock is analyzing them already.
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '5s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE enrollments, step_executions`)
		return err
	})
	return err == nil, err
}

// close stops a refresh in progress and waits for it.
func (k *statsKeeper) close() {
	k.mu.Lock()
	k.cancel()
	k.mu.Unlock()
	k.wg.Wait()
}
