// Package mailauth holds the SASL mechanisms a mailbox connection logs in
// with when its adapter authenticates by OAuth2: XOAUTH2 (the scheme
// Google Workspace and Microsoft 365 document for SMTP and IMAP) and
// OAUTHBEARER (RFC 7628, from emersion/go-sasl), chosen by what the server
// offers. The SMTP transport and the IMAP mailbox sync share it; it does no
// I/O (the token comes from the caller). See docs/architecture.md.
package mailauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// Mechanism names.
const (
	XOAuth2     = "XOAUTH2"
	OAuthBearer = sasl.OAuthBearer // "OAUTHBEARER"
)

// ErrNoMechanism: the server offers neither OAuth2 mechanism.
var ErrNoMechanism = errors.New("mailauth: the server offers neither XOAUTH2 nor OAUTHBEARER")

// Client returns the SASL client for an OAuth2 login as username with the
// access token: OAUTHBEARER when the server offers it (the standard),
// otherwise XOAUTH2. offers reports whether the server advertises a
// mechanism (SMTP's EHLO AUTH line, IMAP's AUTH= capabilities); host and
// port name the server for OAUTHBEARER's GS2 header.
func Client(offers func(mechanism string) bool, username, token, host string, port int) (sasl.Client, error) {
	switch {
	case offers(OAuthBearer):
		return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: username, Token: token, Host: host, Port: port}), nil
	case offers(XOAuth2):
		return NewXOAuth2Client(username, token), nil
	}
	return nil, ErrNoMechanism
}

// NewXOAuth2Client is the XOAUTH2 mechanism: the initial response is
// "user=" username ^A "auth=Bearer " token ^A ^A. A server that refuses
// the token answers with a challenge carrying a JSON error ({"status":
// "401", "schemes": …, "scope": …}); the client answers it with an empty
// response, after which the server ends the exchange with its failure
// reply. The challenge's status is kept (see Failure).
func NewXOAuth2Client(username, token string) *XOAuth2Client {
	return &XOAuth2Client{username: username, token: token}
}

// XOAuth2Client is an XOAUTH2 SASL client.
type XOAuth2Client struct {
	username, token string
	failure         *Failure
}

// Failure is the error a server described in its XOAUTH2 challenge.
type Failure struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

func (f *Failure) Error() string {
	return fmt.Sprintf("mailauth: XOAUTH2 refused (status %s)", f.Status)
}

// Start implements sasl.Client.
func (c *XOAuth2Client) Start() (string, []byte, error) {
	if c.username == "" || c.token == "" || strings.ContainsAny(c.username+c.token, "\x01") {
		return "", nil, errors.New("mailauth: XOAUTH2 needs a username and a token without ^A")
	}
	return XOAuth2, []byte("user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next implements sasl.Client: a challenge is the server's error report;
// the empty answer lets the server end the exchange.
func (c *XOAuth2Client) Next(challenge []byte) ([]byte, error) {
	f := &Failure{}
	if err := json.Unmarshal(challenge, f); err != nil {
		f.Status = "unknown"
	}
	c.failure = f
	return []byte{}, nil
}

// Failure is the error the server reported in its challenge, nil when it
// sent none.
func (c *XOAuth2Client) Failure() *Failure { return c.failure }

// ParseXOAuth2 reads an XOAUTH2 initial response into its username and
// token (servers, and tests standing in for them).
func ParseXOAuth2(ir []byte) (username, token string, err error) {
	parts := strings.Split(string(ir), "\x01")
	if len(parts) != 4 || parts[2] != "" || parts[3] != "" {
		return "", "", errors.New("mailauth: malformed XOAUTH2 response")
	}
	u, ok1 := strings.CutPrefix(parts[0], "user=")
	t, ok2 := strings.CutPrefix(parts[1], "auth=Bearer ")
	if !ok1 || !ok2 || u == "" || t == "" {
		return "", "", errors.New("mailauth: malformed XOAUTH2 response")
	}
	return u, t, nil
}

// Offers adapts a capability check that can fail — go-imap v1's
// (*client.Client).SupportAuth — to Client's offers argument: a mechanism
// whose check failed counts as not offered.
//
//	cl, err := mailauth.Client(mailauth.Offers(c.SupportAuth), user, token, host, port)
//	if err == nil { err = c.Authenticate(cl) }
func Offers(support func(mechanism string) (bool, error)) func(string) bool {
	return func(m string) bool {
		ok, err := support(m)
		return err == nil && ok
	}
}

// NewXOAuth2Server is the server side of XOAUTH2, for mail servers in
// tests and the engine's own listeners: check decides a login (nil
// accepts). A refused token is answered with the JSON error challenge;
// after the client's empty response the exchange fails with check's error
// (an *smtp.SMTPError such as 535 5.7.8, for go-smtp).
func NewXOAuth2Server(check func(username, token string) error) sasl.Server {
	return &xoauth2Server{check: check}
}

type xoauth2Server struct {
	check   func(username, token string) error
	refused error
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.refused != nil {
		return nil, true, x.refused
	}
	user, token, err := ParseXOAuth2(response)
	if err != nil {
		return nil, true, err
	}
	if err := x.check(user, token); err != nil {
		x.refused = err
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	return nil, true, nil
}
