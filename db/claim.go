package db

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// TenantKeys lists every tenant (the dispatcher visits them in turn).
func (s *Store) TenantKeys(ctx context.Context) (_ []string, err error) {
	defer wrapErr(&err, "list tenants")
	return s.q.ListTenantKeys(ctx)
}

// Claimed is one claimed execution.
type Claimed struct {
	Tenant    string
	ID        uuid.UUID
	AdapterID uuid.UUID
	// DueOnWrite: the execution was due when it was last written (new work
	// that a notification should have announced), not work that came due
	// later by the clock.
	DueOnWrite bool
}

// ClaimRequest asks for up to Limit executions of one tenant.
type ClaimRequest struct {
	Tenant string
	Limit  int
}

// claimSettings pin the claim's plan. Planned for its parameters, the claim
// spent longer planning (several milliseconds: six references to
// step_executions and their partial indexes) than executing; its generic
// plan is the right one (nested loops over the few rows it claims) as long
// as the planner, which cannot see how few rows a LIMIT parameter lets
// through, is kept from hashing a whole table (adapter_due) for the requeue.
// Its commit does not wait for the WAL flush: a claim is a lease, and one
// lost in a server crash only makes its rows claimable again. Nothing is
// sent on a claim alone: the reservation (durable) locks each row and takes
// it only while it is still scheduled.
var claimSettings = []string{
	"set local synchronous_commit = off",
	"set local plan_cache_mode = force_generic_plan",
	"set local enable_hashjoin = off",
	"set local enable_mergejoin = off",
}

// Claim claims due work for several tenants in one round trip (one
// statement per tenant, pipelined in one transaction with the claim's plan
// settings), each with its own limit (docs/sending.md). busy is this process's
// sends in flight per adapter: an adapter gets at most max_in_flight minus
// the larger of its busy count and its sends in flight in the database (any
// process; ReserveClaimed enforces the limit under the adapter's lock).
// Claimed executions are held until now+hold. Cost follows the work
// claimed: see ClaimReady.
func (s *Store) Claim(ctx context.Context, reqs []ClaimRequest, busy map[uuid.UUID]int, hold time.Duration) ([]Claimed, error) {
	claimed, _, err := s.ClaimDue(ctx, reqs, busy, hold)
	return claimed, err
}

// ClaimDue is Claim that also reports, for each tenant asked, when its
// earliest ready-queue entry left after the claim comes due (absent: none
// pending), read in the claim's transaction (TenantNextDue, one index probe
// per tenant in the same round trip). The dispatcher keeps its agenda of
// tenants with work with it.
func (s *Store) ClaimDue(ctx context.Context, reqs []ClaimRequest, busy map[uuid.UUID]int, hold time.Duration) (_ []Claimed, next map[string]time.Time, err error) {
	defer wrapErr(&err, "claim")
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	now := s.clock.Now()
	ids := make([]uuid.UUID, 0, len(busy))
	counts := make([]int, 0, len(busy))
	for id, n := range busy {
		if n > 0 {
			ids, counts = append(ids, id), append(counts, n)
		}
	}
	settings := s.claimSettingsFor(ctx)
	// On Citus each tenant's claim is a transaction of its own (still one
	// round trip): tenants live on different workers, and one transaction
	// over them would commit in two phases across the workers.
	perTenant := s.onCitus(ctx)
	b := &pgx.Batch{}
	begin := func() {
		b.Queue("begin")
		for _, set := range settings {
			b.Queue(set)
		}
	}
	begin()
	for i, r := range reqs {
		if perTenant && i > 0 {
			b.Queue("commit")
			begin()
		}
		b.Queue(dbsqlc.ClaimReadySQL, ids, counts, now, r.Tenant, r.Limit+16, r.Limit, now.Add(hold))
		b.Queue(dbsqlc.TenantNextDueSQL, r.Tenant)
	}
	b.Queue("commit")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Release()
	c := conn.Conn()
	br := c.SendBatch(ctx, b)
	var out []Claimed
	next = make(map[string]time.Time, len(reqs))
	err = func() error {
		for i, r := range reqs {
			if i == 0 || perTenant {
				if i > 0 {
					if _, err := br.Exec(); err != nil { // the previous tenant's commit
						return err
					}
				}
				for range 1 + len(settings) {
					if _, err := br.Exec(); err != nil {
						return err
					}
				}
			}
			rows, _ := br.Query()
			for rows.Next() {
				cl := Claimed{Tenant: r.Tenant}
				if err := rows.Scan(&cl.ID, &cl.AdapterID, &cl.DueOnWrite); err != nil {
					rows.Close()
					return err
				}
				out = append(out, cl)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			var due pgtype.Timestamptz
			if err := br.QueryRow().Scan(&due); err != nil {
				return err
			}
			if at, ok := dueTime(due); ok {
				next[r.Tenant] = at
			}
		}
		_, err := br.Exec()
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A failed statement leaves the transaction aborted: end it before
		// the connection goes back to the pool.
		_, _ = c.Exec(context.WithoutCancel(ctx), "rollback")
		return nil, nil, err
	}
	return out, next, nil
}

// ReleaseClaim makes a claimed execution claimable again at once (after a
// reservation failed for a transient reason such as a deadlock abort).
func (s *Store) ReleaseClaim(ctx context.Context, tenant string, id uuid.UUID) error {
	return wrap("release claim", s.q.ReleaseClaim(ctx, dbsqlc.ReleaseClaimParams{TenantKey: tenant, ID: id}))
}

// NextDue reports, for each of the tenants, when its earliest pending
// ready-queue entry comes due (absent: none pending): one index probe per
// tenant, each a statement of its own (a single-shard query on Citus),
// all in one round trip.
func (s *Store) NextDue(ctx context.Context, tenants []string) (_ map[string]time.Time, err error) {
	defer wrapErr(&err, "next due")
	b := &pgx.Batch{}
	for _, t := range tenants {
		b.Queue(dbsqlc.TenantNextDueSQL, t)
	}
	br := s.pool.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	next := make(map[string]time.Time, len(tenants))
	for _, t := range tenants {
		var due pgtype.Timestamptz
		if err := br.QueryRow().Scan(&due); err != nil {
			return nil, err
		}
		if at, ok := dueTime(due); ok {
			next[t] = at
		}
	}
	return next, nil
}

// dueTime is a ready-queue time: absent when NULL (nothing pending), the
// zero time (due at once) for -infinity.
func dueTime(t pgtype.Timestamptz) (time.Time, bool) {
	switch {
	case !t.Valid:
		return time.Time{}, false
	case t.InfinityModifier == pgtype.NegativeInfinity:
		return time.Time{}, true
	}
	return t.Time, true
}
