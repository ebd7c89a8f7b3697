// Package oauth runs the OAuth2 side of mailbox connections
// (docs/mailboxes.md): the token source the SMTP transport (and the IMAP
// mailbox sync) log in with, and the connect flow (authorize URL with PKCE
// and a sealed single-use state, the callback's code exchange, refresh
// tokens given through the API). It speaks to authorization servers with
// golang.org/x/oauth2 through the outbound-destination guard, and keeps
// every token in db, sealed; no token is ever logged, returned or put in an
// event.
package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/mailauth"
	"github.com/dripdrop/dripdrop/vault"
)

// Defaults.
const (
	// RefreshAhead: an access token is refreshed this long before it
	// expires, so no login starts with a token about to die.
	RefreshAhead = 5 * time.Minute
	// DefaultTimeout bounds one call to a token endpoint.
	DefaultTimeout = 15 * time.Second
	// StateTTL is how long a connect flow's state is valid.
	StateTTL = 10 * time.Minute
	// unknownLifetime is assumed for an access token that came without
	// expires_in.
	unknownLifetime = 30 * time.Minute
)

// Config configures a Source.
type Config struct {
	// Box seals the connect flow's state parameter (required for Start and
	// Callback).
	Box *vault.Box
	// Guard refuses private token endpoints at dial time (the zero value
	// refuses them).
	Guard netguard.Guard
	// PublicBaseURL is where the engine is reachable from a browser; the
	// redirect URI is PublicBaseURL + "/oauth/callback".
	PublicBaseURL string
	// Timeout bounds one token endpoint call (default DefaultTimeout).
	Timeout time.Duration
	// Prove logs in to the mailbox with a fresh access token after a
	// connect (dispatch.Verify with an OAuth2 login); nil skips the proof.
	Prove func(ctx context.Context, c db.OAuthClient, token string) dripdrop.VerifyResult
	// HTTPClient, when set, replaces the guarded client (tests).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Source is the engine's mailauth.TokenSource: access tokens cached in
// memory and (sealed) in PostgreSQL, refreshed RefreshAhead before they
// expire by one replica at a time (db.Store.RefreshAccessToken leases the
// grant's row), one refresh per adapter at a time in this process.
type Source struct {
	store  *db.Store
	cfg    Config
	log    *slog.Logger
	client *http.Client

	mu      sync.Mutex
	cache   map[key]db.AccessToken
	flights map[key]*flight
}

type key struct {
	tenant string
	id     uuid.UUID
}

type flight struct {
	done chan struct{}
	tok  db.AccessToken
	err  error
}

var (
	_ mailauth.TokenSource = (*Source)(nil)
	_ mailauth.Invalidator = (*Source)(nil)
)

// NewSource returns a token source over store.
func NewSource(store *db.Store, cfg Config) *Source {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	s := &Source{store: store, cfg: cfg, log: cfg.Logger, cache: map[key]db.AccessToken{}, flights: map[key]*flight{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.client = cfg.HTTPClient
	if s.client == nil {
		d := cfg.Guard.Dialer(net.Dialer{Timeout: 10 * time.Second})
		s.client = &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 10 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true},
			// A token endpoint answers; it never redirects a POST with a secret elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return s
}

// AccessToken returns an access token for the adapter valid for at least
// RefreshAhead: from memory, else from the database, else refreshed.
// Errors: mailauth.ErrNotConnected, mailauth.ErrReconnectRequired (the
// adapter is now held for a reconnect), *mailauth.TokenError (the token
// endpoint failed: retry later), or a store error.
func (s *Source) AccessToken(ctx context.Context, tenant string, adapterID uuid.UUID) (string, error) {
	k := key{tenant, adapterID}
	need := s.store.Now().Add(RefreshAhead)
	s.mu.Lock()
	if t, ok := s.cache[k]; ok && t.ValidAt(need) {
		s.mu.Unlock()
		return t.Token, nil
	}
	if f, ok := s.flights[k]; ok {
		s.mu.Unlock()
		select {
		case <-f.done:
			return f.tok.Token, f.err
		case <-ctx.Done():
			return "", &mailauth.TokenError{Reason: "timeout", Err: ctx.Err()}
		}
	}
	f := &flight{done: make(chan struct{})}
	s.flights[k] = f
	s.mu.Unlock()

	f.tok, f.err = s.fetch(ctx, tenant, adapterID, need)
	s.mu.Lock()
	delete(s.flights, k)
	if f.err == nil {
		s.cache[k] = f.tok
	} else {
		delete(s.cache, k)
	}
	s.mu.Unlock()
	close(f.done)
	return f.tok.Token, f.err
}

func (s *Source) fetch(ctx context.Context, tenant string, adapterID uuid.UUID, need time.Time) (db.AccessToken, error) {
	cur, err := s.store.CachedAccessToken(ctx, tenant, adapterID)
	if err != nil {
		return db.AccessToken{}, err
	}
	if cur.ValidAt(need) {
		return cur, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	tok, err := s.store.RefreshAccessToken(rctx, tenant, adapterID, need, s.refresh)
	var te *mailauth.TokenError
	if errors.As(err, &te) {
		s.log.Warn("OAuth2 token refresh failed; the adapter backs off", "tenant", tenant, "adapter", adapterID, "reason", te.Reason)
		_ = s.store.NoteTokenError(context.WithoutCancel(ctx), tenant, adapterID, te.Reason)
	}
	if errors.Is(err, mailauth.ErrReconnectRequired) {
		s.log.Warn("OAuth2 grant refused (invalid_grant); the adapter rests until it is reconnected", "tenant", tenant, "adapter", adapterID)
	}
	if err == nil && !tok.ValidAt(s.store.Now()) {
		return db.AccessToken{}, &mailauth.TokenError{Reason: "expired_token"}
	}
	return tok, err
}

// Invalidate drops a token a server refused before its expiry (memory and
// database), so the next AccessToken refreshes.
func (s *Source) Invalidate(ctx context.Context, tenant string, adapterID uuid.UUID, token string) {
	k := key{tenant, adapterID}
	s.mu.Lock()
	if t, ok := s.cache[k]; ok && t.Token == token {
		delete(s.cache, k)
	}
	s.mu.Unlock()
	if err := s.store.InvalidateAccessToken(ctx, tenant, adapterID, token); err != nil {
		s.log.Warn("dropping a refused access token", "tenant", tenant, "adapter", adapterID, "err", err)
	}
}

// forget drops the memory cache of an adapter (after a reconnect).
func (s *Source) forget(tenant string, adapterID uuid.UUID) {
	s.mu.Lock()
	delete(s.cache, key{tenant, adapterID})
	s.mu.Unlock()
}

// config is the x/oauth2 configuration of an adapter's app.
func (s *Source) config(c db.OAuthClient) *oauth2.Config {
	return &oauth2.Config{ClientID: c.App.ClientID, ClientSecret: c.ClientSecret, Scopes: c.App.Scopes,
		RedirectURL: s.redirectURL(),
		Endpoint:    oauth2.Endpoint{AuthURL: c.App.AuthURL, TokenURL: c.App.TokenURL, AuthStyle: authStyle(c.App.Provider)}}
}

func authStyle(provider string) oauth2.AuthStyle {
	switch provider {
	case dripdrop.OAuthGoogle, dripdrop.OAuthMicrosoft:
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleAutoDetect
}

func (s *Source) redirectURL() string {
	return strings.TrimRight(s.cfg.PublicBaseURL, "/") + "/oauth/callback"
}

func (s *Source) httpCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, s.client)
}

// refresh is the db.RefreshFunc: one refresh_token grant through x/oauth2.
func (s *Source) refresh(ctx context.Context, c db.OAuthClient, refreshToken string) (db.RefreshedToken, error) {
	ts := s.config(c).TokenSource(s.httpCtx(ctx), &oauth2.Token{RefreshToken: refreshToken})
	t, err := ts.Token()
	if err != nil {
		return db.RefreshedToken{}, classify(err)
	}
	return s.refreshed(t), nil
}

func (s *Source) refreshed(t *oauth2.Token) db.RefreshedToken {
	now := s.store.Now()
	life := unknownLifetime
	switch {
	case t.ExpiresIn > 0:
		life = time.Duration(t.ExpiresIn) * time.Second
	case !t.Expiry.IsZero():
		life = time.Until(t.Expiry)
	}
	exp := now.Add(life)
	return db.RefreshedToken{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresAt: &exp}
}

// classify turns a token endpoint failure into the engine's terms:
// invalid_grant is a dead grant (mailauth.ErrReconnectRequired), anything
// else a temporary failure of the sender labelled without the server's
// body (which a misbehaving server could fill with anything).
func classify(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "invalid_grant":
			return mailauth.ErrReconnectRequired
		case "":
			status := 0
			if re.Response != nil {
				status = re.Response.StatusCode
			}
			return &mailauth.TokenError{Reason: "token_endpoint_http_" + itoa(status)}
		}
		return &mailauth.TokenError{Reason: "token_endpoint_" + sanitize(re.ErrorCode)}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &mailauth.TokenError{Reason: "token_endpoint_timeout"}
	}
	if errors.Is(err, netguard.ErrForbiddenTarget) {
		return &mailauth.TokenError{Reason: "token_endpoint_forbidden_target"}
	}
	return &mailauth.TokenError{Reason: "token_endpoint_unreachable"}
}

func itoa(n int) string {
	if n <= 0 {
		return "none"
	}
	b := []byte{}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// sanitize keeps an OAuth error code a short [a-z_] label.
func sanitize(code string) string {
	var b strings.Builder
	for _, r := range code {
		if (r >= 'a' && r <= 'z') || r == '_' {
			b.WriteRune(r)
		}
		if b.Len() >= 40 {
			break
		}
	}
	if b.Len() == 0 {
		return "error"
	}
	return b.String()
}
