package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The session is a signed cookie (no server-side table): the tenant, the id
// of the API key it was opened with, an expiry and a random nonce,
// authenticated with HMAC-SHA256 under the dashboard key:
//
//	base64url(tenant) "." key-id "." expiry-unix "." nonce "." base64url(HMAC(session, tenant, key-id, expiry, nonce))
//
// The API key itself is never stored; its secret is checked once at sign-in,
// and on every later request the store is asked whether the key with that id
// is still active (sessionValid), so revoking the key ends its sessions at
// once (docs/dashboard.md). The CSRF token of a session is an HMAC of its
// nonce, so every form carries it and a forged cross-site POST cannot know it.

const (
	cookieName = "dripdrop_session"
	sessionTTL = 12 * time.Hour
)

var b64 = base64.RawURLEncoding

type session struct {
	Tenant  string
	KeyID   uuid.UUID
	Expires time.Time
	Nonce   string
}

func (h *Handler) mac(parts ...string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return b64.EncodeToString(m.Sum(nil))
}

// newSession signs a cookie value for a tenant's key.
func (h *Handler) newSession(tenant string, keyID uuid.UUID, now time.Time) (session, string) {
	n := make([]byte, 16)
	_, _ = rand.Read(n)
	s := session{Tenant: tenant, KeyID: keyID, Expires: now.Add(sessionTTL), Nonce: b64.EncodeToString(n)}
	t := b64.EncodeToString([]byte(tenant))
	k := keyID.String()
	exp := strconv.FormatInt(s.Expires.Unix(), 10)
	return s, t + "." + k + "." + exp + "." + s.Nonce + "." + h.mac("session", t, k, exp, s.Nonce)
}

// readSession verifies the session cookie of a request: its signature and
// expiry (not yet whether its key is still active; see sessionValid).
func (h *Handler) readSession(r *http.Request, now time.Time) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	p := strings.Split(c.Value, ".")
	if len(p) != 5 {
		return session{}, false
	}
	want := h.mac("session", p[0], p[1], p[2], p[3])
	if subtle.ConstantTimeCompare([]byte(want), []byte(p[4])) != 1 {
		return session{}, false
	}
	exp, err := strconv.ParseInt(p[2], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return session{}, false
	}
	t, err := b64.DecodeString(p[0])
	if err != nil || len(t) == 0 {
		return session{}, false
	}
	k, err := uuid.Parse(p[1])
	if err != nil || k == uuid.Nil {
		return session{}, false
	}
	return session{Tenant: string(t), KeyID: k, Expires: time.Unix(exp, 0), Nonce: p[3]}, true
}

// sessionState is what a request's cookie amounts to.
type sessionState int

const (
	noSession    sessionState = iota // no cookie, or a forged, malformed or expired one
	endedSession                     // validly signed, but its key was revoked
	liveSession
)

// sessionValid reads the request's session and checks that the API key it
// was opened with is still active. The check is a primary-key lookup on
// every request, uncached, so a revoked key's sessions end with the next
// request; err is a store failure (the caller shows no tenant data then).
func (h *Handler) sessionValid(r *http.Request, now time.Time) (session, sessionState, error) {
	s, ok := h.readSession(r, now)
	if !ok {
		return session{}, noSession, nil
	}
	active, err := h.store.APIKeyActive(r.Context(), s.Tenant, s.KeyID)
	if err != nil {
		return session{}, noSession, err
	}
	if !active {
		return session{}, endedSession, nil
	}
	return s, liveSession, nil
}

// csrf is the token every form of a session carries.
func (h *Handler) csrf(s session) string { return h.mac("csrf", s.Nonce) }

func (h *Handler) checkCSRF(r *http.Request, s session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.csrf(s))) == 1
}

// sameOrigin refuses browser POSTs whose Origin names another site (a
// second line of defence next to SameSite=Strict and the CSRF token; it
// also covers the sign-in form, which has no session yet).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	o = strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://")
	return strings.EqualFold(o, r.Host)
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: "/ui/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || h.cfg.SecureCookies,
	})
}
