package db

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// TryLeadership takes or renews the named lease for holder until now+ttl
// (database clock for expiry). It reports whether holder is the leader.
func (s *Store) TryLeadership(ctx context.Context, name, holder string, ttl time.Duration) (_ bool, err error) {
	defer wrapErr(&err, "try leadership")
	got, err := s.q.TryLeader(ctx, dbsqlc.TryLeaderParams{Name: name, Holder: holder, TtlSeconds: ttl.Seconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil && got == holder, err
}

// ResignLeadership releases the lease if holder has it.
func (s *Store) ResignLeadership(ctx context.Context, name, holder string) error {
	return wrap("resign leadership", s.q.ResignLeader(ctx, dbsqlc.ResignLeaderParams{Name: name, Holder: holder}))
}
