package db

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/preflight"
)

func adapterFromRow(r dbsqlc.Adapter) dripdrop.Adapter {
	return dripdrop.Adapter{
		ID: r.ID, TenantKey: r.TenantKey, Name: r.Name, Channel: r.Channel, Provider: r.Provider,
		FromAddress: r.FromAddress, FromName: r.FromName, CredentialsSet: len(r.Credentials) > 0,
		Active: r.Active, Timezone: r.Timezone, HealthState: r.HealthState, HealthScore: r.HealthScore,
		HealthSince: r.HealthSince, RestingUntil: r.RestingUntil, RestBackoffSeconds: r.RestBackoffSeconds,
		DailyCap: r.DailyCap, RampFloor: r.RampFloor, RampIncrement: r.RampIncrement, RampStartedAt: r.RampStartedAt,
		MinGapSeconds: r.MinGapSeconds, GapJitterSeconds: r.GapJitterSeconds, MaxInFlight: r.MaxInFlight, MailboxProvider: r.MailboxProvider, ProviderCaps: capsOrEmpty(r.ProviderCaps), LastSendAt: r.LastSendAt,
		NextSendAt: r.NextSendAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, DeletedAt: r.DeletedAt,
		Auth: r.Auth, OAuthAppID: r.OauthAppID, ReconnectRequired: r.ReconnectRequired,
	}
}

func credentialsAD(tenant string, id uuid.UUID) []byte { return []byte(tenant + "|" + id.String()) }

func (s *Store) sealCredentials(tenant string, id uuid.UUID, c *dripdrop.SMTPCredentials) ([]byte, error) {
	if s.vault == nil {
		return nil, errors.New("no encryption key configured; cannot store credentials")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return s.vault.Seal(b, credentialsAD(tenant, id)), nil
}

// CreateAdapter validates and stores a new adapter. Credentials are sealed
// with the tenant and adapter id as associated data.
func (s *Store) CreateAdapter(ctx context.Context, tenant string, in dripdrop.AdapterInput) (_ dripdrop.Adapter, err error) {
	defer wrapErr(&err, "create adapter")
	now := s.clock.Now()
	a, err := in.Apply(nil, now)
	if err != nil {
		return a, err
	}
	a.ID = dripdrop.NewID()
	if a.Auth == dripdrop.AuthOAuth2 && in.Credentials == nil {
		// The app's server, logging in as the mailbox (docs/mailboxes.md).
		if in.Credentials, err = s.oauthAppServer(ctx, s.q, tenant, *a.OAuthAppID, a.FromAddress); err != nil {
			return a, err
		}
	} else if a.Auth == dripdrop.AuthOAuth2 {
		if _, err := s.q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: *a.OAuthAppID}); err != nil {
			return a, oauthAppMissing(err)
		}
	}
	var creds []byte
	if in.Credentials != nil {
		if creds, err = s.sealCredentials(tenant, a.ID, in.Credentials); err != nil {
			return a, err
		}
	}
	var out dripdrop.Adapter
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.CreateAdapter(ctx, dbsqlc.CreateAdapterParams{
			TenantKey: tenant, ID: a.ID, Name: a.Name, Channel: a.Channel, Provider: a.Provider,
			FromAddress: a.FromAddress, FromName: a.FromName, Credentials: creds, Active: a.Active,
			Timezone: a.Timezone, HealthState: a.HealthState, HealthScore: a.HealthScore, DailyCap: a.DailyCap,
			RampFloor: a.RampFloor, RampIncrement: a.RampIncrement, RampStartedAt: a.RampStartedAt,
			MinGapSeconds: a.MinGapSeconds, GapJitterSeconds: a.GapJitterSeconds, MaxInFlight: a.MaxInFlight, Now: now,
			Auth: a.Auth, OauthAppID: a.OAuthAppID,
		})
		if err != nil {
			return nil, err
		}
		if len(a.ProviderCaps) > 0 {
			b, _ := json.Marshal(a.ProviderCaps)
			if err := q.SetProviderCaps(ctx, dbsqlc.SetProviderCapsParams{TenantKey: tenant, ID: row.ID, ProviderCaps: b}); err != nil {
				return nil, err
			}
			row.ProviderCaps = b
		}
		if mp := mailboxProvider(in, a.MailboxProvider); mp != "" {
			if err := q.SetMailboxProvider(ctx, dbsqlc.SetMailboxProviderParams{TenantKey: tenant, ID: row.ID, MailboxProvider: mp}); err != nil {
				return nil, err
			}
			row.MailboxProvider = mp
		}
		if err := s.ensureSenderDomain(ctx, q, tenant, row.FromAddress); err != nil {
			return nil, err
		}
		out = adapterFromRow(row)
		out.IMAP = a.IMAP
		return nil, s.putIMAP(ctx, q, tenant, a.ID, in, &out)
	})
	if err != nil {
		return a, mapErr(err, "adapter")
	}
	return out, nil
}

// GetAdapter returns a live (not deleted) adapter.
func (s *Store) GetAdapter(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Adapter, err error) {
	defer wrapErr(&err, "get adapter")
	row, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: id})
	if err != nil {
		return dripdrop.Adapter{}, mapErr(err, "adapter")
	}
	a := adapterFromRow(row)
	if a.Auth == dripdrop.AuthOAuth2 {
		if a.OAuth, err = s.oauthStatus(ctx, s.q, row); err != nil {
			return a, err
		}
	}
	out := []dripdrop.Adapter{a}
	if err := s.attachIMAP(ctx, tenant, out); err != nil {
		return dripdrop.Adapter{}, err
	}
	return out[0], nil
}

// ListAdapters pages through a tenant's adapters in creation order.
func (s *Store) ListAdapters(ctx context.Context, tenant string, p Page) (_ []dripdrop.Adapter, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list adapters")
	rows, err := s.q.ListAdapters(ctx, dbsqlc.ListAdaptersParams{TenantKey: tenant, After: p.After, Lim: int32(p.limit())})
	if err != nil {
		return nil, nil, err
	}
	out := make([]dripdrop.Adapter, len(rows))
	for i, r := range rows {
		out[i] = adapterFromRow(r)
	}
	if err := s.attachIMAP(ctx, tenant, out); err != nil {
		return nil, nil, err
	}
	return out, nextCursor(out, p.limit(), func(a dripdrop.Adapter) uuid.UUID { return a.ID }), nil
}

// UpdateAdapter applies a patch under the adapter's row lock.
func (s *Store) UpdateAdapter(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.AdapterInput) (_ dripdrop.Adapter, err error) {
	defer wrapErr(&err, "update adapter")
	var out dripdrop.Adapter
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.GetAdapterForUpdate(ctx, dbsqlc.GetAdapterForUpdateParams{TenantKey: tenant, ID: id})
		if err != nil {
			return nil, mapErr(err, "adapter")
		}
		curs := []dripdrop.Adapter{adapterFromRow(row)}
		if err := s.attachIMAP(ctx, tenant, curs); err != nil {
			return nil, err
		}
		cur := curs[0]
		a, err := in.Apply(&cur, s.clock.Now())
		if err != nil {
			return nil, err
		}
		if a.Auth == dripdrop.AuthOAuth2 && (in.OAuthAppID != nil || in.Auth != nil) {
			if _, err := q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: *a.OAuthAppID}); err != nil {
				return nil, oauthAppMissing(err)
			}
		}
		creds := row.Credentials
		if in.Credentials != nil {
			if creds, err = s.sealCredentials(tenant, id, in.Credentials); err != nil {
				return nil, err
			}
		}
		updated, err := q.UpdateAdapter(ctx, dbsqlc.UpdateAdapterParams{
			TenantKey: tenant, ID: id, Name: a.Name, FromAddress: a.FromAddress, FromName: a.FromName,
			Credentials: creds, Active: a.Active, Timezone: a.Timezone, DailyCap: a.DailyCap, RampFloor: a.RampFloor,
			RampIncrement: a.RampIncrement, RampStartedAt: a.RampStartedAt, MinGapSeconds: a.MinGapSeconds,
			GapJitterSeconds: a.GapJitterSeconds, MaxInFlight: a.MaxInFlight, Now: s.clock.Now(),
			Auth: a.Auth, OauthAppID: a.OAuthAppID,
		})
		if err != nil {
			return nil, err
		}
		if in.ProviderCaps != nil {
			b, _ := json.Marshal(a.ProviderCaps)
			if err := q.SetProviderCaps(ctx, dbsqlc.SetProviderCapsParams{TenantKey: tenant, ID: id, ProviderCaps: b}); err != nil {
				return nil, err
			}
			updated.ProviderCaps = b
		}
		if in.MailboxProvider != nil || in.Credentials != nil {
			mp := mailboxProvider(in, a.MailboxProvider)
			if err := q.SetMailboxProvider(ctx, dbsqlc.SetMailboxProviderParams{TenantKey: tenant, ID: id, MailboxProvider: mp}); err != nil {
				return nil, err
			}
			updated.MailboxProvider = mp
		}
		out = adapterFromRow(updated)
		if err := s.ensureSenderDomain(ctx, q, tenant, updated.FromAddress); err != nil {
			return nil, err
		}
		out.IMAP = a.IMAP
		return nil, s.putIMAP(ctx, q, tenant, id, in, &out)
	})
	return out, mapErr(err, "adapter")
}

// DeleteAdapter soft-deletes an adapter. With enrollments still pinned to
// it the delete is refused with in_use unless force is set; with force, each
// pinned enrollment gets its pool's policy: reassign repins it to an eligible
// member (new thread), pause — or no eligible member — pauses it.
func (s *Store) DeleteAdapter(ctx context.Context, tenant string, id uuid.UUID, force bool) (err error) {
	defer wrapErr(&err, "delete adapter")
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		if _, err := q.GetAdapterForUpdate(ctx, dbsqlc.GetAdapterForUpdateParams{TenantKey: tenant, ID: id}); err != nil {
			return evs, mapErr(err, "adapter")
		}
		pinned, err := q.LivePinnedEnrollments(ctx, dbsqlc.LivePinnedEnrollmentsParams{TenantKey: tenant, AdapterID: id})
		if err != nil {
			return evs, err
		}
		if len(pinned) > 0 && !force {
			return evs, &dripdrop.Error{Code: dripdrop.ECodeInUse, Message: "the adapter still has pinned enrollments; repin them or delete with force=true",
				Extra: map[string]any{"pinned_enrollments": len(pinned)}}
		}
		if _, err := q.SoftDeleteAdapter(ctx, dbsqlc.SoftDeleteAdapterParams{TenantKey: tenant, ID: id, Now: s.clock.Now()}); err != nil {
			return evs, err
		}
		for _, p := range pinned {
			ev, err := s.applyPinPolicy(ctx, q, pinnedRowToEnrollment(p), p.PoolID)
			if err != nil {
				return evs, err
			}
			if ev.name != "" {
				evs = append(evs, ev)
			}
		}
		return evs, s.audit(ctx, q, tenant, "adapter", id, "deleted", "api", map[string]any{"force": force, "pinned_enrollments": len(pinned)})
	})
	if err != nil {
		return mapErr(err, "adapter")
	}
	return nil
}

func pinnedRowToEnrollment(r dbsqlc.LivePinnedEnrollmentsRow) dbsqlc.Enrollment {
	return dbsqlc.Enrollment{
		TenantKey: r.TenantKey, ID: r.ID, SequenceID: r.SequenceID, SequenceVersionID: r.SequenceVersionID, Email: r.Email,
		EmailNorm: r.EmailNorm, State: r.State, AdapterID: r.AdapterID, ThreadNo: r.ThreadNo,
	}
}

// AdapterCredentials decrypts an adapter's connection settings.
func (s *Store) AdapterCredentials(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.SMTPCredentials, err error) {
	defer wrapErr(&err, "read adapter credentials")
	var c dripdrop.SMTPCredentials
	row, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: id})
	if err != nil {
		return c, mapErr(err, "adapter")
	}
	if len(row.Credentials) == 0 {
		return c, nil
	}
	if s.vault == nil {
		return c, errors.New("no encryption key configured; cannot read credentials")
	}
	pt, err := s.vault.Open(row.Credentials, credentialsAD(tenant, id))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(pt, &c)
}

// mailboxProvider is an adapter's own provider: the one given, else the
// one its SMTP host belongs to (preflight.ProviderOfHost).
func mailboxProvider(in dripdrop.AdapterInput, given string) string {
	if in.MailboxProvider != nil && *in.MailboxProvider != "" {
		return *in.MailboxProvider
	}
	if in.Credentials != nil {
		return preflight.ProviderOfHost(in.Credentials.Host)
	}
	return given
}

// capsOrEmpty reads provider_caps for the API ({} when none).
func capsOrEmpty(raw []byte) map[string]int {
	if m := providerCaps(raw); m != nil {
		return m
	}
	return map[string]int{}
}
