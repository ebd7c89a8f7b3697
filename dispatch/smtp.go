package dispatch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/mailauth"
	"github.com/dripdrop/dripdrop/smtpreply"
)

// Delivery is one message to hand to an adapter.
type Delivery struct {
	TenantKey   string
	AdapterID   uuid.UUID
	Credentials dripdrop.SMTPCredentials
	// Auth is dripdrop.AuthOAuth2 for a login with an access token from
	// the transport's Tokens; otherwise the credentials' password is used.
	Auth string
	From string // envelope sender
	To   string // envelope recipient
	Data []byte // the built message (CRLF)
}

// SendError is a failed delivery, classified.
type SendError struct {
	Temporary bool
	Code      int    // SMTP reply code, 0 when there was no reply
	Enhanced  [3]int // RFC 3463 status, zero when absent
	Message   string
	// AdapterFault marks a failure of the sender rather than the recipient
	// (docs/sending.md, "Whose failure is it?"); Reason says which:
	// connection, tls, auth, policy, sender_rejected, server_unavailable or
	// stalled; for OAuth2 logins also token (the token endpoint failed)
	// and reconnect_required (the grant died).
	AdapterFault bool
	Reason       string
}

// Stage is a point of an SMTP conversation (smtpreply.Stage).
type Stage = smtpreply.Stage

// SMTP conversation stages, for deciding whose failure an error is.
const (
	StageConnect   = smtpreply.StageConnect
	StageTLS       = smtpreply.StageTLS
	StageHello     = smtpreply.StageHello
	StageAuth      = smtpreply.StageAuth
	StageMail      = smtpreply.StageMail
	StageRcpt      = smtpreply.StageRcpt
	StageData      = smtpreply.StageData
	StageAfterData = smtpreply.StageAfterData
)

// Whose decides whether a failure at stage is the sender's and names the
// reason; it is smtpreply.Whose, the rule package ingest shares (see
// docs/sending.md, "Whose failure is it?"). code, enhanced and text are the
// server's reply (0 and "" when there was none: a network error, or a
// timeout when timedOut).
func Whose(stage smtpreply.Stage, code int, enhanced [3]int, text string, timedOut bool) (reason string, adapter bool) {
	return smtpreply.Whose(smtpreply.Reply{Stage: stage, Code: code, Enhanced: enhanced, Text: text, TimedOut: timedOut})
}

func (e *SendError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s SMTP failure %d %d.%d.%d: %s", kind, e.Code, e.Enhanced[0], e.Enhanced[1], e.Enhanced[2], e.Message)
	}
	return kind + " SMTP failure: " + e.Message
}

// EnhancedString is the enhanced status as "5.1.1", or "" when absent.
func (e *SendError) EnhancedString() string {
	if e.Enhanced[0] == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", e.Enhanced[0], e.Enhanced[1], e.Enhanced[2])
}

// Bounce reports a permanent recipient failure (5.1.x): the address is bad.
func (e *SendError) Bounce() bool { return !e.Temporary && e.Enhanced[0] == 5 && e.Enhanced[1] == 1 }

// Transport sends deliveries.
type Transport interface {
	Send(ctx context.Context, d Delivery) (Receipt, error)
	Close() error
}

// Receipt is what a server's acceptance tells: its id for the message and
// when the message was handed over (the end of its data, when the server
// has it, before any slow final reply), from which an adapter's minimum
// gap runs.
type Receipt struct {
	ProviderID string
	HandedOver time.Time
}

// SMTPTransport speaks SMTP with go-smtp, keeping idle connections per
// adapter for reuse.
type SMTPTransport struct {
	// IdleTimeout closes pooled connections unused this long (default 30 s).
	IdleTimeout time.Duration
	// MaxIdle caps the idle connections kept per adapter; 0 (the default)
	// keeps every connection a send returns. A connection is dialed only
	// when the adapter has none idle, so an adapter never holds more than
	// it had sends at once — at most its max_in_flight. A cap below that
	// closes and redials (TCP, EHLO, STARTTLS, AUTH) the excess in every
	// round: with max_in_flight 16, a cap of 4 redialed twelve per round.
	MaxIdle int
	// MaxIdleTotal is the most idle connections kept over all adapters
	// (default 1024): a fleet of thousands of mailboxes, each sending now
	// and then, must not hold a socket per mailbox. A connection returned
	// beyond it is closed.
	MaxIdleTotal int
	// TLSConfig is cloned for STARTTLS/implicit TLS (ServerName is set per host).
	TLSConfig *tls.Config
	// Guard refuses private and internal destinations at dial time, after DNS
	// (docs/security.md#the-operators-network); the zero value refuses them,
	// AllowPrivate permits them.
	Guard netguard.Guard
	// Tokens gives OAuth2 adapters their access tokens (XOAUTH2 or
	// OAUTHBEARER, as the server offers); nil fails their sends as the
	// sender's (reason token).
	Tokens mailauth.TokenSource

	mu     sync.Mutex
	idle   map[uuid.UUID][]*pooled
	nidle  int         // connections in idle
	reaper *time.Timer // closes connections idle longer than IdleTimeout
	closed bool
}

type pooled struct {
	c        *smtp.Client
	conn     net.Conn
	credsSum [32]byte
	since    time.Time
}

// quit says QUIT (bounded, so a dead server cannot hold the goroutine) and
// closes the connection.
func (p *pooled) quit() {
	_ = p.conn.SetDeadline(time.Now().Add(5 * time.Second))
	_ = p.c.Quit()
	_ = p.c.Close()
}

// NewSMTPTransport returns a transport with default settings.
func NewSMTPTransport() *SMTPTransport {
	return &SMTPTransport{IdleTimeout: 30 * time.Second, MaxIdleTotal: 1024, idle: map[uuid.UUID][]*pooled{}}
}

func credsSum(c dripdrop.SMTPCredentials) [32]byte {
	b, _ := json.Marshal(c)
	return sha256.Sum256(b)
}

// Send delivers d, reusing an idle connection of the adapter when one is
// still good. The whole exchange is bounded by ctx's deadline.
//
// A server's reply (any 4xx/5xx to MAIL, RCPT or DATA) is its answer: it is
// classified once and the connection is reset (RSET) and kept — closed
// instead when the reply is a 421 (the server is closing) or RSET fails.
// Only a pooled connection that failed with no reply at MAIL FROM (closed
// or reset while idle, before the server answered) is redialled, once: no
// recipient is ever asked twice in one attempt. See docs/sending.md.
func (t *SMTPTransport) Send(ctx context.Context, d Delivery) (Receipt, error) {
	sum := credsSum(d.Credentials)
	if p := t.take(d.AdapterID, sum); p != nil {
		r, err, stage := t.transact(ctx, p, d)
		if err == nil {
			t.put(d.AdapterID, p)
			return r, nil
		}
		if err.Code != 0 || stage != StageMail || ctx.Err() != nil {
			t.release(d.AdapterID, p, err)
			return Receipt{}, err
		}
		// The pooled connection died before the server answered MAIL FROM
		// (no recipient was asked): redial once.
		_ = p.c.Close()
	}
	p, err := t.dial(ctx, d, sum)
	if err != nil {
		return Receipt{}, err
	}
	r, serr, _ := t.transact(ctx, p, d)
	if serr != nil {
		t.release(d.AdapterID, p, serr)
		return Receipt{}, serr
	}
	t.put(d.AdapterID, p)
	return r, nil
}

// release ends a failed transaction on p: after a reply (other than 421)
// the connection is reset and pooled, otherwise closed.
func (t *SMTPTransport) release(adapter uuid.UUID, p *pooled, err *SendError) {
	if err.Code == 0 || err.Code == 421 {
		_ = p.c.Close()
		return
	}
	_ = p.conn.SetDeadline(time.Now().Add(5 * time.Second))
	p.c.CommandTimeout = 5 * time.Second
	if rerr := p.c.Reset(); rerr != nil {
		_ = p.c.Close()
		return
	}
	_ = p.conn.SetDeadline(time.Time{})
	t.put(adapter, p)
}

// TLSConfig is the TLS configuration an adapter's connections use: base
// (nil for the defaults) with the adapter's trust settings — its
// tls_ca_pem as the only roots, or tls_insecure_skip_verify (lab relays
// only: no certificate is checked) — and host as the server name.
func TLSConfig(base *tls.Config, cr dripdrop.SMTPCredentials) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		conf = base.Clone()
	}
	conf.ServerName = cr.Host
	if cr.TLSCAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cr.TLSCAPEM)) {
			return nil, errors.New("tls_ca_pem holds no PEM certificate")
		}
		conf.RootCAs = pool
	}
	if cr.TLSInsecureSkipVerify {
		conf.InsecureSkipVerify = true
	}
	return conf, nil
}

// Reasons of the sender's failures to obtain an OAuth2 access token.
const (
	ReasonToken             = "token"
	ReasonReconnectRequired = dripdrop.ReasonReconnectRequired
)

// TokenFailure is the SendError of a failed token lookup: the sender's,
// never the recipient's; a dead grant is reconnect_required, anything else
// (endpoint down, slow, not connected) token, retried with the adapter's
// backoff.
func TokenFailure(err error) *SendError {
	if errors.Is(err, mailauth.ErrReconnectRequired) {
		return &SendError{Temporary: true, Message: "the mailbox must be reconnected: its OAuth2 grant was refused", AdapterFault: true, Reason: ReasonReconnectRequired}
	}
	msg := "no OAuth2 access token"
	var te *mailauth.TokenError
	switch {
	case errors.As(err, &te):
		msg += ": " + te.Reason
	case errors.Is(err, mailauth.ErrNotConnected):
		msg += ": the mailbox is not connected"
	}
	return &SendError{Temporary: true, Message: msg, AdapterFault: true, Reason: ReasonToken}
}

// OAuth2User is the mailbox an OAuth2 login names: the credentials'
// username, else the from address.
func OAuth2User(cr dripdrop.SMTPCredentials, from string) string {
	if cr.Username != "" {
		return cr.Username
	}
	return from
}

func (t *SMTPTransport) dial(ctx context.Context, d Delivery, sum [32]byte) (*pooled, error) {
	cr := d.Credentials
	var token string
	if d.Auth == dripdrop.AuthOAuth2 {
		// The token first: a token endpoint that fails costs no connection.
		if t.Tokens == nil {
			return nil, TokenFailure(errors.New("no token source"))
		}
		tok, err := t.Tokens.AccessToken(ctx, d.TenantKey, d.AdapterID)
		if err != nil {
			return nil, TokenFailure(err)
		}
		token = tok
	}
	addr := net.JoinHostPort(cr.Host, strconv.Itoa(cr.Port))
	tlsConf, err := TLSConfig(t.TLSConfig, cr)
	if err != nil {
		return nil, &SendError{Message: err.Error(), AdapterFault: true, Reason: smtpreply.ReasonTLS}
	}
	dialer := t.Guard.Dialer(net.Dialer{})
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &SendError{Temporary: true, Message: "connect " + addr + ": " + err.Error(), AdapterFault: true, Reason: smtpreply.ReasonConnection}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	helo := cr.HELO
	if helo == "" {
		helo = Domain(d.From)
	}
	var c *smtp.Client
	switch cr.TLS {
	case "tls":
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()
			return nil, classify(err, StageTLS)
		}
		conn = tc
		c = smtp.NewClient(conn)
	case "none":
		c = smtp.NewClient(conn)
	default: // starttls (opportunistic) or require_starttls
		tc, stage, err := startTLS(ctx, conn, helo, tlsConf, cr.TLS == "require_starttls")
		if err != nil {
			_ = conn.Close()
			return nil, classify(err, stage)
		}
		conn = tc
		c = smtp.NewClient(conn)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.CommandTimeout = time.Until(dl)
	}
	fail := func(err error, stage smtpreply.Stage) (*pooled, error) {
		_ = c.Close()
		return nil, classify(err, stage)
	}
	if err := c.Hello(helo); err != nil {
		return fail(err, StageHello)
	}
	if d.Auth == dripdrop.AuthOAuth2 {
		host, port := cr.Host, cr.Port
		auth, err := mailauth.Client(c.SupportsAuth, OAuth2User(cr, d.From), token, host, port)
		if err != nil {
			_ = c.Close()
			return nil, &SendError{Message: "the server offers neither XOAUTH2 nor OAUTHBEARER", AdapterFault: true, Reason: smtpreply.ReasonAuth}
		}
		if err := c.Auth(auth); err != nil {
			if inv, ok := t.Tokens.(mailauth.Invalidator); ok {
				// Refused before its expiry (revoked early, wrong scope):
				// the next attempt asks for a new one.
				inv.Invalidate(context.WithoutCancel(ctx), d.TenantKey, d.AdapterID, token)
			}
			return fail(err, StageAuth)
		}
	} else if cr.Username != "" {
		var auth sasl.Client
		switch {
		case c.SupportsAuth("PLAIN"):
			auth = sasl.NewPlainClient("", cr.Username, cr.Password)
		case c.SupportsAuth("LOGIN"):
			auth = sasl.NewLoginClient(cr.Username, cr.Password)
		default:
			_ = c.Close()
			return nil, &SendError{Message: "the server offers neither AUTH PLAIN nor AUTH LOGIN", AdapterFault: true, Reason: smtpreply.ReasonAuth}
		}
		if err := c.Auth(auth); err != nil {
			return fail(err, StageAuth)
		}
	}
	return &pooled{c: c, conn: conn, credsSum: sum, since: time.Now()}, nil
}

// startTLS reads the greeting, says EHLO with the adapter's HELO name and,
// when the server offers STARTTLS (or require is set), upgrades the
// connection. go-smtp's own STARTTLS says "EHLO localhost" first, so the
// exchange before TLS is spoken here. The connection returned replays a
// greeting to the go-smtp client built on it, which then says EHLO again
// (over TLS, with the same name), as RFC 3207 asks.
func startTLS(ctx context.Context, conn net.Conn, helo string, conf *tls.Config, require bool) (net.Conn, smtpreply.Stage, error) {
	tp := textproto.NewConn(conn)
	cmd := func(expect int, format string, args ...any) (string, error) {
		if format != "" {
			if _, err := tp.Cmd(format, args...); err != nil {
				return "", err
			}
		}
		_, msg, err := tp.ReadResponse(expect)
		return msg, replyError(err)
	}
	greeting, err := cmd(220, "")
	if err != nil {
		return nil, StageHello, err
	}
	ext, err := cmd(250, "EHLO %s", helo)
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) || (se.Code != 500 && se.Code != 502) {
			return nil, StageHello, err
		}
		// No ESMTP, so no STARTTLS.
		if require {
			return nil, StageTLS, errors.New("the server does not speak ESMTP, so it cannot offer the required STARTTLS")
		}
		return replayGreeting(conn, greeting), "", nil
	}
	offered := false
	for _, line := range strings.Split(ext, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		if require {
			return nil, StageTLS, errors.New("the server does not offer the required STARTTLS")
		}
		// Opportunistic: go on in plain text. RSET-free: EHLO again is allowed.
		return replayGreeting(conn, greeting), "", nil
	}
	if _, err := cmd(220, "STARTTLS"); err != nil {
		return nil, StageTLS, err
	}
	tc := tls.Client(conn, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, StageTLS, err
	}
	return replayGreeting(tc, greeting), "", nil
}

// replayError turns a textproto reply error into go-smtp's, so classify
// reads its code, enhanced status and text.
func replyError(err error) error {
	var pe *textproto.Error
	if !errors.As(err, &pe) {
		return err
	}
	se := &smtp.SMTPError{Code: pe.Code, Message: pe.Msg, EnhancedCode: smtp.NoEnhancedCode}
	if f := strings.SplitN(pe.Msg, " ", 2); len(f) == 2 {
		if e, ok := smtpreply.EnhancedInText(f[0]); ok && e[0] == pe.Code/100 {
			se.EnhancedCode, se.Message = smtp.EnhancedCode(e), f[1]
		}
	}
	return se
}

// greetingConn is a connection whose first reads return a server greeting
// already read from it, so that a go-smtp client can start on a
// connection whose greeting (and, with STARTTLS, whole plain-text
// exchange) happened before it.
type greetingConn struct {
	net.Conn
	pending []byte
}

func replayGreeting(conn net.Conn, greeting string) net.Conn {
	line := strings.SplitN(greeting, "\n", 2)[0]
	return &greetingConn{Conn: conn, pending: []byte("220 " + line + "\r\n")}
}

func (g *greetingConn) Read(b []byte) (int, error) {
	if len(g.pending) > 0 {
		n := copy(b, g.pending)
		g.pending = g.pending[n:]
		return n, nil
	}
	return g.Conn.Read(b)
}

// transact runs one MAIL/RCPT/DATA exchange and reports the stage it ended
// at: from StageAfterData on, message data may have reached the server
// (after which a retry could duplicate).
func (t *SMTPTransport) transact(ctx context.Context, p *pooled, d Delivery) (r Receipt, serr *SendError, stage smtpreply.Stage) {
	if dl, ok := ctx.Deadline(); ok {
		_ = p.conn.SetDeadline(dl)
		p.c.CommandTimeout = time.Until(dl)
		p.c.SubmissionTimeout = time.Until(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := p.c.Mail(d.From, nil); err != nil {
		return Receipt{}, classify(err, StageMail), StageMail
	}
	if err := p.c.Rcpt(d.To, nil); err != nil {
		return Receipt{}, classify(err, StageRcpt), StageRcpt
	}
	w, err := p.c.Data()
	if err != nil {
		return Receipt{}, classify(err, StageData), StageData
	}
	if _, err := w.Write(d.Data); err != nil {
		return Receipt{}, classify(err, StageAfterData), StageAfterData
	}
	handedOver := time.Now() // the final dot goes out now
	resp, err := w.CloseWithResponse()
	if err != nil {
		return Receipt{}, classify(err, StageAfterData), StageAfterData
	}
	_ = p.conn.SetDeadline(time.Time{})
	return Receipt{ProviderID: providerID(resp.StatusText), HandedOver: handedOver}, nil, StageAfterData
}

// providerID extracts a queue id ("queued as ABC123") or keeps the text.
func providerID(status string) string {
	status = strings.TrimSpace(status)
	if i := strings.Index(strings.ToLower(status), "queued as "); i >= 0 {
		if f := strings.Fields(status[i+len("queued as "):]); len(f) > 0 {
			return strings.TrimRight(f[0], ".,;")
		}
	}
	if len(status) > 200 {
		status = status[:200]
	}
	return status
}

// classify maps go-smtp and network errors at a stage of the
// conversation: 4xx temporary, 5xx permanent, a lost connection (also after
// the final dot) temporary; Whose marks the sender's failures.
func classify(err error, stage smtpreply.Stage) *SendError {
	var e *SendError
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e = &SendError{Code: se.Code, Message: se.Message, Temporary: se.Code < 500}
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			e.Enhanced = [3]int(se.EnhancedCode)
		} else if en, ok := smtpreply.EnhancedInText(se.Message); ok && en[0] == se.Code/100 {
			e.Enhanced = en // qmail's "(#5.1.1)"
		}
	} else {
		msg := err.Error()
		if stage == StageAfterData {
			msg = "connection lost after data: " + msg
		}
		e = &SendError{Temporary: true, Message: msg}
	}
	var ne net.Error
	timedOut := errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
	e.Reason, e.AdapterFault = Whose(stage, e.Code, e.Enhanced, e.Message, timedOut)
	return e
}

func (t *SMTPTransport) take(adapter uuid.UUID, sum [32]byte) *pooled {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[adapter]
	for len(list) > 0 {
		p := list[len(list)-1]
		list = list[:len(list)-1]
		t.nidle--
		if p.credsSum == sum && time.Since(p.since) < t.IdleTimeout {
			t.idle[adapter] = list
			return p
		}
		go p.quit()
	}
	delete(t.idle, adapter)
	return nil
}

func (t *SMTPTransport) put(adapter uuid.UUID, p *pooled) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || (t.MaxIdle > 0 && len(t.idle[adapter]) >= t.MaxIdle) || (t.MaxIdleTotal > 0 && t.nidle >= t.MaxIdleTotal) {
		go p.quit()
		return
	}
	p.since = time.Now()
	t.idle[adapter] = append(t.idle[adapter], p)
	t.nidle++
	if t.reaper == nil {
		t.reaper = time.AfterFunc(t.IdleTimeout, t.reap)
	}
}

// reap closes connections idle for IdleTimeout and runs again while any
// remain, so an adapter that stopped sending holds no sockets.
func (t *SMTPTransport) reap() {
	t.mu.Lock()
	var stale []*pooled
	now := time.Now()
	for id, list := range t.idle {
		keep := list[:0]
		for _, p := range list {
			if now.Sub(p.since) >= t.IdleTimeout {
				stale = append(stale, p)
				t.nidle--
			} else {
				keep = append(keep, p)
			}
		}
		if len(keep) == 0 {
			delete(t.idle, id)
		} else {
			t.idle[id] = keep
		}
	}
	t.reaper = nil
	if len(t.idle) > 0 && !t.closed {
		t.reaper = time.AfterFunc(t.IdleTimeout/2, t.reap)
	}
	t.mu.Unlock()
	for _, p := range stale {
		p.quit()
	}
}

// Idle reports how many idle connections the pool holds.
func (t *SMTPTransport) Idle() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nidle
}

// Close closes every idle connection.
func (t *SMTPTransport) Close() error {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.nidle = map[uuid.UUID][]*pooled{}, 0
	t.closed = true
	if t.reaper != nil {
		t.reaper.Stop()
		t.reaper = nil
	}
	t.mu.Unlock()
	for _, list := range idle {
		for _, p := range list {
			p.quit()
		}
	}
	return nil
}
