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
)

// The session is a signed cookie (no server-side table): the tenant, an
// expiry and a random nonce, authenticated with HMAC-SHA256 under the
// dashboard key. The API key itself is never stored; it is checked once at
// sign-in. The CSRF token of a session is an HMAC of its nonce, so every
// form carries it and a forged cross-site POST cannot know it.

const (
	cookieName = "dripdrop_session"
	sessionTTL = 12 * time.Hour
)

var b64 = base64.RawURLEncoding

type session struct {
	Tenant  string
	Expires time.Time
	Nonce   string
}

func (h *Handler) mac(parts ...string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return b64.EncodeToString(m.Sum(nil))
}

// newSession signs a cookie value for a tenant.
func (h *Handler) newSession(tenant string, now time.Time) (session, string) {
	n := make([]byte, 16)
	_, _ = rand.Read(n)
	s := session{Tenant: tenant, Expires: now.Add(sessionTTL), Nonce: b64.EncodeToString(n)}
	t := b64.EncodeToString([]byte(tenant))
	exp := strconv.FormatInt(s.Expires.Unix(), 10)
	return s, t + "." + exp + "." + s.Nonce + "." + h.mac("session", t, exp, s.Nonce)
}

// readSession verifies the session cookie of a request.
func (h *Handler) readSession(r *http.Request, now time.Time) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	p := strings.Split(c.Value, ".")
	if len(p) != 4 {
		return session{}, false
	}
	want := h.mac("session", p[0], p[1], p[2])
	if subtle.ConstantTimeCompare([]byte(want), []byte(p[3])) != 1 {
		return session{}, false
	}
	exp, err := strconv.ParseInt(p[1], 10, 64)
	if err != nil || !now.Before(time.Unix(exp, 0)) {
		return session{}, false
	}
	t, err := b64.DecodeString(p[0])
	if err != nil || len(t) == 0 {
		return session{}, false
	}
	return session{Tenant: string(t), Expires: time.Unix(exp, 0), Nonce: p[2]}, true
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
