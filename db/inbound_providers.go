package db

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/ingest/esp"
)

// InboundProvider is a tenant's ESP event webhook configuration as the API
// shows it: never its secret (docs/ingest.md#esp-event-webhooks).
type InboundProvider struct {
	Provider  string         `json:"provider"`
	Settings  map[string]any `json:"settings"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

func inboundProviderAD(tenant, provider string) []byte {
	return []byte(tenant + "|inbound_provider|" + provider)
}

// PutInboundProvider validates and stores (or replaces) a tenant's
// verification material for one provider. The whole configuration is
// sealed with the vault (tenant and provider as associated data); only its
// public part is kept in clear.
func (s *Store) PutInboundProvider(ctx context.Context, tenant, provider string, c esp.Config) (_ InboundProvider, err error) {
	defer wrapErr(&err, "put inbound provider")
	if err := c.Validate(provider); err != nil {
		return InboundProvider{}, err
	}
	if s.vault == nil {
		return InboundProvider{}, errors.New("no encryption key configured; cannot store provider secrets")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return InboundProvider{}, err
	}
	settings, err := json.Marshal(c.Public())
	if err != nil {
		return InboundProvider{}, err
	}
	row, err := s.q.PutInboundProvider(ctx, dbsqlc.PutInboundProviderParams{TenantKey: tenant, Provider: provider, Settings: settings,
		Secret: s.vault.Seal(b, inboundProviderAD(tenant, provider)), Now: s.clock.Now()})
	if err != nil {
		return InboundProvider{}, mapErr(err, "inbound provider")
	}
	return InboundProvider{Provider: provider, Settings: c.Public(), CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt}, nil
}

// InboundProviderConfig opens a tenant's configuration for one provider;
// not_found when the tenant configured none.
func (s *Store) InboundProviderConfig(ctx context.Context, tenant, provider string) (_ esp.Config, err error) {
	defer wrapErr(&err, "read inbound provider")
	var c esp.Config
	row, err := s.q.GetInboundProvider(ctx, dbsqlc.GetInboundProviderParams{TenantKey: tenant, Provider: provider})
	if err != nil {
		return c, mapErr(err, "inbound provider")
	}
	if s.vault == nil {
		return c, errors.New("no encryption key configured; cannot read provider secrets")
	}
	pt, err := s.vault.Open(row.Secret, inboundProviderAD(tenant, provider))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(pt, &c)
}
