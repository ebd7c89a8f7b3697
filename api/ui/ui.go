// Package ui is dripdrop's operator dashboard (docs/dashboard.md), served at /ui/ by
// the API server: server-rendered HTML over the same db.Store methods the
// JSON API uses, charts drawn as SVG in Go, templates and assets embedded in
// the binary (no CDN, readable without JavaScript; a small script only
// follows the live event feed). Sign-in exchanges a tenant API key for a
// signed HttpOnly, SameSite=Strict session cookie bound to that key (it ends
// when the key is revoked); every POST carries a CSRF token; every page is
// scoped to the session's tenant.
package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config wires the dashboard.
type Config struct {
	Store *db.Store
	// Key signs session cookies and CSRF tokens (at least 32 bytes; a
	// random key is used when empty, so sessions end with the process).
	Key []byte
	// SecureCookies marks the session cookie Secure even when the request
	// did not arrive over TLS (a TLS-terminating proxy in front).
	SecureCookies bool
	Logger        *slog.Logger
	// Verify checks an adapter's SMTP settings without sending; nil
	// disables the verify action.
	Verify func(ctx context.Context, creds dripdrop.SMTPCredentials, from string) dripdrop.VerifyResult
	// VerifyOAuth2 checks an oauth2 adapter (token stage, then the login
	// with its access token); nil: such adapters cannot be verified here.
	VerifyOAuth2 func(ctx context.Context, tenant string, a dripdrop.Adapter) (dripdrop.VerifyResult, error)
	// OAuthStart begins an OAuth2 connect of an oauth2 adapter (the API's
	// POST /v1/adapters/{id}/oauth/start); nil hides the connect buttons.
	OAuthStart func(ctx context.Context, tenant string, adapterID uuid.UUID) (dripdrop.OAuthStart, error)
	// Stream serves a tenant's telemetry events as Server-Sent Events (the
	// API's GET /v1/telemetry/stream); nil: the live feed is off.
	Stream func(w http.ResponseWriter, r *http.Request, tenant string)
	// AuthFailed records a failed sign-in from the request's client and
	// reports whether that client is over the failed-authentication limit,
	// and for how long (nil: no limit).
	AuthFailed func(r *http.Request) (limited bool, retryAfter time.Duration)
	// Status maps a domain error code to its HTTP status (the API's
	// table, so a page answers an error as the API would); nil: 500.
	Status func(code string) int
}

// Handler serves /ui/.
type Handler struct {
	cfg   Config
	store *db.Store
	key   []byte
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// page is what a handler renders: a template name and its data.
type page struct {
	Title   string
	Nav     string
	Tenant  string
	CSRF    string
	Flash   string
	Error   string
	Now     time.Time
	Data    any
	session session
}

type pageHandler func(w http.ResponseWriter, r *http.Request, p *page) (string, error)

// New builds the dashboard handler.
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg, store: cfg.Store, key: cfg.Key, log: cfg.Logger, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	if len(h.key) < 32 {
		h.key = make([]byte, 32)
		_, _ = randRead(h.key)
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t := template.Must(template.Must(layout.Clone()).ParseFS(templateFS, n))
		h.pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/login", h.loginPage)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.HandleFunc("POST /ui/logout", h.auth(h.logout))
	h.mux.HandleFunc("GET /ui/{$}", h.auth(h.overview))
	h.mux.HandleFunc("GET /ui/feed", h.feed)
	h.mux.HandleFunc("GET /ui/adapters", h.auth(h.adapters))
	h.mux.HandleFunc("GET /ui/adapters/{id}", h.auth(h.adapter))
	h.mux.HandleFunc("POST /ui/adapters/{id}/rest", h.auth(h.rest))
	h.mux.HandleFunc("POST /ui/adapters/{id}/resume", h.auth(h.resume))
	h.mux.HandleFunc("POST /ui/adapters/{id}/verify", h.auth(h.verify))
	h.mux.HandleFunc("POST /ui/adapters/{id}/sync", h.auth(h.syncNow))
	h.mux.HandleFunc("POST /ui/adapters/{id}/connect", h.auth(h.connect))
	h.mux.HandleFunc("GET /ui/pools", h.auth(h.pools))
	h.mux.HandleFunc("GET /ui/pools/{id}", h.auth(h.pool))
	h.mux.HandleFunc("GET /ui/sequences", h.auth(h.sequences))
	h.mux.HandleFunc("GET /ui/sequences/{id}", h.auth(h.sequence))
	h.mux.HandleFunc("GET /ui/enrollments", h.auth(h.enrollments))
	h.mux.HandleFunc("GET /ui/enrollments/{id}", h.auth(h.enrollment))
	h.mux.HandleFunc("/ui/", h.auth(func(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
		return "", dripdrop.NotFound("page")
	}))
	return h
}

// ServeHTTP answers every path under /ui/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// auth runs a page for a signed-in tenant: GETs without a live session
// (none, or one whose API key was revoked) go to the sign-in form, POSTs
// need a valid CSRF token and a same-origin request.
func (h *Handler) auth(fn pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := h.store.Now()
		s, state, err := h.sessionValid(r, now)
		if err != nil {
			h.storeDown(w, r, err)
			return
		}
		if state != liveSession {
			if state == endedSession {
				h.setCookie(w, r, "", -1)
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			h.fail(w, r, &page{}, http.StatusUnauthorized, "Your session has ended; sign in again.")
			return
		}
		p := &page{Tenant: s.Tenant, CSRF: h.csrf(s), Now: now, session: s, Flash: r.URL.Query().Get("flash")}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if !sameOrigin(r) || !h.checkCSRF(r, s) {
				h.fail(w, r, p, http.StatusForbidden, "This form is stale or did not come from this dashboard (CSRF check failed). Reload the page and try again.")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		name, err := fn(w, r, p)
		if err != nil {
			var de *dripdrop.Error
			if errors.As(err, &de) && h.status(de) < 500 {
				h.fail(w, r, p, h.status(de), de.Message)
				return
			}
			if r.Context().Err() == nil {
				h.log.Error("dashboard page failed", "path", r.URL.Path, "err", err)
			}
			h.fail(w, r, p, http.StatusInternalServerError, "Something went wrong; the error is in the server log.")
			return
		}
		if name != "" {
			h.render(w, http.StatusOK, name, p)
		}
	}
}

// status is the HTTP status of a domain error, by the API's table.
func (h *Handler) status(e *dripdrop.Error) int {
	if h.cfg.Status == nil {
		return http.StatusInternalServerError
	}
	return h.cfg.Status(e.Code)
}

// storeDown answers a request whose session could not be checked: no
// tenant data, and the error in the server log.
func (h *Handler) storeDown(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() == nil {
		h.log.Error("dashboard session check failed", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Retry-After", "5")
	h.fail(w, r, &page{}, http.StatusServiceUnavailable, "The database is unavailable; try again shortly.")
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, p *page, status int, msg string) {
	p.Title = http.StatusText(status)
	p.Error = msg
	h.render(w, status, "error", p)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		h.log.Error("dashboard template failed", "page", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	switch _, state, err := h.sessionValid(r, h.store.Now()); {
	case err != nil:
		h.storeDown(w, r, err)
		return
	case state == liveSession:
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	case state == endedSession:
		h.setCookie(w, r, "", -1)
	}
	h.render(w, http.StatusOK, "login", &page{Title: "Sign in"})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	p := &page{Title: "Sign in"}
	if !sameOrigin(r) {
		h.fail(w, r, p, http.StatusForbidden, "The sign-in form did not come from this dashboard.")
		return
	}
	tenant, keyID, err := h.store.AuthenticateKey(r.Context(), r.PostFormValue("api_key"))
	if err != nil {
		status := http.StatusUnauthorized
		var de *dripdrop.Error
		if errors.As(err, &de) {
			status = h.status(de)
		}
		p.Error = "That API key was not accepted."
		if status >= 500 {
			p.Error = "The database is unavailable; try again shortly."
		} else if h.cfg.AuthFailed != nil {
			if limited, wait := h.cfg.AuthFailed(r); limited {
				secs := max(int((wait+time.Second-1)/time.Second), 1)
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				status, p.Error = http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from this address; try again in %d s.", secs)
			}
		}
		h.render(w, status, "login", p)
		return
	}
	_, value := h.newSession(tenant, keyID, h.store.Now())
	h.setCookie(w, r, value, int(sessionTTL/time.Second))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	h.setCookie(w, r, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return "", nil
}
