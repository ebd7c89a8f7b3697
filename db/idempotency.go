package db

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// IdempotentResponse is a stored answer to replay for a repeated key.
type IdempotentResponse struct {
	Status      int
	ContentType string
	Body        []byte
}

// ClaimIdempotencyKey reserves key for a request. It returns (nil, nil) when
// the caller owns the key and must run the request, a stored response to
// replay when the same request already completed, or an error: the key was
// used for a different request (idempotency_key_reused) or the first request
// is still running (idempotency_key_in_progress).
func (s *Store) ClaimIdempotencyKey(ctx context.Context, tenant, key, method, path string, requestHash []byte) (_ *IdempotentResponse, err error) {
	defer wrapErr(&err, "claim idempotency key")
	_, err = s.q.ClaimIdempotencyKey(ctx, dbsqlc.ClaimIdempotencyKeyParams{TenantKey: tenant, Key: key, Method: method, Path: path, RequestHash: requestHash})
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	row, err := s.q.GetIdempotencyKey(ctx, dbsqlc.GetIdempotencyKeyParams{TenantKey: tenant, Key: key})
	if err != nil {
		return nil, mapErr(err, "idempotency key")
	}
	if row.Method != method || row.Path != path || !bytes.Equal(row.RequestHash, requestHash) {
		return nil, dripdrop.Errorf(dripdrop.ECodeIdempotencyReused, "Idempotency-Key", "this Idempotency-Key was used for a different request")
	}
	if row.Status == nil {
		return nil, dripdrop.Errorf(dripdrop.ECodeIdempotencyInFlight, "Idempotency-Key", "a request with this Idempotency-Key is still in progress")
	}
	ct := ""
	if row.ContentType != nil {
		ct = *row.ContentType
	}
	return &IdempotentResponse{Status: *row.Status, ContentType: ct, Body: row.ResponseBody}, nil
}

// CompleteIdempotencyKey stores the response of the request that owns key.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, tenant, key string, r IdempotentResponse) (err error) {
	defer wrapErr(&err, "complete idempotency key")
	st, ct := r.Status, r.ContentType
	return s.q.CompleteIdempotencyKey(ctx, dbsqlc.CompleteIdempotencyKeyParams{TenantKey: tenant, Key: key, Status: &st, ContentType: &ct, ResponseBody: r.Body})
}

// ReleaseIdempotencyKey forgets an unfinished claim (the request failed in a
// way the client may retry).
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, tenant, key string) error {
	return wrap("release idempotency key", s.q.ReleaseIdempotencyKey(ctx, dbsqlc.ReleaseIdempotencyKeyParams{TenantKey: tenant, Key: key}))
}

// PruneIdempotencyKeys deletes keys older than maxAge for one tenant.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, tenant string, maxAge time.Duration) (_ int64, err error) {
	defer wrapErr(&err, "prune idempotency keys")
	return s.q.DeleteExpiredIdempotencyKeys(ctx, dbsqlc.DeleteExpiredIdempotencyKeysParams{TenantKey: tenant, CreatedAt: s.clock.Now().Add(-maxAge)})
}
