package db

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// API keys look like "dd_<tenant_key>.<43 base64url characters>": the tenant
// part routes the lookup, the secret is 32 random bytes of which only the
// SHA-256 is stored.
const keyPrefix = "dd_"

var tenantKeyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// CreateTenant creates a tenant and its first API key.
func (s *Store) CreateTenant(ctx context.Context, key, name string) (_ dripdrop.Tenant, _ dripdrop.APIKey, err error) {
	defer wrapErr(&err, "create tenant")
	if !tenantKeyPattern.MatchString(key) {
		return dripdrop.Tenant{}, dripdrop.APIKey{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "tenant_key",
			"tenant_key must be 1-63 lowercase letters, digits or '-', starting with a letter or digit")
	}
	if len(name) > 200 || strings.ContainsRune(name, 0) {
		return dripdrop.Tenant{}, dripdrop.APIKey{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "name", "name must be at most 200 characters")
	}
	var t dripdrop.Tenant
	var k dripdrop.APIKey
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.CreateTenant(ctx, dbsqlc.CreateTenantParams{TenantKey: key, Name: name})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, dripdrop.Errorf(dripdrop.ECodeAlreadyExists, "tenant_key", "tenant %q already exists", key)
		}
		if err != nil {
			return nil, err
		}
		t = dripdrop.Tenant{Key: row.TenantKey, Name: row.Name, CreatedAt: row.CreatedAt}
		k, err = createKey(ctx, q, key, "default")
		return nil, err
	})
	return t, k, mapErr(err, "tenant")
}

// CreateAPIKey issues a new key for an existing tenant.
func (s *Store) CreateAPIKey(ctx context.Context, tenant, name string) (_ dripdrop.APIKey, err error) {
	defer wrapErr(&err, "create api key")
	if len(name) > 200 || strings.ContainsRune(name, 0) {
		return dripdrop.APIKey{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "name", "name must be at most 200 characters")
	}
	if _, err := s.q.GetTenant(ctx, tenant); err != nil {
		return dripdrop.APIKey{}, mapErr(err, "tenant")
	}
	k, err := createKey(ctx, s.q, tenant, name)
	return k, mapErr(err, "api key")
}

func createKey(ctx context.Context, q *dbsqlc.Queries, tenant, name string) (dripdrop.APIKey, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return dripdrop.APIKey{}, err
	}
	enc := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256(secret)
	row, err := q.CreateAPIKey(ctx, dbsqlc.CreateAPIKeyParams{
		TenantKey: tenant, ID: dripdrop.NewID(), Name: name, KeyHash: sum[:], Hint: enc[len(enc)-4:],
	})
	if err != nil {
		return dripdrop.APIKey{}, err
	}
	k := apiKeyFromRow(row)
	k.Secret = keyPrefix + tenant + "." + enc
	return k, nil
}

func apiKeyFromRow(r dbsqlc.ApiKey) dripdrop.APIKey {
	return dripdrop.APIKey{ID: r.ID, TenantKey: r.TenantKey, Name: r.Name, Hint: r.Hint, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
}

// ListAPIKeys lists a tenant's keys (never their secrets).
func (s *Store) ListAPIKeys(ctx context.Context, tenant string) (_ []dripdrop.APIKey, err error) {
	defer wrapErr(&err, "list api keys")
	if _, err := s.q.GetTenant(ctx, tenant); err != nil {
		return nil, mapErr(err, "tenant")
	}
	rows, err := s.q.ListAPIKeys(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]dripdrop.APIKey, len(rows))
	for i, r := range rows {
		out[i] = apiKeyFromRow(r)
	}
	return out, nil
}

// RevokeAPIKey revokes a key; it stops authenticating at once.
func (s *Store) RevokeAPIKey(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.APIKey, err error) {
	defer wrapErr(&err, "revoke api key")
	row, err := s.q.RevokeAPIKey(ctx, dbsqlc.RevokeAPIKeyParams{TenantKey: tenant, ID: id, Now: s.clock.Now()})
	if err != nil {
		return dripdrop.APIKey{}, mapErr(err, "api key")
	}
	return apiKeyFromRow(row), nil
}

// Authenticate resolves a presented API key to its tenant. Unknown,
// malformed and revoked keys all yield the same unauthorized error.
func (s *Store) Authenticate(ctx context.Context, presented string) (string, error) {
	tenant, _, err := s.AuthenticateKey(ctx, presented)
	return tenant, err
}

// AuthenticateKey is Authenticate that also returns the key's id (the
// dashboard binds its session to it, see docs/dashboard.md).
func (s *Store) AuthenticateKey(ctx context.Context, presented string) (_ string, _ uuid.UUID, err error) {
	defer wrapErr(&err, "authenticate")
	unauthorized := dripdrop.Errorf(dripdrop.ECodeUnauthorized, "", "missing or invalid API key")
	rest, ok := strings.CutPrefix(presented, keyPrefix)
	if !ok {
		return "", uuid.Nil, unauthorized
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return "", uuid.Nil, unauthorized
	}
	tenant, enc := rest[:dot], rest[dot+1:]
	secret, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(secret) != 32 || !tenantKeyPattern.MatchString(tenant) {
		return "", uuid.Nil, unauthorized
	}
	sum := sha256.Sum256(secret)
	id, err := s.q.AuthenticateAPIKey(ctx, dbsqlc.AuthenticateAPIKeyParams{TenantKey: tenant, KeyHash: sum[:]})
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return "", uuid.Nil, unauthorized
		}
		return "", uuid.Nil, err
	}
	return tenant, id, nil
}

// APIKeyActive reports whether a tenant's key still authenticates: it
// exists and is not revoked (tenants have no disabled state; a revoked key
// is the only way a key stops working).
func (s *Store) APIKeyActive(ctx context.Context, tenant string, id uuid.UUID) (_ bool, err error) {
	defer wrapErr(&err, "check api key")
	return s.q.APIKeyActive(ctx, dbsqlc.APIKeyActiveParams{TenantKey: tenant, ID: id})
}
