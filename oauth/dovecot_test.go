package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-sasl"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/internal/dovecot"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailauth"
)

// A real third-party IMAP server accepts the engine's OAuth2 login: Dovecot
// with an oauth2 passdb whose introspection URL is the test authorization
// server. The token is the one the engine's token source hands out after a
// connect through the callback; Dovecot asks the authorization server
// about it (RFC 7662), so only a live token it issued logs in.
func TestDovecotAcceptsTheEnginesXOAUTH2Login(t *testing.T) {
	t.Parallel()
	dovecot.Skip(t)
	// Dovecot reads the introspection answer's exp against the wall clock:
	// the engine's clock starts now.
	r := newRig(t, "", testkit.WithStart(time.Now().UTC().Truncate(time.Second)))
	r.connect()
	s := dovecot.Start(t, dovecot.Options{OAuth2: &dovecot.OAuth2{IntrospectionURL: r.as.IntrospectURL(), Mode: "post", UsernameAttribute: "username",
		ActiveAttribute: "active", ActiveValue: "true"}})
	user := r.Adapter.FromAddress
	ctx := context.Background()
	tok, err := r.src.AccessToken(ctx, r.Tenant, r.adapter)
	if err != nil {
		t.Fatal(err)
	}
	host, portS, _ := net.SplitHostPort(s.Addr())
	port, _ := strconv.Atoi(portS)
	dial := func() *client.Client {
		t.Helper()
		c, err := client.Dial(s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Logout() })
		return c
	}

	// The mechanism the engine picks (OAUTHBEARER: Dovecot offers both).
	c := dial()
	cl, err := mailauth.Client(mailauth.Offers(c.SupportAuth), user, tok, host, port)
	if err != nil {
		t.Fatal(err)
	}
	if mech, _, _ := cl.Start(); mech != mailauth.OAuthBearer {
		t.Fatalf("picked %s, want OAUTHBEARER when both are offered", mech)
	}
	cl, _ = mailauth.Client(mailauth.Offers(c.SupportAuth), user, tok, host, port)
	if err := c.Authenticate(cl); err != nil {
		t.Fatalf("OAUTHBEARER login: %v\n%s", err, s.Log())
	}
	if _, err := c.Select("INBOX", true); err != nil {
		t.Fatalf("select after login: %v", err)
	}

	// XOAUTH2, the mechanism Google and Microsoft document.
	c = dial()
	if err := c.Authenticate(mailauth.NewXOAuth2Client(user, tok)); err != nil {
		t.Fatalf("XOAUTH2 login: %v\n%s", err, s.Log())
	}
	if r.as.Introspections() < 2 {
		t.Fatalf("Dovecot asked the authorization server %d times, want every login checked there", r.as.Introspections())
	}

	// Another mailbox's name with this token, and a token the server did
	// not issue, are refused; the refusal's JSON is kept.
	for _, bad := range []struct{ user, token string }{{"mallory@acme.example.com", tok}, {user, "at-never-issued"}} {
		c = dial()
		x := mailauth.NewXOAuth2Client(bad.user, bad.token)
		if err := c.Authenticate(x); err == nil {
			t.Fatalf("XOAUTH2 as %s with a bad token logged in", bad.user)
		}
		if x.Failure() == nil {
			t.Fatalf("no XOAUTH2 error report kept for %s", bad.user)
		}
	}

	// The grant is revoked: the same, unexpired token no longer logs in.
	r.as.RevokeUser(user)
	c = dial()
	err = c.Authenticate(mailauth.NewXOAuth2Client(user, tok))
	var be *sasl.OAuthBearerError
	if err == nil || errors.As(err, &be) {
		t.Fatalf("a revoked token: %v", err)
	}
}

// The connect flow proves a new grant by logging in over SMTP and, for an
// adapter with mailbox sync settings, over IMAP to a real server (Dovecot
// checking the token at the test authorization server); the callback page
// shows both. The adapter names no IMAP host: its OAuth app's IMAP server
// is used. An IMAP login the server refuses does not refuse the grant —
// sending works — and the page says so plainly.
func TestCallbackProvesTheGrantOverSMTPAndIMAP(t *testing.T) {
	t.Parallel()
	dovecot.Skip(t)
	r := newRig(t, "", testkit.WithStart(time.Now().UTC().Truncate(time.Second)))
	s := dovecot.Start(t, dovecot.Options{OAuth2: &dovecot.OAuth2{IntrospectionURL: r.as.IntrospectURL(), Mode: "post", UsernameAttribute: "username",
		ActiveAttribute: "active", ActiveValue: "true"}})
	ctx := context.Background()
	custom, name, auth, tokenURL, imapHost := "custom", "with imap", r.as.AuthURL(), r.as.TokenURL(), s.Host
	app, err := r.Store.CreateOAuthApp(ctx, r.Tenant, dripdrop.OAuthAppInput{Name: &name, Provider: &custom, ClientID: &r.as.ClientID, ClientSecret: &r.as.ClientSecret,
		AuthURL: &auth, TokenURL: &tokenURL, Scopes: []string{"mail"}, IMAPHost: &imapHost, IMAPPort: &s.Port})
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/adapters/" + r.adapter.String()
	// Neither host nor preset: the app's IMAP server and port.
	m := r.must(200, "PATCH", path, map[string]any{"oauth_app_id": app.ID, "imap": map[string]any{"tls": "none"}})
	if im := m["imap"].(map[string]any); im["host"] != s.Host || im["port"] != float64(s.Port) {
		t.Fatalf("imap after PATCH without a host: %v, want the app's %s:%d", im, s.Host, s.Port)
	}

	st, page, _ := r.browse(r.start())
	if st != 200 || !strings.Contains(page, "Mailbox connected") {
		t.Fatalf("callback: %d\n%s", st, page)
	}
	imapLine := fmt.Sprintf("IMAP login to %s:%d: ok", s.Host, s.Port)
	if !strings.Contains(page, "SMTP login to 127.0.0.1:"+strconv.Itoa(r.Sink.Port())+": ok") || !strings.Contains(page, imapLine) {
		t.Fatalf("the page does not show both logins ok:\n%s\n%s", page, s.Log())
	}
	if r.as.Introspections() == 0 {
		t.Fatal("Dovecot never asked the authorization server: the IMAP login was not made with the new token")
	}
	// A new grant asks for a sync now (a dead grant's sync backs off).
	if ms, err := r.Store.MailboxSync(ctx, r.Tenant, r.adapter); err != nil || ms.SyncRequestedAt == nil {
		t.Fatalf("mailbox sync after the grant: %+v %v, want a sync requested", ms, err)
	}

	// The IMAP login names a mailbox the grant is not for: Dovecot refuses
	// it, SMTP still accepts the grant. The grant is stored all the same.
	r.must(200, "PATCH", path, map[string]any{"imap": map[string]any{"tls": "none", "username": "someone-else@acme.example.com"}})
	before := r.as.Exchanges()
	st, page, _ = r.browse(r.start())
	if st != 200 || !strings.Contains(page, "Connected for sending, but the IMAP login failed") ||
		!strings.Contains(page, fmt.Sprintf("IMAP login to %s:%d: refused", s.Host, s.Port)) || !strings.Contains(page, ": ok</h2>") {
		t.Fatalf("callback with a refused IMAP login: %d\n%s", st, page)
	}
	if !strings.Contains(page, "<td>auth</td><td>failed</td>") || !strings.Contains(page, "mailbox sync") {
		t.Fatalf("the page does not say which IMAP stage failed and what happens next:\n%s", page)
	}
	a, _ := r.adapterState()
	if a.OAuth == nil || a.OAuth.State != dripdrop.TokenConnected || r.as.Exchanges() <= before {
		t.Fatalf("after a refused IMAP login the grant should be stored: %+v", a.OAuth)
	}
	// The token still sends.
	tok, err := r.src.AccessToken(ctx, r.Tenant, r.adapter)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := r.as.Valid(tok); !ok || u != r.Adapter.FromAddress {
		t.Fatalf("the stored grant's token is not live for %s", r.Adapter.FromAddress)
	}

	// PUT …/oauth/token answers both proofs.
	rt := r.as.Grant(r.Adapter.FromAddress)
	m = r.must(200, "PUT", path+"/oauth/token", map[string]any{"refresh_token": rt})
	sp, ip := m["proof"].(map[string]any), m["imap_proof"].(map[string]any)
	if sp["ok"] != true || ip["ok"] != false || ip["failed_stage"] != "auth" || ip["host"] != s.Host {
		t.Fatalf("PUT oauth/token proofs: smtp %v imap %v", sp, ip)
	}
	r.must(200, "PATCH", path, map[string]any{"imap": map[string]any{"tls": "none"}})
	m = r.must(200, "PUT", path+"/oauth/token", map[string]any{"refresh_token": r.as.Grant(r.Adapter.FromAddress)})
	if ip := m["imap_proof"].(map[string]any); ip["ok"] != true {
		t.Fatalf("imap_proof with the right mailbox: %v", ip)
	}
	// Without imap settings there is no IMAP proof.
	r.must(200, "PATCH", path, map[string]any{"imap": nil})
	m = r.must(200, "PUT", path+"/oauth/token", map[string]any{"refresh_token": r.as.Grant(r.Adapter.FromAddress)})
	if _, ok := m["imap_proof"]; ok || m["proof"] == nil {
		t.Fatalf("proofs without imap settings: %v", m)
	}
}
