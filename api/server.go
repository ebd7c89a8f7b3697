// Package api is dripdrop's HTTP API (README.md#api-overview, openapi.yaml):
// JSON over /v1, bearer API
// keys that carry the tenant, an admin token for tenant management, and
// application/problem+json errors with stable codes.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api/ui"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/oauth"
	"github.com/dripdrop/dripdrop/telemetry"
)

// Config wires a Server.
type Config struct {
	Store *db.Store
	// AdminToken enables the admin routes (tenants and keys) when set.
	AdminToken string
	// Gatherer serves /metrics (nil: an empty registry).
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// RequestTimeout bounds each request (default 30 s).
	RequestTimeout time.Duration
	// UnsubscribeKey verifies one-click unsubscribe tokens (/u/{token}).
	UnsubscribeKey []byte
	// DashboardKey signs the dashboard's session cookies and CSRF tokens
	// (/ui/, docs/dashboard.md); empty: a random key per process.
	DashboardKey []byte
	// SecureCookies marks dashboard cookies Secure behind a TLS-terminating
	// proxy (they are Secure anyway on TLS requests).
	SecureCookies bool
	// Guard validates adapter SMTP hosts and ports on create and patch
	// (docs/security.md#the-operators-network); the zero value refuses
	// private targets.
	Guard netguard.Guard
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// (for failed-authentication limiting); empty trusts none.
	TrustedProxies []netip.Prefix
	// Clock is the source of "now" (default: the system clock).
	Clock dripdrop.Clock
	// OutboxMetrics counts redeliver requests (nil: not counted).
	OutboxMetrics telemetry.OutboxMetrics
	// Verify checks an adapter's SMTP settings without sending
	// (dispatch.Verify); nil answers 503 on POST /v1/adapters/{id}/verify.
	Verify func(ctx context.Context, creds dripdrop.SMTPCredentials, from string) dripdrop.VerifyResult
	// VerifyOAuth2 checks an oauth2 adapter the same way, logging in as
	// user with the token token returns (a token stage comes first); nil
	// answers 503 for oauth2 adapters.
	VerifyOAuth2 func(ctx context.Context, creds dripdrop.SMTPCredentials, from, user string, token func(context.Context) (string, error)) dripdrop.VerifyResult
	// OAuth runs OAuth2 mailbox connections (the connect flow, refresh
	// tokens from elsewhere, the tokens verify uses); nil answers 503 on
	// their routes.
	OAuth *oauth.Source
	// Registerer, when set, receives the HTTP request metrics
	// (dripdrop_http_requests_total, dripdrop_http_request_duration_seconds).
	Registerer prometheus.Registerer
	// SNS fetches SNS signing certificates and confirms subscriptions for
	// the SES event webhook (default: NewSNSClient(Guard)).
	SNS SNSClient
}

// Server routes and serves the API.
type Server struct {
	cfg     Config
	store   *db.Store
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []Route
	timeout time.Duration
	authLim *authLimiter
	metrics *httpMetrics
	sns     SNSClient
}

// auth says who may call a route.
type auth int

const (
	authNone   auth = iota // operations endpoints
	authTenant             // Authorization: Bearer <api key>
	authAdmin              // Authorization: Bearer <admin token>
	authSigned             // the provider's signature, checked by the handler
)

// Route is one documented endpoint; the OpenAPI test compares this table
// with the OpenAPI document.
type Route struct {
	Method string
	Path   string
	auth   auth
	h      handlerFunc
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type ctxKey int

const tenantCtxKey ctxKey = 0

// tenantOf returns the authenticated tenant of a request.
func tenantOf(r *http.Request) string { return r.Context().Value(tenantCtxKey).(string) }

// New builds the server and its routes.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, mux: http.NewServeMux(), timeout: cfg.RequestTimeout}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.timeout <= 0 {
		s.timeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = dripdrop.SystemClock{}
	}
	s.authLim = newAuthLimiter(cfg.Clock)
	s.sns = cfg.SNS
	if s.sns == nil {
		s.sns = NewSNSClient(cfg.Guard)
	}
	gatherer := cfg.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{})
	s.routes = []Route{
		{"GET", "/healthz", authNone, s.healthz},
		{"GET", "/readyz", authNone, s.readyz},
		{"GET", "/metrics", authNone, func(w http.ResponseWriter, r *http.Request) error { metrics.ServeHTTP(w, r); return nil }},
		{"GET", "/openapi.yaml", authNone, serveOpenAPI},
		{"GET", "/errors/{code}", authNone, errorPage},
		{"GET", "/u/{token}", authNone, s.unsubscribePage},
		{"POST", "/u/{token}", authNone, s.unsubscribe},
		{"GET", "/oauth/callback", authNone, s.oauthCallback},

		{"POST", "/v1/tenants", authAdmin, s.createTenant},
		{"GET", "/v1/tenants/{tenant_key}/keys", authAdmin, s.listKeys},
		{"POST", "/v1/tenants/{tenant_key}/keys", authAdmin, s.createKey},
		{"DELETE", "/v1/tenants/{tenant_key}/keys/{id}", authAdmin, s.revokeKey},

		{"POST", "/v1/adapters", authTenant, create(s.createAdapter)},
		{"GET", "/v1/adapters", authTenant, listPage(s.store.ListAdapters)},
		{"GET", "/v1/adapters/{id}", authTenant, byID(s.store.GetAdapter)},
		{"PATCH", "/v1/adapters/{id}", authTenant, updateByID(s.updateAdapter)},
		{"DELETE", "/v1/adapters/{id}", authTenant, deleteByID(s.store.DeleteAdapter)},
		{"GET", "/v1/adapters/{id}/capacity", authTenant, byID(s.store.AdapterCapacity)},
		{"GET", "/v1/adapters/{id}/health", authTenant, byID(s.store.Health)},
		{"POST", "/v1/adapters/{id}/health", authTenant, updateByID(s.store.HealthSignal)},
		{"POST", "/v1/adapters/{id}/verify", authTenant, s.verifyAdapter},
		{"GET", "/v1/adapters/{id}/sync", authTenant, byID(s.mailboxSync)},
		{"POST", "/v1/adapters/{id}/sync", authTenant, s.requestSync},
		{"POST", "/v1/adapters/{id}/oauth/start", authTenant, s.oauthStart},
		{"PUT", "/v1/adapters/{id}/oauth/token", authTenant, s.oauthToken},

		{"POST", "/v1/oauth/apps", authTenant, create(s.store.CreateOAuthApp)},
		{"GET", "/v1/oauth/apps", authTenant, listPage(s.store.ListOAuthApps)},
		{"GET", "/v1/oauth/apps/{id}", authTenant, byID(s.store.GetOAuthApp)},
		{"DELETE", "/v1/oauth/apps/{id}", authTenant, deleteByID(s.store.DeleteOAuthApp)},

		{"POST", "/v1/pools", authTenant, create(s.store.CreatePool)},
		{"GET", "/v1/pools", authTenant, listPage(s.store.ListPools)},
		{"GET", "/v1/pools/{id}", authTenant, byID(s.store.GetPool)},
		{"PATCH", "/v1/pools/{id}", authTenant, updateByID(s.store.UpdatePool)},
		{"DELETE", "/v1/pools/{id}", authTenant, deleteByID(s.store.DeletePool)},
		{"POST", "/v1/pools/{id}/members", authTenant, s.addMember},
		{"PATCH", "/v1/pools/{id}/members/{adapter_id}", authTenant, s.updateMember},
		{"DELETE", "/v1/pools/{id}/members/{adapter_id}", authTenant, s.removeMember},

		{"POST", "/v1/sequences", authTenant, create(s.store.CreateSequence)},
		{"GET", "/v1/sequences", authTenant, listPage(s.store.ListSequences)},
		{"GET", "/v1/sequences/{id}", authTenant, byID(s.store.GetSequence)},
		{"GET", "/v1/sequences/{id}/stats", authTenant, byID(s.store.SequenceStats)},
		{"POST", "/v1/sequences/{id}/versions", authTenant, s.createVersion},
		{"PATCH", "/v1/sequences/{id}/versions/{n}", authTenant, s.updateVersion},
		{"POST", "/v1/sequences/{id}/versions/{n}/activate", authTenant, s.activateVersion},
		{"PUT", "/v1/sequences/{id}/versions/{n}/budgets/{adapter_id}", authTenant, s.putBudget},

		{"POST", "/v1/enrollments", authTenant, s.enroll},
		{"POST", "/v1/enrollments/batch", authTenant, s.enrollBatch},
		{"GET", "/v1/enrollments", authTenant, s.searchEnrollments},
		{"GET", "/v1/enrollments/{id}", authTenant, byID(s.store.GetEnrollment)},
		{"PATCH", "/v1/enrollments/{id}", authTenant, updateByID(s.store.UpdateEnrollment)},
		{"POST", "/v1/enrollments/{id}/pause", authTenant, byID(s.store.PauseEnrollment)},
		{"POST", "/v1/enrollments/{id}/resume", authTenant, byID(s.store.ResumeEnrollment)},
		{"POST", "/v1/enrollments/{id}/cancel", authTenant, byID(s.store.CancelEnrollment)},
		{"POST", "/v1/enrollments/{id}/retry", authTenant, byID(s.store.RetryEnrollment)},
		{"POST", "/v1/enrollments/{id}/repin", authTenant, updateByID(s.store.RepinEnrollment)},
		{"GET", "/v1/enrollments/{id}/explain", authTenant, byID(s.store.Explain)},

		{"POST", "/v1/inbound", authTenant, s.inbound},
		{"POST", "/v1/inbound/raw", authTenant, s.inboundRaw},
		{"GET", "/v1/inbound/{id}", authTenant, byID(s.store.GetInbound)},
		{"PATCH", "/v1/inbound/{id}", authTenant, updateByID(s.store.CorrectCategory)},
		{"PUT", "/v1/inbound/providers/{provider}", authTenant, s.putInboundProvider},
		{"POST", "/v1/inbound/events/{provider}", authSigned, s.providerEvents},

		{"POST", "/v1/spintax/preview", authTenant, s.spintaxPreview},
		{"POST", "/v1/forecast", authTenant, s.forecastRun},

		{"GET", "/v1/telemetry/catalog", authTenant, telemetryCatalog},
		{"GET", "/v1/telemetry/events", authTenant, s.listEvents},
		{"GET", "/v1/telemetry/stream", authTenant, s.stream},
		{"POST", "/v1/telemetry/subscriptions", authTenant, create(s.store.CreateSubscription)},
		{"GET", "/v1/telemetry/subscriptions", authTenant, listPage(s.store.ListSubscriptions)},
		{"GET", "/v1/telemetry/subscriptions/{id}", authTenant, byID(s.store.GetSubscription)},
		{"PATCH", "/v1/telemetry/subscriptions/{id}", authTenant, updateByID(s.store.UpdateSubscription)},
		{"DELETE", "/v1/telemetry/subscriptions/{id}", authTenant, deleteByID(s.store.DeleteSubscription)},
		{"POST", "/v1/telemetry/subscriptions/{id}/redeliver", authTenant, s.redeliver},

		{"GET", "/v1/domains", authTenant, s.listDomains},
		{"GET", "/v1/domains/{domain}", authTenant, s.getDomain},
		{"POST", "/v1/domains/{domain}/check", authTenant, s.checkDomain},
		{"GET", "/v1/settings", authTenant, s.getSettings},
		{"PATCH", "/v1/settings", authTenant, s.updateSettings},

		{"POST", "/v1/suppressions", authTenant, create(s.store.AddSuppression)},
		{"GET", "/v1/suppressions", authTenant, s.listSuppressions},
		{"DELETE", "/v1/suppressions", authTenant, s.deleteSuppression},
	}
	if cfg.Registerer != nil {
		m, err := newHTTPMetrics(cfg.Registerer, s.routes)
		if err != nil {
			s.log.Error("HTTP metrics not registered", "err", err)
		}
		s.metrics = m
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	var oauthStart func(context.Context, string, uuid.UUID) (dripdrop.OAuthStart, error)
	if cfg.OAuth != nil {
		oauthStart = cfg.OAuth.Start
	}
	dash := ui.New(ui.Config{Store: s.store, OAuthStart: oauthStart, VerifyOAuth2: s.checkOAuth2, Key: cfg.DashboardKey, SecureCookies: cfg.SecureCookies, Logger: s.log, Verify: cfg.Verify,
		Status: problemStatus,
		// A failed dashboard sign-in counts against the same per-address
		// limit as a failed API authentication.
		AuthFailed: func(r *http.Request) (bool, time.Duration) {
			return s.authLim.fail(clientAddr(r, s.cfg.TrustedProxies))
		},
		// The live feed is GET /v1/telemetry/stream for the session's tenant.
		Stream: func(w http.ResponseWriter, r *http.Request, tenant string) {
			r = r.WithContext(context.WithValue(r.Context(), tenantCtxKey, tenant))
			if err := s.stream(w, r); err != nil {
				writeProblem(w, r, s.log, err)
			}
		},
	})
	s.mux.Handle("/ui/", dash)
	s.mux.Handle("/ui", dash)
	return s
}

// Routes lists every route the server answers.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// ServeHTTP answers unknown paths and methods with problem documents too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		if s.metrics != nil {
			sw := &statusWriter{ResponseWriter: w}
			defer func(start time.Time) { s.metrics.observe(r.Method, unmatchedRoute, sw.status(), start) }(time.Now())
			w = sw
		}
		rec := &statusRecorder{header: http.Header{}}
		s.mux.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeProblem(w, r, s.log, dripdrop.Errorf(dripdrop.ECodeMethodNotAllowed, "", "%s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
		writeProblem(w, r, s.log, dripdrop.Errorf(dripdrop.ECodeNotFound, "", "no route for %s %s", r.Method, r.URL.Path))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// statusRecorder captures what the mux would answer for unmatched requests.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.metrics != nil {
			sw := &statusWriter{ResponseWriter: w}
			defer func(start time.Time) { s.metrics.observe(rt.Method, rt.Path, sw.status(), start) }(time.Now())
			w = sw
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				writeProblem(w, r, s.log, dripdrop.Errorf(dripdrop.ECodeInternal, "", "internal error"))
			}
		}()
		if rt.Path != streamPath { // the event stream lives as long as its client
			ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		var err error
		switch rt.auth {
		case authTenant:
			err = s.authenticate(w, r, rt.h)
		case authAdmin:
			if err = s.authorizeAdmin(r); err == nil {
				err = rt.h(w, r)
			}
		default:
			err = rt.h(w, r)
		}
		if err != nil && rt.auth != authNone && dripdrop.ErrorCode(err) == dripdrop.ECodeUnauthorized {
			if over, wait := s.authLim.fail(clientAddr(r, s.cfg.TrustedProxies)); over {
				secs := int((wait + time.Second - 1) / time.Second)
				w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
				err = dripdrop.Errorf(dripdrop.ECodeTooManyAuthFailures, "", "too many failed authentications from this address; retry in %d s", max(secs, 1))
			}
		}
		if err != nil {
			writeProblem(w, r, s.log, err)
		}
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, h handlerFunc) error {
	tenant, err := s.store.Authenticate(r.Context(), bearer(r))
	if err != nil {
		return err
	}
	r = r.WithContext(context.WithValue(r.Context(), tenantCtxKey, tenant))
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			return s.idempotent(w, r, tenant, key, h)
		}
	}
	return h(w, r)
}

func (s *Server) authorizeAdmin(r *http.Request) error {
	if s.cfg.AdminToken == "" {
		return dripdrop.Errorf(dripdrop.ECodeForbidden, "", "the admin API is disabled (DRIPDROP_ADMIN_TOKEN is not set)")
	}
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	got := sha256.Sum256([]byte(bearer(r)))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return dripdrop.Errorf(dripdrop.ECodeUnauthorized, "", "missing or invalid admin token")
	}
	return nil
}

// idempotent runs h at most once per (tenant, Idempotency-Key): a repeat of
// the same request replays the stored response with Idempotent-Replayed.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, tenant, key string, h handlerFunc) error {
	if len(key) > 255 || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "Idempotency-Key", "Idempotency-Key must be 1-255 printable ASCII characters")
	}
	limit := int64(maxBody)
	if strings.HasSuffix(r.URL.Path, "/batch") {
		limit = maxBatchBody
	}
	if strings.HasSuffix(r.URL.Path, "/inbound/raw") {
		limit = ingest.MaxRawSize
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	sum := sha256.New()
	fmt.Fprintf(sum, "%s\n%s\n%s\n", r.Method, r.URL.Path, r.URL.RawQuery)
	sum.Write(body)
	stored, err := s.store.ClaimIdempotencyKey(r.Context(), tenant, key, r.Method, r.URL.Path, sum.Sum(nil))
	if err != nil {
		return err
	}
	if stored != nil {
		w.Header().Set("Content-Type", stored.ContentType)
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(stored.Status)
		_, err := w.Write(stored.Body)
		return err
	}
	rec := &captureWriter{ResponseWriter: w}
	herr := h(rec, r)
	if herr != nil {
		writeProblem(rec, r, s.log, herr)
	}
	ctx := context.WithoutCancel(r.Context())
	if rec.status >= 500 || rec.status == 0 {
		return s.store.ReleaseIdempotencyKey(ctx, tenant, key)
	}
	if err := s.store.CompleteIdempotencyKey(ctx, tenant, key, db.IdempotentResponse{Status: rec.status, ContentType: rec.Header().Get("Content-Type"), Body: rec.body}); err != nil {
		s.log.Error("storing idempotent response", "err", err)
	}
	return nil
}

type captureWriter struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (c *captureWriter) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body = append(c.body, b...)
	return c.ResponseWriter.Write(b)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return dripdrop.Errorf(dripdrop.ECodeDatabaseUnavailable, "", "the database is unavailable; retry shortly")
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// pathID parses a uuid path parameter; a malformed id is simply not found.
func pathID(r *http.Request, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return uuid.Nil, dripdrop.NotFound(strings.TrimSuffix(name, "_id"))
	}
	return id, nil
}

func pathInt(r *http.Request, name string) (int, error) {
	n, err := strconv.Atoi(r.PathValue(name))
	if err != nil || n < 1 {
		return 0, dripdrop.NotFound("version")
	}
	return n, nil
}

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (db.Page, error) {
	var p db.Page
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return p, dripdrop.Errorf(dripdrop.ECodeOutOfRange, "limit", "limit must be between 1 and 200")
		}
		p.Limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) != 16 {
			return p, dripdrop.Errorf(dripdrop.ECodeInvalidCursor, "cursor", "cursor is not one this API returned")
		}
		copy(p.After[:], b)
	}
	return p, nil
}

// list is the envelope of every listing.
type list[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next *uuid.UUID) list[T] {
	l := list[T]{Data: items}
	if l.Data == nil {
		l.Data = []T{}
	}
	if next != nil {
		c := base64.RawURLEncoding.EncodeToString(next[:])
		l.NextCursor = &c
	}
	return l
}

func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, dripdrop.Errorf(dripdrop.ECodeInvalidValue, name, "%s must be true or false", name)
	}
	return b, nil
}

// catalogEntry is one event of GET /v1/telemetry/catalog.
type catalogEntry struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Measurements []string `json:"measurements"`
	Metadata     []string `json:"metadata"`
	Labels       []string `json:"prometheus_labels"`
	Extension    bool     `json:"extension"`
	Feed         bool     `json:"feed"` // written to the outbox: feed, stream and webhooks
	Description  string   `json:"description"`
}

func telemetryCatalog(w http.ResponseWriter, r *http.Request) error {
	var out []catalogEntry
	for _, s := range telemetry.Catalog() {
		if s.Labels == nil {
			s.Labels = []string{}
		}
		out = append(out, catalogEntry{s.Name, string(s.Kind), s.Measurements, s.Metadata, s.Labels, s.Extension, !s.InProcess, s.Description})
	}
	return writeJSON(w, http.StatusOK, newList(out, nil))
}

// unsubscribeHeaders lock the /u/ pages down (docs/security.md#recipients):
// no scripts, styles
// or frames, no caching of a page whose URL is a credential, and no Referer
// carrying the token anywhere.
func unsubscribeHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
}

// unsubscribe is the RFC 8058 one-click endpoint: an opaque token, no login.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) error {
	unsubscribeHeaders(w)
	tenant, id, err := dripdrop.ParseUnsubscribeToken(s.cfg.UnsubscribeKey, r.PathValue("token"))
	if err != nil || len(s.cfg.UnsubscribeKey) == 0 {
		return dripdrop.NotFound("unsubscribe link")
	}
	if err := s.store.Unsubscribe(r.Context(), tenant, id, "one-click"); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "unsubscribed"})
}

// unsubscribePage lets a person confirm in a browser (mail clients that do
// not support one-click open the link).
func (s *Server) unsubscribePage(w http.ResponseWriter, r *http.Request) error {
	unsubscribeHeaders(w)
	if _, _, err := dripdrop.ParseUnsubscribeToken(s.cfg.UnsubscribeKey, r.PathValue("token")); err != nil || len(s.cfg.UnsubscribeKey) == 0 {
		return dripdrop.NotFound("unsubscribe link")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><title>Unsubscribe</title>
<form method="post"><p>Stop receiving these e-mails?</p><button type="submit">Unsubscribe</button></form>`)
	return err
}
