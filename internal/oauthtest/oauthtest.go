// Package oauthtest is an OAuth2 authorization server for tests, run in the
// test process on loopback: the authorization-code grant with PKCE (S256
// only), refresh with optional rotation, revocation (a revoked grant
// answers invalid_grant) and RFC 7662 token introspection — what Google
// and Microsoft do for a mailbox, without the network. Dovecot's oauth2
// passdb can use IntrospectURL to validate the tokens it issued.
//
// The authorize endpoint stands in for the user's consent: it redirects
// straight back to the client with a code for User.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running authorization server.
type Server struct {
	ClientID, ClientSecret string
	// User is the mailbox that consents on the authorize endpoint.
	User string
	// Scope is the scope granted (default "mail").
	Scope string

	srv *httptest.Server

	mu         sync.Mutex
	now        func() time.Time
	ttl        time.Duration
	rotate     bool
	failStatus int           // token endpoint answers this status (0: normal)
	delay      time.Duration // token endpoint stalls this long
	codes      map[string]*code
	access     map[string]*grantToken
	refresh    map[string]*grant
	refreshes  int
	exchanges  int
	introspect int
}

type code struct {
	challenge, redirect, user string
	expires                   time.Time
	used                      bool
}

// grant is one user's consent; its refresh token may rotate.
type grant struct {
	user    string
	revoked bool
	current string // the live refresh token
}

type grantToken struct {
	g       *grant
	expires time.Time
}

// New starts a server; it is closed when the test ends. now (nil: the wall
// clock) decides when tokens expire.
func New(t testing.TB, now func() time.Time) *Server {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	s := &Server{ClientID: "client-" + token(6), ClientSecret: "secret-" + token(12), User: "ada@acme.example", Scope: "mail",
		now: now, ttl: time.Hour, codes: map[string]*code{}, access: map[string]*grantToken{}, refresh: map[string]*grant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", s.authorize)
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /introspect", s.introspectHandler)
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		s.Revoke(r.Form.Get("token"))
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func token(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// AuthURL, TokenURL and IntrospectURL are the endpoints.
func (s *Server) AuthURL() string       { return s.srv.URL + "/authorize" }
func (s *Server) TokenURL() string      { return s.srv.URL + "/token" }
func (s *Server) IntrospectURL() string { return s.srv.URL + "/introspect" }

// SetTTL sets the lifetime of access tokens issued from now on.
func (s *Server) SetTTL(d time.Duration) { s.mu.Lock(); s.ttl = d; s.mu.Unlock() }

// SetRotation makes every refresh issue a new refresh token and retire
// the old one (using a retired one is invalid_grant), as Microsoft does.
func (s *Server) SetRotation(on bool) { s.mu.Lock(); s.rotate = on; s.mu.Unlock() }

// SetFailure makes the token endpoint answer status (e.g. 503) to every
// request; 0 restores it.
func (s *Server) SetFailure(status int) { s.mu.Lock(); s.failStatus = status; s.mu.Unlock() }

// SetDelay makes the token endpoint stall d before answering.
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// Refreshes counts refresh_token grants answered with a token.
func (s *Server) Refreshes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.refreshes }

// Exchanges counts authorization codes exchanged.
func (s *Server) Exchanges() int { s.mu.Lock(); defer s.mu.Unlock(); return s.exchanges }

// Introspections counts RFC 7662 requests.
func (s *Server) Introspections() int { s.mu.Lock(); defer s.mu.Unlock(); return s.introspect }

// Grant issues a grant for user outside the browser flow (what an
// operator pastes into PUT /v1/adapters/{id}/oauth/token) and returns its
// refresh token.
func (s *Server) Grant(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &grant{user: user, current: "rt-" + token(24)}
	s.refresh[g.current] = g
	return g.current
}

// Revoke withdraws the grant a refresh or access token belongs to: its
// tokens stop working and refreshing it answers invalid_grant.
func (s *Server) Revoke(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.refresh[tok]; ok {
		g.revoked = true
	}
	if a, ok := s.access[tok]; ok {
		a.g.revoked = true
	}
}

// RevokeUser withdraws every grant of user (the password changed).
func (s *Server) RevokeUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.refresh {
		if g.user == user {
			g.revoked = true
		}
	}
}

// Valid reports whether tok is a live access token this server issued,
// and for whom: what a mail server accepting XOAUTH2 asks.
func (s *Server) Valid(tok string) (user string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, found := s.access[tok]
	if !found || a.g.revoked || !s.now().Before(a.expires) {
		return "", false
	}
	return a.g.user, true
}

// Issued lists every token (access and refresh) the server handed out, for
// tests that search for them where they must not be.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.access {
		out = append(out, t)
	}
	for t := range s.refresh {
		out = append(out, t)
	}
	return out
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" {
		http.Error(w, "unknown client or response type", http.StatusBadRequest)
		return
	}
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43 {
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Host == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	c := "code-" + token(16)
	s.mu.Lock()
	s.codes[c] = &code{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), user: s.User, expires: s.now().Add(10 * time.Minute)}
	s.mu.Unlock()
	back := redirect.Query()
	back.Set("code", c)
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) clientOK(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) == 1
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fail, delay := s.failStatus, s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if fail != 0 {
		http.Error(w, "token endpoint unavailable", fail)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if !s.clientOK(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var g *grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c, ok := s.codes[r.PostForm.Get("code")]
		if !ok || c.used || !s.now().Before(c.expires) || c.redirect != r.PostForm.Get("redirect_uri") {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			oauthError(w, http.StatusBadRequest, "invalid_grant") // PKCE verifier does not match
			return
		}
		c.used = true
		g = &grant{user: c.user, current: "rt-" + token(24)}
		s.refresh[g.current] = g
		s.exchanges++
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		var ok bool
		g, ok = s.refresh[rt]
		if !ok || g.revoked || g.current != rt {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		if s.rotate {
			g.current = "rt-" + token(24)
			s.refresh[g.current] = g
		}
		s.refreshes++
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	at := "at-" + token(24)
	s.access[at] = &grantToken{g: g, expires: s.now().Add(s.ttl)}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(s.ttl / time.Second), "scope": s.Scope}
	if r.PostForm.Get("grant_type") == "authorization_code" || s.rotate {
		resp["refresh_token"] = g.current
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// introspectHandler answers RFC 7662: {"active": false} for anything but a
// live access token; for one, its user (as username, email and sub, the
// attribute names servers look for), scope, client and expiry.
func (s *Server) introspectHandler(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	tok := r.PostForm.Get("token")
	if tok == "" {
		if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
			tok = strings.TrimPrefix(h, "Bearer ")
		}
	}
	s.mu.Lock()
	s.introspect++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	user, ok := s.Valid(tok)
	if !ok {
		_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
		return
	}
	s.mu.Lock()
	exp := s.access[tok].expires.Unix()
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"active": true, "username": user, "email": user, "sub": user,
		"scope": s.Scope, "client_id": s.ClientID, "token_type": "Bearer", "exp": exp})
}
