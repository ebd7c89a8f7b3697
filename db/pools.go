package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

func poolFromRow(r dbsqlc.Pool) dripdrop.Pool {
	return dripdrop.Pool{ID: r.ID, Name: r.Name, OnPinUnavailable: r.OnPinUnavailable, ProviderMatching: r.ProviderMatching, Members: []dripdrop.PoolMember{}, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func memberFromRow(r dbsqlc.PoolMember) dripdrop.PoolMember {
	return dripdrop.PoolMember{ID: r.ID, PoolID: r.PoolID, AdapterID: r.AdapterID, Weight: r.Weight, Class: r.Class, Active: r.Active, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// CreatePool creates a pool, with its initial members, in one transaction.
func (s *Store) CreatePool(ctx context.Context, tenant string, in dripdrop.PoolInput) (_ dripdrop.Pool, err error) {
	defer wrapErr(&err, "create pool")
	p, err := in.Apply(nil)
	if err != nil {
		return p, err
	}
	members := make([]dripdrop.PoolMember, len(in.Members))
	for i, mi := range in.Members {
		if members[i], err = mi.Apply(nil, fmt.Sprintf("members[%d].", i)); err != nil {
			return p, err
		}
	}
	now := s.clock.Now()
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.CreatePool(ctx, dbsqlc.CreatePoolParams{TenantKey: tenant, ID: dripdrop.NewID(), Name: p.Name, OnPinUnavailable: p.OnPinUnavailable, ProviderMatching: p.ProviderMatching, Now: now})
		if err != nil {
			if mapped := mapErr(err, "pool"); dripdrop.ErrorCode(mapped) == dripdrop.ECodeAlreadyExists {
				return nil, dripdrop.Errorf(dripdrop.ECodeAlreadyExists, "name", "a pool named %q already exists", p.Name)
			}
			return nil, err
		}
		p = poolFromRow(row)
		for i, m := range members {
			added, err := addMember(ctx, q, tenant, p.ID, m, now, fmt.Sprintf("members[%d].", i))
			if err != nil {
				return nil, err
			}
			p.Members = append(p.Members, added)
		}
		return nil, nil
	})
	return p, mapErr(err, "pool")
}

func addMember(ctx context.Context, q *dbsqlc.Queries, tenant string, pool uuid.UUID, m dripdrop.PoolMember, now time.Time, field string) (dripdrop.PoolMember, error) {
	if _, err := q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: m.AdapterID}); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return m, &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: field + "adapter_id", Message: "adapter not found"}
		}
		return m, err
	}
	row, err := q.AddPoolMember(ctx, dbsqlc.AddPoolMemberParams{
		TenantKey: tenant, PoolID: pool, AdapterID: m.AdapterID, ID: dripdrop.NewID(), Weight: m.Weight, Class: m.Class, Active: m.Active, Now: now,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return m, &dripdrop.Error{Code: dripdrop.ECodeAlreadyExists, Field: field + "adapter_id", Message: "the adapter is already a member of this pool"}
	}
	if err != nil {
		return m, err
	}
	return memberFromRow(row), nil
}

// GetPool returns a pool with its members.
func (s *Store) GetPool(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Pool, err error) {
	defer wrapErr(&err, "get pool")
	row, err := s.q.GetPool(ctx, dbsqlc.GetPoolParams{TenantKey: tenant, ID: id})
	if err != nil {
		return dripdrop.Pool{}, mapErr(err, "pool")
	}
	p := poolFromRow(row)
	ms, err := s.q.ListPoolMembers(ctx, dbsqlc.ListPoolMembersParams{TenantKey: tenant, PoolID: id})
	if err != nil {
		return p, err
	}
	for _, m := range ms {
		p.Members = append(p.Members, memberFromRow(m))
	}
	return p, nil
}

// ListPools pages through pools, each with its members.
func (s *Store) ListPools(ctx context.Context, tenant string, pg Page) (_ []dripdrop.Pool, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list pools")
	rows, err := s.q.ListPools(ctx, dbsqlc.ListPoolsParams{TenantKey: tenant, After: pg.After, Lim: int32(pg.limit())})
	if err != nil {
		return nil, nil, err
	}
	out := make([]dripdrop.Pool, len(rows))
	ids := make([]uuid.UUID, len(rows))
	idx := map[uuid.UUID]int{}
	for i, r := range rows {
		out[i] = poolFromRow(r)
		ids[i] = r.ID
		idx[r.ID] = i
	}
	ms, err := s.q.ListMembersForPools(ctx, dbsqlc.ListMembersForPoolsParams{TenantKey: tenant, PoolIds: ids})
	if err != nil {
		return nil, nil, err
	}
	for _, m := range ms {
		i := idx[m.PoolID]
		out[i].Members = append(out[i].Members, memberFromRow(m))
	}
	return out, nextCursor(out, pg.limit(), func(p dripdrop.Pool) uuid.UUID { return p.ID }), nil
}

// UpdatePool patches a pool's name or policy.
func (s *Store) UpdatePool(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.PoolInput) (_ dripdrop.Pool, err error) {
	defer wrapErr(&err, "update pool")
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.GetPoolForUpdate(ctx, dbsqlc.GetPoolForUpdateParams{TenantKey: tenant, ID: id})
		if err != nil {
			return nil, mapErr(err, "pool")
		}
		cur := poolFromRow(row)
		p, err := in.Apply(&cur)
		if err != nil {
			return nil, err
		}
		if _, err := q.UpdatePool(ctx, dbsqlc.UpdatePoolParams{TenantKey: tenant, ID: id, Name: p.Name, OnPinUnavailable: p.OnPinUnavailable, ProviderMatching: p.ProviderMatching, Now: s.clock.Now()}); err != nil {
			if dripdrop.ErrorCode(mapErr(err, "pool")) == dripdrop.ECodeAlreadyExists {
				return nil, dripdrop.Errorf(dripdrop.ECodeAlreadyExists, "name", "a pool named %q already exists", p.Name)
			}
			return nil, err
		}
		return nil, nil
	})
	if err != nil {
		return dripdrop.Pool{}, mapErr(err, "pool")
	}
	return s.GetPool(ctx, tenant, id)
}

// DeletePool soft-deletes a pool. While live enrollments were pinned from
// it the delete is refused with in_use unless force is set. With force the
// pool policy applies: pause pauses them (pinned_adapter_unavailable);
// reassign leaves them on their pins, which stay valid senders.
func (s *Store) DeletePool(ctx context.Context, tenant string, id uuid.UUID, force bool) (err error) {
	defer wrapErr(&err, "delete pool")
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		pool, err := q.GetPoolForUpdate(ctx, dbsqlc.GetPoolForUpdateParams{TenantKey: tenant, ID: id})
		if err != nil {
			return evs, mapErr(err, "pool")
		}
		live, err := q.LiveEnrollmentsOfPool(ctx, dbsqlc.LiveEnrollmentsOfPoolParams{TenantKey: tenant, PoolID: id})
		if err != nil {
			return evs, err
		}
		if len(live) > 0 && !force {
			return evs, &dripdrop.Error{Code: dripdrop.ECodeInUse, Message: "the pool still has enrollments pinned from it; delete with force=true to apply the pool policy",
				Extra: map[string]any{"pinned_enrollments": len(live)}}
		}
		if pool.OnPinUnavailable == dripdrop.PinPause {
			for _, e := range live {
				if e.State != dripdrop.EnrollmentActive {
					continue
				}
				ev, err := s.pausePinUnavailable(ctx, q, e)
				if err != nil {
					return evs, err
				}
				evs = append(evs, ev)
			}
		}
		if _, err := q.SoftDeletePool(ctx, dbsqlc.SoftDeletePoolParams{TenantKey: tenant, ID: id, Now: s.clock.Now()}); err != nil {
			return evs, err
		}
		return evs, s.audit(ctx, q, tenant, "pool", id, "deleted", "api", map[string]any{"force": force, "pinned_enrollments": len(live)})
	})
	if err != nil {
		return mapErr(err, "pool")
	}
	return nil
}

// AddPoolMember adds an adapter of the same tenant to a pool.
func (s *Store) AddPoolMember(ctx context.Context, tenant string, pool uuid.UUID, in dripdrop.MemberInput) (_ dripdrop.PoolMember, err error) {
	defer wrapErr(&err, "add pool member")
	m, err := in.Apply(nil, "")
	if err != nil {
		return m, err
	}
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		if _, err := q.GetPoolForUpdate(ctx, dbsqlc.GetPoolForUpdateParams{TenantKey: tenant, ID: pool}); err != nil {
			return nil, mapErr(err, "pool")
		}
		m, err = addMember(ctx, q, tenant, pool, m, s.clock.Now(), "")
		return nil, err
	})
	return m, mapErr(err, "pool member")
}

// UpdatePoolMember patches a member's weight, class or active flag.
// Existing pins never move.
func (s *Store) UpdatePoolMember(ctx context.Context, tenant string, pool, adapter uuid.UUID, in dripdrop.MemberInput) (_ dripdrop.PoolMember, err error) {
	defer wrapErr(&err, "update pool member")
	var out dripdrop.PoolMember
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		if _, err := q.GetPoolForUpdate(ctx, dbsqlc.GetPoolForUpdateParams{TenantKey: tenant, ID: pool}); err != nil {
			return nil, mapErr(err, "pool")
		}
		row, err := q.GetPoolMember(ctx, dbsqlc.GetPoolMemberParams{TenantKey: tenant, PoolID: pool, AdapterID: adapter})
		if err != nil {
			return nil, mapErr(err, "pool member")
		}
		cur := memberFromRow(row)
		m, err := in.Apply(&cur, "")
		if err != nil {
			return nil, err
		}
		updated, err := q.UpdatePoolMember(ctx, dbsqlc.UpdatePoolMemberParams{
			TenantKey: tenant, PoolID: pool, AdapterID: adapter, Weight: m.Weight, Class: m.Class, Active: m.Active, Now: s.clock.Now(),
		})
		out = memberFromRow(updated)
		return nil, err
	})
	return out, mapErr(err, "pool member")
}

// RemovePoolMember removes an adapter from a pool; its pins stay.
func (s *Store) RemovePoolMember(ctx context.Context, tenant string, pool, adapter uuid.UUID) (err error) {
	defer wrapErr(&err, "remove pool member")
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		if _, err := q.GetPoolForUpdate(ctx, dbsqlc.GetPoolForUpdateParams{TenantKey: tenant, ID: pool}); err != nil {
			return nil, mapErr(err, "pool")
		}
		n, err := q.DeletePoolMember(ctx, dbsqlc.DeletePoolMemberParams{TenantKey: tenant, PoolID: pool, AdapterID: adapter})
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, dripdrop.NotFound("pool member")
		}
		return nil, nil
	})
	return mapErr(err, "pool member")
}
