package mailauth_test

import (
	"errors"
	"io"
	"net"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/dripdrop/dripdrop/mailauth"
)

// A real go-smtp server that accepts an OAuth2 login only for the token it
// issued, offering the mechanisms given.
type backend struct{ mechs []string }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{mechs: b.mechs}, nil }

type session struct {
	mechs []string
	user  string
}

const issued = "ya29.token-issued-by-the-test"

func (s *session) AuthMechanisms() []string { return s.mechs }

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case mailauth.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if o.Token != issued {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			s.user = o.Username
			return nil
		}), nil
	case mailauth.XOAuth2:
		return &xoauth2Server{s: s}, nil
	}
	return nil, errors.New("unsupported")
}

// xoauth2Server answers a bad token with the JSON challenge, then fails.
type xoauth2Server struct {
	s          *session
	challenged bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.challenged {
		return nil, true, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}
	}
	user, token, err := mailauth.ParseXOAuth2(response)
	if err != nil {
		return nil, true, err
	}
	if token != issued {
		x.challenged = true
		return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
	}
	x.s.user = user
	return nil, true, nil
}

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }
func (s *session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *session) Data(io.Reader) error                 { return nil }
func (s *session) Reset()                               {}
func (s *session) Logout() error                        { return nil }

func serve(t *testing.T, mechs ...string) string {
	t.Helper()
	srv := smtp.NewServer(backend{mechs: mechs})
	srv.AllowInsecureAuth = true
	srv.Domain = "mx.example.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func login(t *testing.T, addr, token string) (*smtp.Client, error) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("sender.example.test"); err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(addr)
	cl, err := mailauth.Client(c.SupportsAuth, "ada@acme.example", token, host, 25)
	if err != nil {
		return c, err
	}
	return c, c.Auth(cl)
}

func TestOAuth2LoginOverSMTP(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		mechs []string
		token string
		ok    bool
	}{
		{"XOAUTH2 only, issued token", []string{mailauth.XOAuth2}, issued, true},
		{"XOAUTH2 only, wrong token", []string{mailauth.XOAuth2}, "stale", false},
		{"both offered: OAUTHBEARER, issued token", []string{mailauth.XOAuth2, mailauth.OAuthBearer}, issued, true},
		{"OAUTHBEARER, wrong token", []string{mailauth.OAuthBearer}, "stale", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := login(t, serve(t, c.mechs...), c.token)
			if (err == nil) != c.ok {
				t.Fatalf("login: %v, want ok=%v", err, c.ok)
			}
			// A refusal is the server's 535, or (OAUTHBEARER) the error
			// report the server sent, read by the client.
			var se *smtp.SMTPError
			var be *sasl.OAuthBearerError
			if !c.ok && !(errors.As(err, &se) && se.Code == 535) && !(errors.As(err, &be) && be.Status == "invalid_token") {
				t.Fatalf("refusal %v, want a 535 reply or an invalid_token report", err)
			}
		})
	}
	// Neither offered: no mechanism, nothing sent.
	if _, err := login(t, serve(t, sasl.Plain), issued); !errors.Is(err, mailauth.ErrNoMechanism) {
		t.Fatalf("PLAIN only: %v, want ErrNoMechanism", err)
	}
}

func TestXOAuth2Exchange(t *testing.T) {
	t.Parallel()
	c := mailauth.NewXOAuth2Client("ada@acme.example", "tok")
	mech, ir, err := c.Start()
	if err != nil || mech != "XOAUTH2" || string(ir) != "user=ada@acme.example\x01auth=Bearer tok\x01\x01" {
		t.Fatalf("start: %s %q %v", mech, ir, err)
	}
	if u, tok, err := mailauth.ParseXOAuth2(ir); err != nil || u != "ada@acme.example" || tok != "tok" {
		t.Fatalf("parse: %s %s %v", u, tok, err)
	}
	resp, err := c.Next([]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`))
	if err != nil || len(resp) != 0 || c.Failure() == nil || c.Failure().Status != "401" || c.Failure().Scope != "https://outlook.office.com/SMTP.Send" {
		t.Fatalf("challenge: %q %v %+v", resp, err, c.Failure())
	}
	for _, bad := range []*mailauth.XOAuth2Client{mailauth.NewXOAuth2Client("", "tok"), mailauth.NewXOAuth2Client("a", ""), mailauth.NewXOAuth2Client("a\x01b", "tok")} {
		if _, _, err := bad.Start(); err == nil {
			t.Error("a malformed login started")
		}
	}
	for _, ir := range []string{"", "user=a\x01auth=Bearer t\x01", "user=\x01auth=Bearer t\x01\x01", "user=a\x01auth=Basic t\x01\x01"} {
		if _, _, err := mailauth.ParseXOAuth2([]byte(ir)); err == nil {
			t.Errorf("parsed %q", ir)
		}
	}
}

func TestOffers(t *testing.T) {
	t.Parallel()
	offers := mailauth.Offers(func(m string) (bool, error) {
		switch m {
		case mailauth.XOAuth2:
			return true, nil
		case mailauth.OAuthBearer:
			return true, errors.New("capabilities unavailable")
		}
		return false, nil
	})
	if !offers(mailauth.XOAuth2) || offers(mailauth.OAuthBearer) || offers("PLAIN") {
		t.Fatal("Offers: a failed check must count as not offered, a true one as offered")
	}
	cl, err := mailauth.Client(offers, "ada@acme.example", "tok", "imap.example.test", 993)
	if err != nil {
		t.Fatal(err)
	}
	if mech, _, _ := cl.Start(); mech != mailauth.XOAuth2 {
		t.Fatalf("mechanism %s, want XOAUTH2", mech)
	}
}
