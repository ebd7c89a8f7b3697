package oauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/internal/oauthtest"
	"github.com/dripdrop/dripdrop/internal/syncbuf"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailauth"
	"github.com/dripdrop/dripdrop/oauth"
)

// rig is a tenant whose smtp adapter authenticates by OAuth2 against an
// authorization server in the test process, sending to a go-smtp sink that
// accepts XOAUTH2 only for tokens that server issued; the HTTP API (with
// the public callback) and a dispatcher run on the same store.
type rig struct {
	*testkit.World
	t       *testing.T
	as      *oauthtest.Server
	src     *oauth.Source
	api     *httptest.Server
	disp    *dispatch.Dispatcher
	app     dripdrop.OAuthApp
	adapter uuid.UUID
	logs    *syncbuf.Buffer

	mu     sync.Mutex
	bodies [][]byte // every API and callback response body
}

var errRefused = smtpsink.AuthFailed

func newRig(t *testing.T, onPinUnavailable string, opts ...testkit.Option) *rig {
	t.Helper()
	logs := &syncbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	smtp := "smtp"
	k := testkit.NewWorld(t, append([]testkit.Option{testkit.WithAdapter(dripdrop.AdapterInput{Provider: &smtp}),
		testkit.WithStoreOptions(func(o *db.Options) { o.AllowPrivateTargets = true; o.Logger = logger })}, opts...)...)
	r := &rig{World: k, t: t, logs: logs, adapter: k.Adapter.ID}
	r.as = oauthtest.New(t, k.Clock.Now)
	r.as.User = k.Adapter.FromAddress
	k.Sink.SetOAuth(func(user, token string) error {
		if u, ok := r.as.Valid(token); ok && u == user {
			return nil
		}
		return smtpsink.AuthFailed
	})
	ctx := context.Background()
	custom, id, secret, name := "custom", r.as.ClientID, r.as.ClientSecret, "test provider"
	auth, tokenURL := r.as.AuthURL(), r.as.TokenURL()
	var err error
	r.app, err = k.Store.CreateOAuthApp(ctx, k.Tenant, dripdrop.OAuthAppInput{Name: &name, Provider: &custom, ClientID: &id, ClientSecret: &secret,
		AuthURL: &auth, TokenURL: &tokenURL, Scopes: []string{"mail"}})
	if err != nil {
		t.Fatal(err)
	}
	oauth2 := dripdrop.AuthOAuth2
	if _, err := k.Store.UpdateAdapter(ctx, k.Tenant, r.adapter, dripdrop.AdapterInput{Auth: &oauth2, OAuthAppID: &r.app.ID}); err != nil {
		t.Fatal(err)
	}
	if onPinUnavailable != "" {
		if _, err := k.Store.UpdatePool(ctx, k.Tenant, k.Pool.ID, dripdrop.PoolInput{OnPinUnavailable: &onPinUnavailable}); err != nil {
			t.Fatal(err)
		}
	}
	var handler http.Handler
	r.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { handler.ServeHTTP(w, req) }))
	t.Cleanup(r.api.Close)
	r.src = r.source(k.Store, logger)
	handler = api.New(api.Config{Store: k.Store, OAuth: r.src, Logger: logger, Clock: k.Clock,
		VerifyOAuth2: func(ctx context.Context, c dripdrop.SMTPCredentials, from, user string, token func(context.Context) (string, error)) dripdrop.VerifyResult {
			return dispatch.Verify(ctx, c, from, nil, nil, dispatch.WithOAuth2(user, token))
		}})
	r.disp = r.dispatcher(k.Store, r.src, logger)
	return r
}

func (r *rig) source(store *db.Store, logger *slog.Logger) *oauth.Source {
	return oauth.NewSource(store, oauth.Config{Box: r.Box, Guard: netguard.Guard{AllowPrivate: true}, PublicBaseURL: r.api.URL, Logger: logger, Timeout: 2 * time.Second,
		Prove: func(ctx context.Context, c db.OAuthClient, token string) dripdrop.VerifyResult {
			return dispatch.Verify(ctx, c.Credentials, c.FromAddress, nil, nil, dispatch.WithOAuth2(c.Username, func(context.Context) (string, error) { return token, nil }))
		}})
}

func (r *rig) dispatcher(store *db.Store, src mailauth.TokenSource, logger *slog.Logger) *dispatch.Dispatcher {
	tr := dispatch.NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	tr.Tokens = src
	r.t.Cleanup(func() { _ = tr.Close() })
	d, err := dispatch.New(dispatch.Config{Store: store, Transport: tr, Telemetry: r.Bus, Logger: logger, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *rig) keep(b []byte) {
	r.mu.Lock()
	r.bodies = append(r.bodies, append([]byte(nil), b...))
	r.mu.Unlock()
}

// call sends an API request with the tenant's key and returns the status
// and body.
func (r *rig) call(method, path string, body any) (int, []byte) {
	r.t.Helper()
	var rdr io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rdr = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.api.URL+path, rdr)
	req.Header.Set("Authorization", "Bearer "+r.APIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r.keep(b)
	return res.StatusCode, b
}

func (r *rig) must(want int, method, path string, body any) map[string]any {
	r.t.Helper()
	st, b := r.call(method, path, body)
	if st != want {
		r.t.Fatalf("%s %s: %d, want %d: %s", method, path, st, want, b)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			r.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return m
}

// start asks for the authorize URL.
func (r *rig) start() string {
	r.t.Helper()
	m := r.must(200, "POST", "/v1/adapters/"+r.adapter.String()+"/oauth/start", nil)
	u := m["authorize_url"].(string)
	if !strings.HasPrefix(u, r.as.AuthURL()+"?") {
		r.t.Fatalf("authorize_url %s is not the app's", u)
	}
	return u
}

// browse plays the browser: it follows the authorize URL's redirect to the
// callback and returns the callback page's status and body, and the
// callback URL it was sent to.
func (r *rig) browse(authorize string) (int, string, string) {
	r.t.Helper()
	var callback string
	c := &http.Client{CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		callback = req.URL.String()
		return nil
	}}
	res, err := c.Get(authorize)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r.keep(b)
	return res.StatusCode, string(b), callback
}

func (r *rig) get(u string) (int, string) {
	r.t.Helper()
	res, err := http.Get(u)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r.keep(b)
	return res.StatusCode, string(b)
}

// connect runs the whole connect flow and returns the callback URL used.
func (r *rig) connect() string {
	r.t.Helper()
	st, page, cb := r.browse(r.start())
	if st != 200 || !strings.Contains(page, "Mailbox connected") {
		r.t.Fatalf("callback: %d\n%s", st, page)
	}
	if !strings.Contains(page, `href="/ui/adapters/`+r.adapter.String()+`"`) {
		r.t.Fatalf("the result page does not link back to the adapter's dashboard page:\n%s", page)
	}
	return cb
}

func (r *rig) settle(d *dispatch.Dispatcher) { testkit.Settle(r.t, d.Tick, d.Drain) }

func (r *rig) adapterState() (dripdrop.Adapter, map[string]any) {
	r.t.Helper()
	a, err := r.Store.GetAdapter(context.Background(), r.Tenant, r.adapter)
	if err != nil {
		r.t.Fatal(err)
	}
	return a, r.must(200, "GET", "/v1/adapters/"+r.adapter.String(), nil)
}

func TestConnectThroughTheCallbackThenSendWithXOAUTH2(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	a, m := r.adapterState()
	if a.Auth != dripdrop.AuthOAuth2 || a.OAuth == nil || a.OAuth.State != dripdrop.TokenNotConnected || m["auth"] != "oauth2" {
		t.Fatalf("before connecting: %+v %v", a.OAuth, m["auth"])
	}
	// Not connected: a send is the sender's failure (token), never the recipient's.
	e := r.Enroll("bob@example.com", nil)
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 0 {
		t.Fatalf("%d messages sent without a connection", n)
	}
	if evs := r.Events.Named("dripdrop.dispatch.adapter_error"); len(evs) == 0 || evs[0]["reason"] != dispatch.ReasonToken {
		t.Fatalf("adapter_error events %v, want reason token", evs)
	}
	if got := r.Enrollment(e.ID); got.State != dripdrop.EnrollmentActive {
		t.Fatalf("enrollment %s after a token failure, want active", got.State)
	}

	r.connect()
	if r.as.Exchanges() != 1 {
		t.Fatalf("%d code exchanges, want 1", r.as.Exchanges())
	}
	a, m = r.adapterState()
	if a.OAuth.State != dripdrop.TokenConnected || a.OAuth.AccessExpiresAt == nil || m["oauth"].(map[string]any)["state"] != "connected" {
		t.Fatalf("after connecting: %+v", a.OAuth)
	}
	// Verify: a token stage before auth, XOAUTH2 accepted.
	v := r.must(200, "POST", "/v1/adapters/"+r.adapter.String()+"/verify", nil)
	var stages []string
	for _, s := range v["stages"].([]any) {
		stages = append(stages, s.(map[string]any)["stage"].(string))
	}
	if v["ok"] != true || strings.Join(stages, ",") != "token,connect,greeting,ehlo,auth,quit" {
		t.Fatalf("verify: ok=%v stages %v", v["ok"], stages)
	}
	// The adapter's backoff from the failures before the connect ends; then
	// everything goes out, logged in with the issued token.
	r.Clock.Add(2 * time.Hour)
	r.connect() // the first token expired meanwhile: connect again for a fresh one (also proves a reconnect of a live grant)
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 3 {
		t.Fatalf("%d messages, want the 3 steps", n)
	}
	if r.as.Refreshes() != 0 {
		t.Fatalf("%d refreshes with a fresh token", r.as.Refreshes())
	}
	if got := r.Enrollment(e.ID); got.State != dripdrop.EnrollmentCompleted {
		t.Fatalf("enrollment %s, want completed", got.State)
	}
	r.assertNoTokenLeaks()
}

func TestAnExpiredTokenIsRefreshedOnceAcrossTwoEngines(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	r.as.SetRotation(true) // Microsoft rotates refresh tokens
	r.connect()
	// A second replica: its own store (connection pool), token source and
	// dispatcher on the same database.
	store2, err := db.Open(context.Background(), r.URL, db.Options{Vault: r.Box, Clock: r.Clock, Telemetry: r.Bus, AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store2.Close)
	logger := slog.New(slog.NewTextHandler(r.logs, nil))
	src2 := r.source(store2, logger)
	disp2 := r.dispatcher(store2, src2, logger)

	// Both engines send once with the connect's token: no refresh.
	r.Enroll("one@example.com", nil)
	r.settle(r.disp)
	r.settle(disp2)
	if r.as.Refreshes() != 0 {
		t.Fatalf("%d refreshes while the token was fresh", r.as.Refreshes())
	}
	// 56 minutes on, the 1-hour token is within 5 minutes of its expiry.
	r.Clock.Add(56 * time.Minute)
	var wg sync.WaitGroup
	tokens := make([]string, 10)
	errs := make([]error, 10)
	for i := range tokens {
		src := r.src
		if i%2 == 1 {
			src = src2
		}
		wg.Go(func() { tokens[i], errs[i] = src.AccessToken(context.Background(), r.Tenant, r.adapter) })
	}
	wg.Wait()
	for i := range tokens {
		if errs[i] != nil || tokens[i] != tokens[0] {
			t.Fatalf("caller %d: %q %v (first got %q)", i, tokens[i], errs[i], tokens[0])
		}
	}
	if r.as.Refreshes() != 1 {
		t.Fatalf("%d refreshes by two engines, want exactly 1", r.as.Refreshes())
	}
	if u, ok := r.as.Valid(tokens[0]); !ok || u != r.Adapter.FromAddress {
		t.Fatal("the shared token is not a live one")
	}
	r.Enroll("two@example.com", nil)
	r.Enroll("three@example.com", nil)
	var sends sync.WaitGroup
	sends.Go(func() { r.settle(r.disp) })
	sends.Go(func() { r.settle(disp2) })
	sends.Wait()
	if r.as.Refreshes() != 1 {
		t.Fatalf("%d refreshes after sending, want 1", r.as.Refreshes())
	}
	// The rotated refresh token was stored: the next refresh (another hour
	// on) uses it — the retired one would be invalid_grant.
	r.Clock.Add(time.Hour)
	if _, err := src2.AccessToken(context.Background(), r.Tenant, r.adapter); err != nil {
		t.Fatalf("second refresh with the rotated token: %v", err)
	}
	if r.as.Refreshes() != 2 {
		t.Fatalf("%d refreshes, want 2", r.as.Refreshes())
	}
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 9 {
		t.Fatalf("%d messages, want 9 (3 contacts × 3 steps)", n)
	}
	r.assertNoTokenLeaks()
}

func TestTheTokenEndpointDownIsTheSendersFailure(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	r.connect()
	r.Clock.Add(56 * time.Minute)
	r.as.SetFailure(http.StatusServiceUnavailable)
	e := r.Enroll("bob@example.com", nil)
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 0 {
		t.Fatalf("%d sent", n)
	}
	evs := r.Events.Named("dripdrop.dispatch.adapter_error")
	if len(evs) != 1 || evs[0]["reason"] != dispatch.ReasonToken || evs[0]["consecutive"] != 1 {
		t.Fatalf("adapter_error %v, want one with reason token", evs)
	}
	if len(r.Events.Named("dripdrop.dispatch.failed")) != 0 || len(r.Events.Named("dripdrop.dispatch.retry")) != 0 {
		t.Fatal("a token endpoint failure counted against the recipient")
	}
	a, _ := r.adapterState()
	if a.HealthState != dripdrop.HealthActive || a.NextSendAt == nil || !a.NextSendAt.After(r.Clock.Now()) || a.OAuth.LastError != "token_endpoint_http_503" {
		t.Fatalf("adapter %s next_send_at %v last_error %q", a.HealthState, a.NextSendAt, a.OAuth.LastError)
	}
	// A slow endpoint times out the same way.
	r.as.SetFailure(0)
	r.as.SetDelay(3 * time.Second)
	r.Clock.Add(2 * time.Minute)
	r.settle(r.disp)
	if evs := r.Events.Named("dripdrop.dispatch.adapter_error"); len(evs) != 2 || evs[1]["consecutive"] != 2 {
		t.Fatalf("adapter_error after a slow endpoint: %v", evs)
	}
	// Back up: the send goes out, the attempt unused.
	r.as.SetDelay(0)
	r.Clock.Add(5 * time.Minute)
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 3 {
		t.Fatalf("%d sent after the endpoint recovered, want 3", n)
	}
	if got := r.Enrollment(e.ID); got.State != dripdrop.EnrollmentCompleted {
		t.Fatalf("enrollment %s", got.State)
	}
}

func TestARevokedGrantNeedsAReconnect(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{dripdrop.PinPause, dripdrop.PinReassign} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, policy)
			var other dripdrop.Adapter
			if policy == dripdrop.PinReassign {
				// A password adapter in the same pool takes over.
				name, from, sink := "Bea", "bea@acme.example.com", "sink"
				var err error
				other, err = r.Store.CreateAdapter(context.Background(), r.Tenant, dripdrop.AdapterInput{Name: &name, Provider: &sink, FromAddress: &from,
					Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: r.Sink.Port(), TLS: "none"}})
				if err != nil {
					t.Fatal(err)
				}
				w := 1
				if _, err := r.Store.AddPoolMember(context.Background(), r.Tenant, r.Pool.ID, dripdrop.MemberInput{AdapterID: &other.ID, Weight: &w}); err != nil {
					t.Fatal(err)
				}
			}
			r.connect()
			key, first := "welcome", "Bob"
			email := "bob@example.com"
			var e dripdrop.Enrollment
			for i := 0; ; i++ { // pinned to the oauth2 adapter
				em := strings.Replace(email, "bob", "bob"+string(rune('a'+i)), 1)
				var err error
				e, _, err = r.Store.Enroll(context.Background(), r.Tenant, dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &em, FirstName: &first}})
				if err != nil {
					t.Fatal(err)
				}
				if e.AdapterID == r.adapter {
					break
				}
			}
			// The grant is revoked (password changed); the access token expires.
			r.as.RevokeUser(r.Adapter.FromAddress)
			r.Clock.Add(56 * time.Minute)
			before := len(r.Sink.Messages())
			r.settle(r.disp)
			a, m := r.adapterState()
			if a.HealthState != dripdrop.HealthResting || !a.ReconnectRequired || a.RestingUntil != nil || a.OAuth.State != dripdrop.TokenReconnectRequired ||
				m["reconnect_required"] != true {
				t.Fatalf("after invalid_grant: %s reconnect=%v until=%v oauth=%+v", a.HealthState, a.ReconnectRequired, a.RestingUntil, a.OAuth)
			}
			rr := r.Events.Named("dripdrop.adapter.reconnect_required")
			if len(rr) != 1 || rr[0]["adapter_id"] != r.adapter.String() || rr[0]["provider"] != "custom" {
				t.Fatalf("reconnect_required events %v", rr)
			}
			var changed bool
			for _, sc := range r.Events.Named("dripdrop.health.state_changed") {
				changed = changed || (sc["to"] == "resting" && sc["reason"] == "reconnect_required" && sc["source"] == "engine")
			}
			if !changed {
				t.Fatal("no state_changed to resting (reconnect_required, engine)")
			}
			got := r.Enrollment(e.ID)
			switch policy {
			case dripdrop.PinPause:
				if got.State != dripdrop.EnrollmentPaused || got.PauseReason == nil || *got.PauseReason != db.PausePinUnavailable {
					t.Fatalf("pause pool: enrollment %s %v", got.State, got.PauseReason)
				}
				if len(r.Sink.Messages()) != before {
					t.Fatal("something was sent through a dead grant")
				}
			case dripdrop.PinReassign:
				if got.State != dripdrop.EnrollmentActive || got.AdapterID != other.ID {
					t.Fatalf("reassign pool: enrollment %s pinned to %s, want %s", got.State, got.AdapterID, other.ID)
				}
				if len(r.Events.Named("dripdrop.enrollment.sender_reassigned")) == 0 {
					t.Fatal("no sender_reassigned")
				}
			}
			for _, msg := range r.Sink.Messages() {
				if msg.From == r.Adapter.FromAddress && len(r.Sink.Messages()) > before {
					t.Fatal("the oauth2 adapter sent after its grant died")
				}
			}
			// No automatic probe: a week and a sweep later it still waits.
			r.Clock.Add(8 * 24 * time.Hour)
			if _, err := r.Store.HealthSweep(context.Background(), r.Tenant); err != nil {
				t.Fatal(err)
			}
			if a, _ := r.adapterState(); a.HealthState != dripdrop.HealthResting || !a.ReconnectRequired {
				t.Fatalf("the sweep probed a held adapter: %s", a.HealthState)
			}
			if h := r.must(200, "GET", "/v1/adapters/"+r.adapter.String()+"/health", nil); h["next_transition"] != nil {
				t.Fatalf("a held adapter predicts %v", h["next_transition"])
			}
			// A health signal cannot end the hold; only a reconnect can.
			if st, b := r.call("POST", "/v1/adapters/"+r.adapter.String()+"/health", map[string]any{"health_state": "active", "source": "ops"}); st != 409 ||
				!strings.Contains(string(b), `"code":"invalid_state"`) {
				t.Fatalf("signal to active while held: %d %s", st, b)
			}
			// Reconnect: the adapter is back as it was; a paused pin resumes.
			r.connect()
			a, _ = r.adapterState()
			if a.HealthState != dripdrop.HealthActive || a.ReconnectRequired || a.OAuth.State != dripdrop.TokenConnected {
				t.Fatalf("after the reconnect: %s reconnect=%v %+v", a.HealthState, a.ReconnectRequired, a.OAuth)
			}
			if policy == dripdrop.PinPause {
				if got := r.Enrollment(e.ID); got.State != dripdrop.EnrollmentActive {
					t.Fatalf("the paused pin did not resume: %s", got.State)
				}
				r.settle(r.disp)
				n := 0
				for _, msg := range r.Sink.Messages() {
					if msg.From == r.Adapter.FromAddress {
						n++
					}
				}
				if n != 3 {
					t.Fatalf("%d messages from the reconnected adapter, want 3", n)
				}
			}
			r.assertNoTokenLeaks()
		})
	}
}

func TestABadReusedOrExpiredStateChangesNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	notConnected := func(when string) {
		t.Helper()
		if a, _ := r.adapterState(); a.OAuth.State != dripdrop.TokenNotConnected {
			t.Fatalf("%s: the adapter is %s", when, a.OAuth.State)
		}
	}
	// Garbage and a forged state.
	for _, q := range []string{"", "?state=nonsense&code=x", "?code=x"} {
		st, page := r.get(r.api.URL + "/oauth/callback" + q)
		if st != 400 || !strings.Contains(page, "not valid") {
			t.Fatalf("callback%s: %d\n%s", q, st, page)
		}
	}
	notConnected("after bad states")
	// A state tampered with (one character changed) is refused.
	authorize := r.start()
	u, _ := url.Parse(authorize)
	state := u.Query().Get("state")
	flip := []byte(state)
	if flip[10] == 'A' {
		flip[10] = 'B'
	} else {
		flip[10] = 'A'
	}
	if st, page := r.get(r.api.URL + "/oauth/callback?code=x&state=" + string(flip)); st != 400 || !strings.Contains(page, "not valid") {
		t.Fatalf("tampered state: %d\n%s", st, page)
	}
	// Expired: the browser comes back 11 minutes later.
	r.Clock.Add(11 * time.Minute)
	st, page, _ := r.browse(authorize)
	if st != 400 || !strings.Contains(page, "expired") {
		t.Fatalf("expired state: %d\n%s", st, page)
	}
	notConnected("after an expired state")
	if r.as.Exchanges() != 0 {
		t.Fatal("an expired state exchanged its code")
	}
	// Reused: a finished connect's callback URL replayed.
	cb := r.connect()
	before, _ := r.adapterState()
	if st, page := r.get(cb); st != 400 || !strings.Contains(page, "already used") {
		t.Fatalf("replayed callback: %d\n%s", st, page)
	}
	after, _ := r.adapterState()
	if r.as.Exchanges() != 1 || !after.OAuth.ConnectedAt.Equal(*before.OAuth.ConnectedAt) {
		t.Fatal("a replayed callback changed the grant")
	}
	// The provider refusing consent changes nothing either.
	st, page = r.get(r.api.URL + "/oauth/callback?error=access_denied&state=" + url.QueryEscape(mustState(t, r.start())))
	if st != 400 || !strings.Contains(page, "access_denied") {
		t.Fatalf("access_denied: %d\n%s", st, page)
	}
}

func mustState(t *testing.T, authorize string) string {
	t.Helper()
	u, err := url.Parse(authorize)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("state")
}

func TestAnotherTenantsAdapterIsNotFound(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	otherKey, otherAdapter, _ := r.AddTenant("globex", dripdrop.AdapterInput{})
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/adapters/" + otherAdapter.ID.String() + "/oauth/start", nil},
		{"PUT", "/v1/adapters/" + otherAdapter.ID.String() + "/oauth/token", map[string]any{"refresh_token": "rt-x"}},
		{"POST", "/v1/adapters/" + otherAdapter.ID.String() + "/verify", nil},
		{"GET", "/v1/oauth/apps/" + r.app.ID.String(), nil},
	} {
		key := r.APIKey
		if strings.HasPrefix(c.path, "/v1/oauth/apps/") {
			key = otherKey // globex asks for acme's app
		}
		req, _ := http.NewRequest(c.method, r.api.URL+c.path, nil)
		if c.body != nil {
			b, _ := json.Marshal(c.body)
			req, _ = http.NewRequest(c.method, r.api.URL+c.path, bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("%s %s across tenants: %d, want 404", c.method, c.path, res.StatusCode)
		}
	}
}

func TestARefreshTokenFromElsewhere(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	// A refused token: 422, nothing stored.
	st, b := r.call("PUT", "/v1/adapters/"+r.adapter.String()+"/oauth/token", map[string]any{"refresh_token": "rt-never-issued"})
	if st != 422 || !strings.Contains(string(b), `"field":"refresh_token"`) {
		t.Fatalf("a bad refresh token: %d %s", st, b)
	}
	if a, _ := r.adapterState(); a.OAuth.State != dripdrop.TokenNotConnected {
		t.Fatal("a refused refresh token was stored")
	}
	rt := r.as.Grant(r.Adapter.FromAddress)
	m := r.must(200, "PUT", "/v1/adapters/"+r.adapter.String()+"/oauth/token", map[string]any{"refresh_token": rt})
	if m["adapter"].(map[string]any)["oauth"].(map[string]any)["state"] != "connected" || m["proof"].(map[string]any)["ok"] != true {
		t.Fatalf("stored: %v", m)
	}
	r.Enroll("bob@example.com", nil)
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 3 {
		t.Fatalf("%d sent", n)
	}
	r.assertNoTokenLeaks()
}

func TestOAuthApps(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	m := r.must(201, "POST", "/v1/oauth/apps", map[string]any{"provider": "google", "client_id": "123.apps.googleusercontent.com", "client_secret": "GOCSPX-secret-value"})
	if m["smtp_host"] != "smtp.gmail.com" || m["smtp_port"] != float64(587) || m["imap_host"] != "imap.gmail.com" || m["client_secret_set"] != true ||
		m["scopes"].([]any)[0] != "https://mail.google.com/" {
		t.Fatalf("google preset: %v", m)
	}
	ms := r.must(201, "POST", "/v1/oauth/apps", map[string]any{"provider": "microsoft", "client_id": "0000-1111", "client_secret": "ms-secret-value", "microsoft_tenant": "contoso.onmicrosoft.com"})
	if ms["smtp_host"] != "smtp.office365.com" || ms["imap_host"] != "outlook.office365.com" || !strings.Contains(ms["token_url"].(string), "/contoso.onmicrosoft.com/oauth2/v2.0/token") ||
		len(ms["scopes"].([]any)) != 3 || ms["scopes"].([]any)[2] != "offline_access" {
		t.Fatalf("microsoft preset: %v", ms)
	}
	// An oauth2 adapter without credentials takes the preset's server and
	// logs in as its from address.
	ad := r.must(201, "POST", "/v1/adapters", map[string]any{"name": "Workspace", "provider": "smtp", "from_address": "ceo@acme.example.com", "auth": "oauth2", "oauth_app_id": m["id"]})
	creds, err := r.Store.AdapterCredentials(context.Background(), r.Tenant, uuid.MustParse(ad["id"].(string)))
	if err != nil || creds.Host != "smtp.gmail.com" || creds.Port != 587 || creds.Username != "ceo@acme.example.com" || creds.Password != "" {
		t.Fatalf("preset credentials %+v %v", creds, err)
	}
	// Refusals change nothing.
	for _, c := range []struct {
		body  map[string]any
		code  string
		field string
	}{
		{map[string]any{"provider": "yahoo", "client_id": "x"}, "invalid_value", "provider"},
		{map[string]any{"provider": "custom", "client_id": "x", "token_url": "https://t.example.com/token", "scopes": []string{"a"}}, "required", "auth_url"},
		{map[string]any{"provider": "google", "client_id": "x", "token_url": "https://evil.example.com/"}, "invalid_value", "token_url"},
	} {
		st, b := r.call("POST", "/v1/oauth/apps", c.body)
		var p map[string]any
		_ = json.Unmarshal(b, &p)
		if st != 422 || p["code"] != c.code || p["field"] != c.field {
			t.Errorf("%v: %d %s", c.body, st, b)
		}
	}
	// Without DRIPDROP_ALLOW_PRIVATE_TARGETS a custom app's endpoints must
	// be public (the rig's store allows its loopback test server).
	strict, err := db.Open(context.Background(), r.URL, db.Options{Vault: r.Box, Clock: r.Clock})
	if err != nil {
		t.Fatal(err)
	}
	defer strict.Close()
	for _, u := range []string{"http://169.254.169.254/token", "http://127.0.0.1:8080/token", "https://token.internal/t"} {
		custom, cid, auth := "custom", "x", "https://auth.example.com/authorize"
		_, err := strict.CreateOAuthApp(context.Background(), r.Tenant, dripdrop.OAuthAppInput{Provider: &custom, ClientID: &cid, AuthURL: &auth, TokenURL: &u, Scopes: []string{"a"}})
		var de *dripdrop.Error
		if !errors.As(err, &de) || de.Code != dripdrop.ECodeForbiddenTarget || de.Field != "token_url" {
			t.Errorf("token_url %s: %v, want forbidden_target", u, err)
		}
	}
	list := r.must(200, "GET", "/v1/oauth/apps", nil)["data"].([]any)
	if len(list) != 3 {
		t.Fatalf("%d apps listed, want 3", len(list))
	}
	// In use: refused; unused: deleted.
	if st, _ := r.call("DELETE", "/v1/oauth/apps/"+m["id"].(string), nil); st != 409 {
		t.Fatalf("deleting an app in use: %d", st)
	}
	if st, _ := r.call("DELETE", "/v1/oauth/apps/"+ms["id"].(string), nil); st != 204 {
		t.Fatalf("deleting an unused app: %d", st)
	}
	for _, b := range r.bodies {
		for _, secret := range []string{"GOCSPX-secret-value", "ms-secret-value", r.as.ClientSecret} {
			if bytes.Contains(b, []byte(secret)) {
				t.Fatalf("a client secret came back in a response: %s", b)
			}
		}
	}
}

// A token the mail server refuses before it expires (revoked early at the
// provider, a scope changed) is dropped: the next attempt refreshes and
// sends; the refusal counted as the sender's AUTH failure, not the
// recipient's.
func TestARefusedFreshTokenIsDroppedAndRefreshed(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	r.connect()
	var refused string
	r.Sink.SetOAuth(func(user, token string) error {
		if refused == "" {
			refused = token // the first login fails although the token is live
			return errRefused
		}
		if u, ok := r.as.Valid(token); ok && u == user && token != refused {
			return nil
		}
		return errRefused
	})
	e := r.Enroll("bob@example.com", nil)
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 0 || r.as.Refreshes() != 0 {
		t.Fatalf("%d sent, %d refreshes before the retry", n, r.as.Refreshes())
	}
	evs := r.Events.Named("dripdrop.dispatch.adapter_error")
	if len(evs) != 1 || evs[0]["reason"] != "auth" {
		t.Fatalf("adapter_error %v, want one auth failure", evs)
	}
	r.Clock.Add(2 * time.Minute) // past the adapter's 1-minute backoff
	r.settle(r.disp)
	if n := len(r.Sink.Messages()); n != 3 || r.as.Refreshes() != 1 {
		t.Fatalf("%d sent after the retry with %d refreshes, want 3 sent after 1 refresh", n, r.as.Refreshes())
	}
	if got := r.Enrollment(e.ID); got.State != dripdrop.EnrollmentCompleted {
		t.Fatalf("enrollment %s", got.State)
	}
}

// A slow token endpoint holds no transaction open: while a refresh waits
// on it, the ordered telemetry feed (which lists an event only once every
// older writer has ended) still shows what other transactions commit.
func TestASlowRefreshDoesNotHoldBackTheFeed(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	r.connect()
	r.Clock.Add(56 * time.Minute)
	r.as.SetDelay(1500 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := r.src.AccessToken(context.Background(), r.Tenant, r.adapter)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the refresh is waiting on the endpoint
	r.must(200, "POST", "/v1/adapters/"+r.adapter.String()+"/health", map[string]any{"health_score": 0.9, "source": "ops"})
	deadline := time.Now().Add(time.Second)
	for {
		evs := r.must(200, "GET", "/v1/telemetry/events?prefix=dripdrop.health.external_signal", nil)["data"].([]any)
		if len(evs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the feed held back a committed event while a refresh waited on the token endpoint")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the refresh ended (%v) before the feed was read: the test proves nothing", err)
	default:
	}
	if err := <-done; err != nil || r.as.Refreshes() != 1 {
		t.Fatalf("the slow refresh: %v, %d refreshes", err, r.as.Refreshes())
	}
}

// A refresher that died holding the lease delays the others only until
// the lease runs out; meanwhile they wait (the sender's temporary failure)
// and never refresh beside it.
func TestACrashedRefreshersLeaseRunsOut(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	r.connect()
	r.Clock.Add(56 * time.Minute)
	dbtest.Exec(t, r.URL, `UPDATE oauth_tokens SET refresh_lease_id = gen_random_uuid(), refresh_lease_until = $1 WHERE tenant_key = $2`,
		r.Clock.Now().Add(time.Minute), r.Tenant)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := r.src.AccessToken(ctx, r.Tenant, r.adapter)
	var te *mailauth.TokenError
	if !errors.As(err, &te) || r.as.Refreshes() != 0 {
		t.Fatalf("while another replica's lease is live: %v, %d refreshes", err, r.as.Refreshes())
	}
	r.Clock.Add(61 * time.Second)
	if _, err := r.src.AccessToken(context.Background(), r.Tenant, r.adapter); err != nil || r.as.Refreshes() != 1 {
		t.Fatalf("after the lease ran out: %v, %d refreshes", err, r.as.Refreshes())
	}
}
