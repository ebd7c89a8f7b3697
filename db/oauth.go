package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/mailauth"
)

// OAuth2 mailbox connections (docs/mailboxes.md): a tenant's OAuth apps,
// the sealed grant of each oauth2 adapter, the connect flow's single-use
// states, and the hold of an adapter whose grant died. Secrets are sealed
// with the vault, each with its own associated data (tenant, row, purpose),
// so a sealed value cannot be moved to another row or purpose.

func oauthAD(tenant string, id uuid.UUID, purpose string) []byte {
	return []byte(tenant + "|" + id.String() + "|" + purpose)
}

func (s *Store) seal(b []byte, ad []byte) ([]byte, error) {
	if s.vault == nil {
		return nil, errors.New("no encryption key configured; cannot store secrets")
	}
	return s.vault.Seal(b, ad), nil
}

func (s *Store) open(b []byte, ad []byte) (string, error) {
	if s.vault == nil {
		return "", errors.New("no encryption key configured; cannot read secrets")
	}
	pt, err := s.vault.Open(b, ad)
	return string(pt), err
}

func oauthAppFromRow(r dbsqlc.OauthApp) dripdrop.OAuthApp {
	return dripdrop.OAuthApp{ID: r.ID, Name: r.Name, Provider: r.Provider, ClientID: r.ClientID, ClientSecretSet: len(r.ClientSecret) > 0,
		AuthURL: r.AuthUrl, TokenURL: r.TokenUrl, Scopes: r.Scopes, SMTPHost: r.SmtpHost, SMTPPort: r.SmtpPort,
		IMAPHost: r.ImapHost, IMAPPort: r.ImapPort, CreatedAt: r.CreatedAt}
}

// CreateOAuthApp validates and stores a tenant's OAuth app; the client
// secret is sealed. A custom app's URLs and servers obey the
// outbound-destination rule (docs/security.md#the-operators-network).
func (s *Store) CreateOAuthApp(ctx context.Context, tenant string, in dripdrop.OAuthAppInput) (_ dripdrop.OAuthApp, err error) {
	defer wrapErr(&err, "create oauth app")
	a, err := in.Apply()
	if err != nil {
		return a, err
	}
	if a.Provider == dripdrop.OAuthCustom {
		g := netguard.Guard{AllowPrivate: s.allowPrivate}
		for field, u := range map[string]string{"auth_url": a.AuthURL, "token_url": a.TokenURL} {
			if err := g.CheckHost(hostOf(u)); err != nil {
				return a, dripdrop.Errorf(dripdrop.ECodeForbiddenTarget, field, "%v (set DRIPDROP_ALLOW_PRIVATE_TARGETS=true to allow private targets)", err)
			}
		}
		for field, h := range map[string]string{"smtp_host": a.SMTPHost, "imap_host": a.IMAPHost} {
			if h == "" {
				continue
			}
			if err := g.CheckHost(h); err != nil {
				return a, dripdrop.Errorf(dripdrop.ECodeForbiddenTarget, field, "%v (set DRIPDROP_ALLOW_PRIVATE_TARGETS=true to allow private targets)", err)
			}
		}
	}
	a.ID = dripdrop.NewID()
	var secret []byte
	if in.ClientSecret != nil && *in.ClientSecret != "" {
		if secret, err = s.seal([]byte(*in.ClientSecret), oauthAD(tenant, a.ID, "client-secret")); err != nil {
			return a, err
		}
	}
	now := s.clock.Now()
	row, err := s.q.CreateOAuthApp(ctx, dbsqlc.CreateOAuthAppParams{TenantKey: tenant, ID: a.ID, Name: a.Name, Provider: a.Provider,
		ClientID: a.ClientID, ClientSecret: secret, AuthUrl: a.AuthURL, TokenUrl: a.TokenURL, Scopes: a.Scopes,
		SmtpHost: a.SMTPHost, SmtpPort: a.SMTPPort, ImapHost: a.IMAPHost, ImapPort: a.IMAPPort, Now: now})
	if err != nil {
		return a, mapErr(err, "oauth app")
	}
	return oauthAppFromRow(row), nil
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Hostname()
	}
	return ""
}

// GetOAuthApp returns one live OAuth app.
func (s *Store) GetOAuthApp(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.OAuthApp, err error) {
	defer wrapErr(&err, "get oauth app")
	row, err := s.q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: id})
	if err != nil {
		return dripdrop.OAuthApp{}, mapErr(err, "oauth app")
	}
	return oauthAppFromRow(row), nil
}

// ListOAuthApps pages through a tenant's OAuth apps.
func (s *Store) ListOAuthApps(ctx context.Context, tenant string, p Page) (_ []dripdrop.OAuthApp, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list oauth apps")
	rows, err := s.q.ListOAuthApps(ctx, dbsqlc.ListOAuthAppsParams{TenantKey: tenant, After: p.After, Lim: int32(p.limit())})
	if err != nil {
		return nil, nil, err
	}
	out := make([]dripdrop.OAuthApp, len(rows))
	for i, r := range rows {
		out[i] = oauthAppFromRow(r)
	}
	return out, nextCursor(out, p.limit(), func(a dripdrop.OAuthApp) uuid.UUID { return a.ID }), nil
}

// DeleteOAuthApp deletes an app no live adapter uses (409 in_use otherwise:
// switch or delete those adapters first; force does not apply). Its sealed
// secret is dropped with it.
func (s *Store) DeleteOAuthApp(ctx context.Context, tenant string, id uuid.UUID, _ bool) (err error) {
	defer wrapErr(&err, "delete oauth app")
	return s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		if _, err := q.GetOAuthAppForUpdate(ctx, dbsqlc.GetOAuthAppForUpdateParams{TenantKey: tenant, ID: id}); err != nil {
			return nil, mapErr(err, "oauth app")
		}
		n, err := q.CountOAuthAppAdapters(ctx, dbsqlc.CountOAuthAppAdaptersParams{TenantKey: tenant, OauthAppID: &id})
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, &dripdrop.Error{Code: dripdrop.ECodeInUse, Message: "adapters still log in with this app; delete them or switch them to another app first",
				Extra: map[string]any{"adapters": n}}
		}
		if _, err := q.SoftDeleteOAuthApp(ctx, dbsqlc.SoftDeleteOAuthAppParams{TenantKey: tenant, ID: id, Now: s.clock.Now()}); err != nil {
			return nil, err
		}
		return nil, s.audit(ctx, q, tenant, "oauth_app", id, "deleted", "api", nil)
	})
}

func oauthAppMissing(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return dripdrop.Errorf(dripdrop.ECodeNotFound, "oauth_app_id", "oauth app not found")
	}
	return err
}

// oauthAppServer is the SMTP server of an app, logging in as the mailbox:
// an oauth2 adapter created without credentials uses it.
func (s *Store) oauthAppServer(ctx context.Context, q *dbsqlc.Queries, tenant string, app uuid.UUID, from string) (*dripdrop.SMTPCredentials, error) {
	a, err := q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: app})
	if err != nil {
		return nil, oauthAppMissing(err)
	}
	if a.SmtpHost == "" || a.SmtpPort == 0 {
		return nil, dripdrop.Errorf(dripdrop.ECodeRequired, "credentials", "the oauth app names no SMTP server; give credentials (host and port)")
	}
	return &dripdrop.SMTPCredentials{Host: a.SmtpHost, Port: a.SmtpPort, Username: from, TLS: "starttls"}, nil
}

// oauthStatus is an oauth2 adapter's connection state, without tokens.
func (s *Store) oauthStatus(ctx context.Context, q *dbsqlc.Queries, a dbsqlc.Adapter) (*dripdrop.OAuthStatus, error) {
	st := &dripdrop.OAuthStatus{State: dripdrop.TokenNotConnected}
	if a.OauthAppID != nil {
		st.AppID = *a.OauthAppID
		app, err := q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: a.TenantKey, ID: *a.OauthAppID})
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		st.Provider = app.Provider
	}
	t, err := q.GetOAuthToken(ctx, dbsqlc.GetOAuthTokenParams{TenantKey: a.TenantKey, AdapterID: a.ID})
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.State, st.ConnectedAt, st.RefreshedAt, st.AccessExpiresAt = t.State, &t.ConnectedAt, t.RefreshedAt, t.AccessExpiresAt
	st.LastError = deref(t.LastError)
	return st, nil
}

// OAuthClient is what a token source needs to talk to an adapter's
// authorization server and log in to its mailbox.
type OAuthClient struct {
	TenantKey    string
	AdapterID    uuid.UUID
	App          dripdrop.OAuthApp
	ClientSecret string
	// Username is the mailbox an OAuth2 login names: the credentials'
	// username, else the adapter's from address.
	Username    string
	FromAddress string
	Credentials dripdrop.SMTPCredentials
}

// OAuthClient reads an oauth2 adapter's app (with its opened secret) and
// login settings. An adapter that does not authenticate by oauth2 is
// invalid_state.
func (s *Store) OAuthClient(ctx context.Context, tenant string, adapterID uuid.UUID) (_ OAuthClient, err error) {
	defer wrapErr(&err, "read oauth client")
	ad, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: adapterID})
	if err != nil {
		return OAuthClient{}, mapErr(err, "adapter")
	}
	if ad.Auth != dripdrop.AuthOAuth2 || ad.OauthAppID == nil {
		return OAuthClient{}, dripdrop.Errorf(dripdrop.ECodeInvalidState, "auth", "the adapter does not authenticate by oauth2 (PATCH it with auth oauth2 and an oauth_app_id)")
	}
	app, err := s.q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: *ad.OauthAppID})
	if err != nil {
		return OAuthClient{}, oauthAppMissing(err)
	}
	c := OAuthClient{TenantKey: tenant, AdapterID: adapterID, App: oauthAppFromRow(app), FromAddress: ad.FromAddress}
	if len(app.ClientSecret) > 0 {
		if c.ClientSecret, err = s.open(app.ClientSecret, oauthAD(tenant, app.ID, "client-secret")); err != nil {
			return OAuthClient{}, err
		}
	}
	if len(ad.Credentials) > 0 {
		cr, err := s.openCredentials(tenant, ad)
		if err != nil {
			return OAuthClient{}, err
		}
		c.Credentials = *cr
	}
	c.Username = c.Credentials.Username
	if c.Username == "" {
		c.Username = ad.FromAddress
	}
	return c, nil
}

// AccessToken is a cached access token and when it expires (nil: unknown).
type AccessToken struct {
	Token     string
	ExpiresAt *time.Time
}

// ValidAt reports whether the token may still be used at t.
func (t AccessToken) ValidAt(at time.Time) bool {
	return t.Token != "" && (t.ExpiresAt == nil || t.ExpiresAt.After(at))
}

// RefreshedToken is what the authorization server answered: a new access
// token, possibly a rotated refresh token ("" keeps the stored one), and
// the access token's expiry.
type RefreshedToken struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    *time.Time
}

// RefreshFunc asks the authorization server for a new access token with a
// refresh token. It returns an error wrapping mailauth.ErrReconnectRequired
// when the server refuses the grant (invalid_grant).
type RefreshFunc func(ctx context.Context, c OAuthClient, refreshToken string) (RefreshedToken, error)

func (s *Store) openAccess(t dbsqlc.OauthToken) (AccessToken, error) {
	if len(t.AccessToken) == 0 {
		return AccessToken{}, nil
	}
	tok, err := s.open(t.AccessToken, oauthAD(t.TenantKey, t.AdapterID, "access-token"))
	return AccessToken{Token: tok, ExpiresAt: t.AccessExpiresAt}, err
}

// CachedAccessToken is the adapter's stored access token (Token "" when
// none is stored): mailauth.ErrNotConnected without a grant,
// mailauth.ErrReconnectRequired when the grant died.
func (s *Store) CachedAccessToken(ctx context.Context, tenant string, adapterID uuid.UUID) (_ AccessToken, err error) {
	defer wrapErr(&err, "read access token")
	t, err := s.q.GetOAuthToken(ctx, dbsqlc.GetOAuthTokenParams{TenantKey: tenant, AdapterID: adapterID})
	if errors.Is(err, pgx.ErrNoRows) {
		return AccessToken{}, mailauth.ErrNotConnected
	}
	if err != nil {
		return AccessToken{}, err
	}
	if t.State == dripdrop.TokenReconnectRequired {
		return AccessToken{}, mailauth.ErrReconnectRequired
	}
	return s.openAccess(t)
}

// RefreshAccessToken returns an access token valid at least until
// validUntil, refreshing it with refresh when the stored one is not.
//
// One replica at a time refreshes an adapter's token: it takes a lease on
// the grant's row (a short UPDATE under the row lock: refresh_lease_id,
// refresh_lease_until), calls the token endpoint outside any transaction,
// and stores the result — a rotated refresh token too — only while the
// grant still holds the refresh token it used, ending the lease. A replica
// that finds a live lease waits for the new token (polling the row) and
// never calls the provider; a crashed refresher's lease runs out after
// leaseFor. The HTTP call is deliberately not inside a transaction: a
// transaction open for its duration (seconds, when the endpoint is slow)
// would hold back the ordered telemetry feed of every tenant, whose
// never-skip rule waits for every older writer.
//
// An invalid_grant answer holds the adapter for a reconnect
// (reconnect_required) and returns mailauth.ErrReconnectRequired; any
// other failure changes nothing (the lease ends) and is returned as the
// refresh function gave it. ctx bounds the wait and the call.
func (s *Store) RefreshAccessToken(ctx context.Context, tenant string, adapterID uuid.UUID, validUntil time.Time, refresh RefreshFunc) (_ AccessToken, err error) {
	defer wrapErr(&err, "refresh access token")
	c, err := s.OAuthClient(ctx, tenant, adapterID)
	if err != nil {
		return AccessToken{}, err
	}
	lease := dripdrop.NewID()
	wait := 25 * time.Millisecond
	var row dbsqlc.OauthToken
	for {
		t, err := s.q.GetOAuthToken(ctx, dbsqlc.GetOAuthTokenParams{TenantKey: tenant, AdapterID: adapterID})
		if errors.Is(err, pgx.ErrNoRows) {
			return AccessToken{}, mailauth.ErrNotConnected
		}
		if err != nil {
			return AccessToken{}, err
		}
		if t.State == dripdrop.TokenReconnectRequired {
			return AccessToken{}, mailauth.ErrReconnectRequired
		}
		if cur, err := s.openAccess(t); err != nil || cur.ValidAt(validUntil) {
			return cur, err // refreshed by another replica meanwhile
		}
		now := s.clock.Now()
		row, err = s.q.LeaseOAuthRefresh(ctx, dbsqlc.LeaseOAuthRefreshParams{TenantKey: tenant, AdapterID: adapterID, LeaseID: &lease,
			Until: now.Add(leaseFor), Now: now})
		if err == nil {
			break
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return AccessToken{}, err
		}
		// Another replica holds the lease: wait for its token.
		select {
		case <-ctx.Done():
			return AccessToken{}, &mailauth.TokenError{Reason: "timeout", Err: ctx.Err()}
		case <-time.After(wait):
		}
		wait = min(2*wait, 400*time.Millisecond)
	}
	release := func() {
		_ = s.q.ReleaseOAuthRefresh(context.WithoutCancel(ctx), dbsqlc.ReleaseOAuthRefreshParams{TenantKey: tenant, AdapterID: adapterID, LeaseID: &lease})
	}
	if cur, err := s.openAccess(row); err != nil || cur.ValidAt(validUntil) {
		release() // stored between the read and the lease
		return cur, err
	}
	rt, err := s.open(row.RefreshToken, oauthAD(tenant, adapterID, "refresh-token"))
	if err != nil {
		release()
		return AccessToken{}, err
	}
	got, err := refresh(ctx, c, rt)
	if errors.Is(err, mailauth.ErrReconnectRequired) {
		if herr := s.holdForReconnect(context.WithoutCancel(ctx), tenant, adapterID, row.RefreshToken, "invalid_grant"); herr != nil {
			release()
			return AccessToken{}, fmt.Errorf("%w (holding the adapter failed: %v)", err, herr)
		}
		return AccessToken{}, mailauth.ErrReconnectRequired
	}
	if err != nil {
		release()
		return AccessToken{}, err
	}
	sealedRT := row.RefreshToken
	if got.RefreshToken != "" && got.RefreshToken != rt {
		if sealedRT, err = s.seal([]byte(got.RefreshToken), oauthAD(tenant, adapterID, "refresh-token")); err != nil {
			release()
			return AccessToken{}, err
		}
	}
	sealedAT, err := s.seal([]byte(got.AccessToken), oauthAD(tenant, adapterID, "access-token"))
	if err != nil {
		release()
		return AccessToken{}, err
	}
	wctx := context.WithoutCancel(ctx) // the provider rotated: the new token must be stored
	n, err := s.q.StoreRefreshedToken(wctx, dbsqlc.StoreRefreshedTokenParams{TenantKey: tenant, AdapterID: adapterID, RefreshToken: sealedRT,
		AccessToken: sealedAT, AccessExpiresAt: got.ExpiresAt, Now: s.clock.Now(), Used: row.RefreshToken})
	if err != nil {
		release()
		return AccessToken{}, err
	}
	if n == 0 {
		// A reconnect replaced the grant (or the hold took it) meanwhile:
		// the token answered is still good for this login.
		release()
	}
	return AccessToken{Token: got.AccessToken, ExpiresAt: got.ExpiresAt}, nil
}

// leaseFor is how long a refresh lease lasts: longer than any token
// endpoint call (the source's timeout), so only a crashed refresher's
// lease runs out.
const leaseFor = time.Minute

// NoteTokenError records why the last refresh failed (a short label, never
// a token), for the adapter page.
func (s *Store) NoteTokenError(ctx context.Context, tenant string, adapterID uuid.UUID, reason string) error {
	return wrap("note token error", s.q.SetOAuthTokenError(ctx, dbsqlc.SetOAuthTokenErrorParams{TenantKey: tenant, AdapterID: adapterID, LastError: &reason, Now: s.clock.Now()}))
}

// InvalidateAccessToken drops the stored access token when it is still
// token (a server refused it before its expiry), so the next use refreshes.
func (s *Store) InvalidateAccessToken(ctx context.Context, tenant string, adapterID uuid.UUID, token string) error {
	cur, err := s.CachedAccessToken(ctx, tenant, adapterID)
	if err != nil || cur.Token != token {
		return nil
	}
	return wrap("invalidate access token", s.q.ClearOAuthAccessToken(ctx, dbsqlc.ClearOAuthAccessTokenParams{TenantKey: tenant, AdapterID: adapterID, Now: s.clock.Now()}))
}

// holdForReconnect moves an adapter whose grant died to resting with
// reason reconnect_required (source engine), with no cooldown end and so no
// automatic probe, remembers the state it had for the reconnect, and gives
// its pinned enrollments their pool's policy (pause, or reassign to an
// eligible member). dead is the sealed refresh token the server refused:
// when the stored one differs (a reconnect or another replica's refresh
// won the race) nothing changes. Emits dripdrop.adapter.reconnect_required
// and dripdrop.health.state_changed.
func (s *Store) holdForReconnect(ctx context.Context, tenant string, adapterID uuid.UUID, dead []byte, reason string) error {
	return s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		// Lock order: adapter, then its grant, then enrollments.
		a, err := q.LockAdapter(ctx, dbsqlc.LockAdapterParams{TenantKey: tenant, ID: adapterID})
		if err != nil {
			return nil, err
		}
		t, err := q.GetOAuthTokenForUpdate(ctx, dbsqlc.GetOAuthTokenForUpdateParams{TenantKey: tenant, AdapterID: adapterID})
		if err != nil {
			return nil, ignoreNoRows(err)
		}
		if t.State != dripdrop.TokenConnected || !bytes.Equal(t.RefreshToken, dead) {
			return nil, nil
		}
		now := s.clock.Now()
		prior := string(a.HealthState)
		if err := q.MarkReconnectRequired(ctx, dbsqlc.MarkReconnectRequiredParams{TenantKey: tenant, AdapterID: adapterID, LastError: &reason,
			PriorHealthState: &prior, PriorRestingUntil: a.RestingUntil, Now: now}); err != nil {
			return nil, err
		}
		var provider string
		if a.OauthAppID != nil {
			if app, err := q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: *a.OauthAppID}); err == nil {
				provider = app.Provider
			}
		}
		evs := []event{evReconnectRequired(tenant, adapterID, provider, reason)}
		if a.DeletedAt != nil {
			return evs, nil
		}
		if _, err := q.HoldForReconnect(ctx, dbsqlc.HoldForReconnectParams{TenantKey: tenant, ID: adapterID, Now: now}); err != nil {
			return nil, err
		}
		data := map[string]any{"from": a.HealthState, "to": dripdrop.HealthResting, "reason": dripdrop.ReasonReconnectRequired, "source": SourceEngine, "at": now}
		if err := s.audit(ctx, q, tenant, "adapter", adapterID, "health_state_changed", SourceEngine, data); err != nil {
			return nil, err
		}
		evs = append(evs, evStateChanged(tenant, adapterID, a.HealthState, dripdrop.HealthResting, dripdrop.ReasonReconnectRequired, SourceEngine))
		pinned, err := q.LivePinnedEnrollments(ctx, dbsqlc.LivePinnedEnrollmentsParams{TenantKey: tenant, AdapterID: adapterID})
		if err != nil {
			return nil, err
		}
		for _, p := range pinned {
			ev, err := s.applyPinPolicy(ctx, q, pinnedRowToEnrollment(p), p.PoolID)
			if err != nil {
				return nil, err
			}
			if ev.name != "" {
				evs = append(evs, ev)
			}
		}
		return evs, nil
	})
}

// StoreOAuthGrant stores a grant for an oauth2 adapter — from the connect
// flow's code exchange or a refresh token given through the API — sealed,
// with its access token when there is one. An adapter held for a reconnect
// gets back the health it had (resting_until included), and its
// enrollments paused because it was unavailable resume. actor is the
// audit's actor.
func (s *Store) StoreOAuthGrant(ctx context.Context, tenant string, adapterID uuid.UUID, g RefreshedToken, actor string) (_ dripdrop.Adapter, err error) {
	defer wrapErr(&err, "store oauth grant")
	if g.RefreshToken == "" {
		return dripdrop.Adapter{}, dripdrop.Errorf(dripdrop.ECodeRequired, "refresh_token", "the authorization server returned no refresh token (ask for offline access: Google access_type=offline, Microsoft offline_access)")
	}
	var out dripdrop.Adapter
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		a, err := q.GetAdapterForUpdate(ctx, dbsqlc.GetAdapterForUpdateParams{TenantKey: tenant, ID: adapterID})
		if err != nil {
			return nil, mapErr(err, "adapter")
		}
		if a.Auth != dripdrop.AuthOAuth2 {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidState, "auth", "the adapter does not authenticate by oauth2")
		}
		prev, err := q.GetOAuthTokenForUpdate(ctx, dbsqlc.GetOAuthTokenForUpdateParams{TenantKey: tenant, AdapterID: adapterID})
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		sealedRT, err := s.seal([]byte(g.RefreshToken), oauthAD(tenant, adapterID, "refresh-token"))
		if err != nil {
			return nil, err
		}
		var sealedAT []byte
		if g.AccessToken != "" {
			if sealedAT, err = s.seal([]byte(g.AccessToken), oauthAD(tenant, adapterID, "access-token")); err != nil {
				return nil, err
			}
		}
		now := s.clock.Now()
		if _, err := q.PutOAuthGrant(ctx, dbsqlc.PutOAuthGrantParams{TenantKey: tenant, AdapterID: adapterID, RefreshToken: sealedRT,
			AccessToken: sealedAT, AccessExpiresAt: g.ExpiresAt, Now: now}); err != nil {
			return nil, err
		}
		if err := s.audit(ctx, q, tenant, "adapter", adapterID, "oauth_connected", actor, nil); err != nil {
			return nil, err
		}
		var evs []event
		if a.ReconnectRequired {
			to := dripdrop.HealthActive
			var until *time.Time
			if prev.PriorHealthState != nil && *prev.PriorHealthState != "" {
				to = dripdrop.HealthState(*prev.PriorHealthState)
				until = prev.PriorRestingUntil
			}
			if to == dripdrop.HealthResting && until == nil {
				t := now
				until = &t // rested without an end: the recovery sweep probes it
			}
			if to != dripdrop.HealthResting {
				until = nil
			}
			if a, err = q.ReleaseReconnect(ctx, dbsqlc.ReleaseReconnectParams{TenantKey: tenant, ID: adapterID, HealthState: string(to), RestingUntil: until, Now: now}); err != nil {
				return nil, err
			}
			data := map[string]any{"from": dripdrop.HealthResting, "to": to, "reason": "reconnected", "source": actor, "at": now}
			if err := s.audit(ctx, q, tenant, "adapter", adapterID, "health_state_changed", actor, data); err != nil {
				return nil, err
			}
			evs = append(evs, evStateChanged(tenant, adapterID, dripdrop.HealthResting, to, "reconnected", actor))
			resumed, err := s.resumePinUnavailable(ctx, q, tenant, adapterID)
			if err != nil {
				return nil, err
			}
			evs = append(evs, resumed...)
		}
		out = adapterFromRow(a)
		out.OAuth, err = s.oauthStatus(ctx, q, a)
		return evs, err
	})
	return out, mapErr(err, "adapter")
}

// OAuthState is a connect flow's pending authorization.
type OAuthState struct {
	ID        uuid.UUID
	AdapterID uuid.UUID
	Verifier  string
	ExpiresAt time.Time
}

// CreateOAuthState stores a connect flow's state with its PKCE verifier
// (sealed), valid for ttl; expired states of the tenant are swept.
func (s *Store) CreateOAuthState(ctx context.Context, tenant string, adapterID uuid.UUID, verifier string, ttl time.Duration) (_ OAuthState, err error) {
	defer wrapErr(&err, "create oauth state")
	now := s.clock.Now()
	st := OAuthState{ID: dripdrop.NewID(), AdapterID: adapterID, Verifier: verifier, ExpiresAt: now.Add(ttl)}
	sealed, err := s.seal([]byte(verifier), oauthAD(tenant, st.ID, "pkce-verifier"))
	if err != nil {
		return st, err
	}
	if _, err := s.q.DeleteExpiredOAuthStates(ctx, dbsqlc.DeleteExpiredOAuthStatesParams{TenantKey: tenant, Before: now.Add(-time.Hour)}); err != nil {
		return st, err
	}
	err = s.q.CreateOAuthState(ctx, dbsqlc.CreateOAuthStateParams{TenantKey: tenant, ID: st.ID, AdapterID: adapterID, Verifier: sealed, ExpiresAt: st.ExpiresAt, Now: now})
	return st, mapErr(err, "adapter")
}

// ErrStateUnusable: the connect flow's state was used already, expired,
// or never existed.
var ErrStateUnusable = errors.New("the authorization state was already used or has expired")

// ConsumeOAuthState uses a state once: it returns its verifier, or
// ErrStateUnusable when it was used, expired or is unknown (then nothing
// changes).
func (s *Store) ConsumeOAuthState(ctx context.Context, tenant string, id, adapterID uuid.UUID) (_ OAuthState, err error) {
	defer wrapErr(&err, "consume oauth state")
	row, err := s.q.ConsumeOAuthState(ctx, dbsqlc.ConsumeOAuthStateParams{TenantKey: tenant, ID: id, AdapterID: adapterID, Now: s.clock.Now()})
	if errors.Is(err, pgx.ErrNoRows) {
		return OAuthState{}, ErrStateUnusable
	}
	if err != nil {
		return OAuthState{}, err
	}
	v, err := s.open(row.Verifier, oauthAD(tenant, id, "pkce-verifier"))
	return OAuthState{ID: id, AdapterID: adapterID, Verifier: v, ExpiresAt: row.ExpiresAt}, err
}

// resumePinUnavailable resumes the enrollments pinned to a reconnected
// adapter that were paused because it was unavailable; their next steps
// are scheduled no earlier than now. Enrollments paused for any other
// reason stay paused.
func (s *Store) resumePinUnavailable(ctx context.Context, q *dbsqlc.Queries, tenant string, adapterID uuid.UUID) ([]event, error) {
	pinned, err := q.LivePinnedEnrollments(ctx, dbsqlc.LivePinnedEnrollmentsParams{TenantKey: tenant, AdapterID: adapterID})
	if err != nil {
		return nil, err
	}
	var evs []event
	now := s.clock.Now()
	for _, p := range pinned {
		if p.State != dripdrop.EnrollmentPaused || p.PauseReason == nil || *p.PauseReason != PausePinUnavailable {
			continue
		}
		if _, err := q.RescheduleNotBefore(ctx, dbsqlc.RescheduleNotBeforeParams{TenantKey: tenant, EnrollmentID: p.ID, Now: now}); err != nil {
			return nil, err
		}
		if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: p.ID, State: dripdrop.EnrollmentActive, Now: now}); err != nil {
			return nil, err
		}
		if err := s.audit(ctx, q, tenant, "enrollment", p.ID, "resumed", SourceEngine, map[string]any{"reason": "adapter_reconnected", "adapter_id": adapterID}); err != nil {
			return nil, err
		}
		evs = append(evs, evEnrollment("dripdrop.enrollment.resumed", tenant, p.ID, "adapter_reconnected"))
	}
	return evs, nil
}
