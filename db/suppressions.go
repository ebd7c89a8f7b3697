package db

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

func suppressionFromRow(r dbsqlc.Suppression) dripdrop.Suppression {
	return dripdrop.Suppression{ID: r.ID, Kind: r.Kind, Value: r.Value, Reason: r.Reason, Source: r.Source, CreatedAt: r.CreatedAt}
}

// AddSuppression adds an address or domain; adding an existing one returns
// the stored entry unchanged.
func (s *Store) AddSuppression(ctx context.Context, tenant string, in dripdrop.SuppressionInput) (_ dripdrop.Suppression, err error) {
	defer wrapErr(&err, "add suppression")
	sup, err := in.Apply()
	if err != nil {
		return sup, err
	}
	row, err := s.q.UpsertSuppression(ctx, dbsqlc.UpsertSuppressionParams{
		TenantKey: tenant, ID: dripdrop.NewID(), Kind: sup.Kind, Value: sup.Value, Reason: sup.Reason, Source: sup.Source, Now: s.clock.Now(),
	})
	if err != nil {
		return sup, mapErr(err, "suppression")
	}
	return suppressionFromRow(row), nil
}

// SuppressionFilter narrows a suppression listing to one value.
type SuppressionFilter struct {
	Kind  string // "email" or "domain"; empty = any
	Value string
}

// ListSuppressions pages through the suppression list.
func (s *Store) ListSuppressions(ctx context.Context, tenant string, f SuppressionFilter, p Page) (_ []dripdrop.Suppression, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list suppressions")
	params := dbsqlc.ListSuppressionsParams{TenantKey: tenant, After: p.After, Lim: int32(p.limit())}
	if f.Kind != "" {
		k, v := f.Kind, strings.ToLower(f.Value)
		params.Kind, params.Value = &k, &v
	}
	rows, err := s.q.ListSuppressions(ctx, params)
	if err != nil {
		return nil, nil, err
	}
	out := make([]dripdrop.Suppression, len(rows))
	for i, r := range rows {
		out[i] = suppressionFromRow(r)
	}
	return out, nextCursor(out, p.limit(), func(s dripdrop.Suppression) uuid.UUID { return s.ID }), nil
}

// DeleteSuppression removes an entry; not_found when absent.
func (s *Store) DeleteSuppression(ctx context.Context, tenant, kind, value string) (err error) {
	defer wrapErr(&err, "delete suppression")
	n, err := s.q.DeleteSuppression(ctx, dbsqlc.DeleteSuppressionParams{TenantKey: tenant, Kind: kind, Value: strings.ToLower(value)})
	if err != nil {
		return err
	}
	if n == 0 {
		return dripdrop.NotFound("suppression")
	}
	return nil
}

// IsSuppressed reports whether an address or its domain is suppressed.
func (s *Store) IsSuppressed(ctx context.Context, tenant, email string) (_ bool, err error) {
	defer wrapErr(&err, "check suppression")
	return s.q.IsSuppressed(ctx, dbsqlc.IsSuppressedParams{TenantKey: tenant, Email: strings.ToLower(email), Domain: dripdrop.EmailDomain(email)})
}
