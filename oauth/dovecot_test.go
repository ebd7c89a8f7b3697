package oauth_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-imap/client"
	"github.com/emersion/go-sasl"

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
