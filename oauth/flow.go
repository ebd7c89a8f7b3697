package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/mailauth"
)

// The connect flow (docs/mailboxes.md#the-connect-flow): Start stores a
// PKCE verifier under a new state id and returns the provider's authorize
// URL; the provider sends the browser back to GET /oauth/callback with a
// code and the state; Callback opens the state, uses it once, exchanges the
// code with the verifier, stores the grant and proves it with a login.
//
// The state parameter is sealed with the vault (AES-256-GCM: signed and
// opaque — it names the tenant and the adapter, which must not travel in
// clear through the provider), carries its expiry, and is single-use
// because its row in oauth_states is consumed by the first callback.

// stateClaims is the sealed content of a state parameter.
type stateClaims struct {
	Tenant  string    `json:"t"`
	Adapter uuid.UUID `json:"a"`
	ID      uuid.UUID `json:"n"`
	Expires int64     `json:"e"`
}

var stateAD = []byte("dripdrop oauth state v1")

func (s *Source) sealState(c stateClaims) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(s.cfg.Box.Seal(b, stateAD))
}

func (s *Source) openState(state string) (stateClaims, bool) {
	var c stateClaims
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil || len(state) > 2048 || s.cfg.Box == nil {
		return c, false
	}
	pt, err := s.cfg.Box.Open(raw, stateAD)
	if err != nil || json.Unmarshal(pt, &c) != nil {
		return c, false
	}
	return c, true
}

// Start begins a connect: it returns the provider's authorize URL
// (authorization code with PKCE S256, offline access) for the adapter.
func (s *Source) Start(ctx context.Context, tenant string, adapterID uuid.UUID) (dripdrop.OAuthStart, error) {
	if s.cfg.Box == nil || s.cfg.PublicBaseURL == "" {
		return dripdrop.OAuthStart{}, dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "the connect flow needs PUBLIC_BASE_URL (the redirect URI is PUBLIC_BASE_URL/oauth/callback) and an encryption key")
	}
	c, err := s.store.OAuthClient(ctx, tenant, adapterID)
	if err != nil {
		return dripdrop.OAuthStart{}, err
	}
	verifier := oauth2.GenerateVerifier()
	st, err := s.store.CreateOAuthState(ctx, tenant, adapterID, verifier, StateTTL)
	if err != nil {
		return dripdrop.OAuthStart{}, err
	}
	state := s.sealState(stateClaims{Tenant: tenant, Adapter: adapterID, ID: st.ID, Expires: st.ExpiresAt.Unix()})
	opts := []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.S256ChallengeOption(verifier)}
	switch c.App.Provider {
	case dripdrop.OAuthGoogle:
		// Google returns a refresh token only on consent; ask for it every
		// time, so a reconnect gets a new one.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "consent"))
	case dripdrop.OAuthMicrosoft:
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	if c.Username != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", c.Username))
	}
	return dripdrop.OAuthStart{AuthorizeURL: s.config(c).AuthCodeURL(state, opts...), ExpiresAt: st.ExpiresAt}, nil
}

// Result is what the callback page shows.
type Result struct {
	OK bool
	// Title and Detail are for people; Detail never carries a token.
	Title, Detail string
	TenantKey     string
	AdapterID     uuid.UUID
	// Proof is the login that proved the token, when one ran.
	Proof *dripdrop.VerifyResult
}

// Callback finishes a connect from the callback's query. A bad, reused or
// expired state is refused and changes nothing.
func (s *Source) Callback(ctx context.Context, q url.Values) Result {
	claims, ok := s.openState(q.Get("state"))
	if !ok {
		return Result{Title: "This link is not valid", Detail: "The authorization state is missing or was not issued by this engine. Start the connection again from the dashboard."}
	}
	res := Result{TenantKey: claims.Tenant, AdapterID: claims.Adapter}
	if !s.store.Now().Before(time.Unix(claims.Expires, 0)) {
		res.Title, res.Detail = "This link has expired", "A connection must be finished within 10 minutes. Start it again from the dashboard."
		return res
	}
	if e := q.Get("error"); e != "" {
		res.Title, res.Detail = "The provider did not grant access", "It answered "+sanitize(e)+". Nothing was changed; start again to retry."
		return res
	}
	code := q.Get("code")
	if code == "" {
		res.Title, res.Detail = "The provider sent no authorization code", "Nothing was changed; start the connection again."
		return res
	}
	st, err := s.store.ConsumeOAuthState(ctx, claims.Tenant, claims.ID, claims.Adapter)
	if errors.Is(err, db.ErrStateUnusable) {
		res.Title, res.Detail = "This link was already used or has expired", "Each connection link works once. Start the connection again from the dashboard."
		return res
	}
	if err != nil {
		s.log.Error("oauth callback: reading the state", "tenant", claims.Tenant, "adapter", claims.Adapter, "err", err)
		res.Title, res.Detail = "The connection could not be finished", "The engine could not read its records; try again."
		return res
	}
	c, err := s.store.OAuthClient(ctx, claims.Tenant, claims.Adapter)
	if err != nil {
		res.Title, res.Detail = "The connection could not be finished", "The adapter no longer authenticates by OAuth2 or was deleted."
		return res
	}
	xctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	tok, err := s.config(c).Exchange(s.httpCtx(xctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		reason := "the provider refused the authorization code"
		var te *mailauth.TokenError
		if errors.As(classify(err), &te) {
			reason = "the provider's token endpoint failed (" + te.Reason + ")"
		}
		res.Title, res.Detail = "The connection could not be finished", "The code exchange failed: "+reason+". Start the connection again."
		return res
	}
	if _, err := s.store.StoreOAuthGrant(ctx, claims.Tenant, claims.Adapter, s.refreshed(tok), "oauth_callback"); err != nil {
		detail := "The engine could not store the grant; try again."
		var de *dripdrop.Error
		if errors.As(err, &de) {
			detail = de.Message
		}
		res.Title, res.Detail = "The connection could not be finished", detail
		return res
	}
	s.forget(claims.Tenant, claims.Adapter)
	res.OK, res.Title = true, "Mailbox connected"
	res.Detail = c.Username + " is connected; its token is stored encrypted."
	if proof := s.prove(ctx, c, tok.AccessToken); proof != nil {
		res.Proof = proof
		if !proof.OK {
			res.OK = false
			res.Title = "Connected, but the mailbox refused the login"
			res.Detail = "The token is stored, but the SMTP login with it failed at " + proof.FailedStage + ". For Microsoft 365, turn on Authenticated SMTP for this mailbox; then verify the adapter."
		}
	}
	return res
}

func (s *Source) prove(ctx context.Context, c db.OAuthClient, token string) *dripdrop.VerifyResult {
	if s.cfg.Prove == nil || c.Credentials.Host == "" {
		return nil
	}
	r := s.cfg.Prove(ctx, c, token)
	return &r
}

// StoreRefreshToken stores a refresh token obtained outside the connect
// flow (PUT /v1/adapters/{id}/oauth/token): it is used once to get an
// access token — proving it works — and the grant (with a rotated refresh
// token, if the server rotated it) is stored. A token the server refuses
// is 422 invalid_value and changes nothing.
func (s *Source) StoreRefreshToken(ctx context.Context, tenant string, adapterID uuid.UUID, in dripdrop.OAuthTokenInput) (dripdrop.OAuthConnection, error) {
	if err := in.Validate(); err != nil {
		return dripdrop.OAuthConnection{}, err
	}
	c, err := s.store.OAuthClient(ctx, tenant, adapterID)
	if err != nil {
		return dripdrop.OAuthConnection{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	got, err := s.refresh(rctx, c, *in.RefreshToken)
	if errors.Is(err, mailauth.ErrReconnectRequired) {
		return dripdrop.OAuthConnection{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "refresh_token", "the authorization server refused this refresh token (invalid_grant)")
	}
	var te *mailauth.TokenError
	if errors.As(err, &te) {
		return dripdrop.OAuthConnection{}, dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "the authorization server's token endpoint failed (%s); nothing was stored", te.Reason)
	}
	if err != nil {
		return dripdrop.OAuthConnection{}, err
	}
	if got.RefreshToken == "" {
		got.RefreshToken = *in.RefreshToken
	}
	a, err := s.store.StoreOAuthGrant(ctx, tenant, adapterID, got, "api")
	if err != nil {
		return dripdrop.OAuthConnection{}, err
	}
	s.forget(tenant, adapterID)
	out := dripdrop.OAuthConnection{Adapter: a}
	if proof := s.prove(ctx, c, got.AccessToken); proof != nil {
		out.Proof = proof
	}
	return out, nil
}
