package dispatch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/internal/netguard"
)

// Delivery is one message to hand to an adapter.
type Delivery struct {
	AdapterID   uuid.UUID
	Credentials dripdrop.SMTPCredentials
	From        string // envelope sender
	To          string // envelope recipient
	Data        []byte // the built message (CRLF)
}

// SendError is a failed delivery, classified.
type SendError struct {
	Temporary bool
	Code      int    // SMTP reply code, 0 when there was no reply
	Enhanced  [3]int // RFC 3463 status, zero when absent
	Message   string
	// AdapterFault marks a failure of the sender rather than the recipient
	// (SPEC §6.1 "Whose failure is it?"); Reason says which: connection,
	// tls, auth, policy, sender_rejected, server_unavailable or stalled.
	AdapterFault bool
	Reason       string
}

// SMTP conversation stages, for deciding whose failure an error is.
const (
	StageConnect   = "connect"
	StageTLS       = "tls"
	StageHello     = "helo"
	StageAuth      = "auth"
	StageMail      = "mail"
	StageRcpt      = "rcpt"
	StageData      = "data"
	StageAfterData = "after_data"
)

// Whose decides whether a failure at stage is the sender's (SPEC §6.1) and
// names the reason. code and enhanced are the server's reply (0 when there
// was none: a network error, or a timeout when timedOut). Everything before
// MAIL FROM, every MAIL FROM rejection, a 421 anywhere and a connection
// lost or stalled before the data went out are the adapter's; replies to
// RCPT and DATA about the recipient (5.1.x, 5.2.x, 4.2.2 …) are the
// recipient's, and so is a connection lost after the data (the message may
// have arrived: it is retried with the same Message-ID).
func Whose(stage string, code int, enhanced [3]int, timedOut bool) (reason string, adapter bool) {
	switch {
	case stage == StageConnect:
		return "connection", true
	case stage == StageTLS:
		return "tls", true
	case stage == StageAuth:
		return "auth", true
	case code == 421:
		return "server_unavailable", true
	case stage == StageAfterData:
		return "", false
	case code == 0 && timedOut:
		return "stalled", true
	case code == 0 || stage == StageHello:
		return "connection", true
	case stage == StageMail && enhanced[1] == 7:
		return "policy", true
	case stage == StageMail:
		return "sender_rejected", true
	}
	return "", false
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
	// (SPEC §10); the zero value refuses them, AllowPrivate permits them.
	Guard netguard.Guard

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
func (t *SMTPTransport) Send(ctx context.Context, d Delivery) (Receipt, error) {
	sum := credsSum(d.Credentials)
	if p := t.take(d.AdapterID, sum); p != nil {
		r, err, sent := t.transact(ctx, p, d)
		if err == nil {
			t.put(d.AdapterID, p)
			return r, nil
		}
		_ = p.c.Close()
		if sent {
			return Receipt{}, err
		}
		// The pooled connection died before any data went out: redial once.
	}
	p, err := t.dial(ctx, d, sum)
	if err != nil {
		return Receipt{}, err
	}
	r, err, _ := t.transact(ctx, p, d)
	if err != nil {
		_ = p.c.Close()
		return Receipt{}, err
	}
	t.put(d.AdapterID, p)
	return r, nil
}

func (t *SMTPTransport) dial(ctx context.Context, d Delivery, sum [32]byte) (*pooled, error) {
	cr := d.Credentials
	addr := net.JoinHostPort(cr.Host, strconv.Itoa(cr.Port))
	dialer := t.Guard.Dialer(net.Dialer{})
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &SendError{Temporary: true, Message: "connect " + addr + ": " + err.Error(), AdapterFault: true, Reason: "connection"}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tlsConf := &tls.Config{ServerName: cr.Host, MinVersion: tls.VersionTLS12}
	if t.TLSConfig != nil {
		tlsConf = t.TLSConfig.Clone()
		tlsConf.ServerName = cr.Host
	}
	var c *smtp.Client
	switch cr.TLS {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tlsConf))
	case "none":
		c = smtp.NewClient(conn)
	default: // starttls (opportunistic) or require_starttls
		c, err = smtp.NewClientStartTLS(conn, tlsConf)
		if err != nil {
			if cr.TLS == "require_starttls" || !strings.Contains(err.Error(), "doesn't support STARTTLS") {
				return nil, classify(err, StageTLS)
			}
			// Not offered: continue in plain text on a fresh connection.
			if conn, err = dialer.DialContext(ctx, "tcp", addr); err != nil {
				return nil, &SendError{Temporary: true, Message: "connect " + addr + ": " + err.Error(), AdapterFault: true, Reason: "connection"}
			}
			if dl, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(dl)
			}
			c = smtp.NewClient(conn)
		}
	}
	fail := func(err error, stage string) (*pooled, error) {
		_ = c.Close()
		return nil, classify(err, stage)
	}
	helo := cr.HELO
	if helo == "" {
		helo = Domain(d.From)
	}
	if err := c.Hello(helo); err != nil {
		return fail(err, StageHello)
	}
	if cr.Username != "" {
		var auth sasl.Client
		switch {
		case c.SupportsAuth("PLAIN"):
			auth = sasl.NewPlainClient("", cr.Username, cr.Password)
		case c.SupportsAuth("LOGIN"):
			auth = sasl.NewLoginClient(cr.Username, cr.Password)
		default:
			_ = c.Close()
			return nil, &SendError{Message: "the server offers neither AUTH PLAIN nor AUTH LOGIN", AdapterFault: true, Reason: "auth"}
		}
		if err := c.Auth(auth); err != nil {
			return fail(err, StageAuth)
		}
	}
	return &pooled{c: c, conn: conn, credsSum: sum, since: time.Now()}, nil
}

// transact runs one MAIL/RCPT/DATA exchange. sent reports whether message
// data may have reached the server (after which a retry could duplicate).
func (t *SMTPTransport) transact(ctx context.Context, p *pooled, d Delivery) (r Receipt, err error, sent bool) {
	if dl, ok := ctx.Deadline(); ok {
		_ = p.conn.SetDeadline(dl)
		p.c.CommandTimeout = time.Until(dl)
		p.c.SubmissionTimeout = time.Until(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = p.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := p.c.Mail(d.From, nil); err != nil {
		return Receipt{}, classify(err, StageMail), false
	}
	if err := p.c.Rcpt(d.To, nil); err != nil {
		return Receipt{}, classify(err, StageRcpt), false
	}
	w, err := p.c.Data()
	if err != nil {
		return Receipt{}, classify(err, StageData), false
	}
	if _, err := w.Write(d.Data); err != nil {
		return Receipt{}, classify(err, StageAfterData), true
	}
	handedOver := time.Now() // the final dot goes out now
	resp, err := w.CloseWithResponse()
	if err != nil {
		return Receipt{}, classify(err, StageAfterData), true
	}
	_ = p.conn.SetDeadline(time.Time{})
	return Receipt{ProviderID: providerID(resp.StatusText), HandedOver: handedOver}, nil, true
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
func classify(err error, stage string) *SendError {
	var e *SendError
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e = &SendError{Code: se.Code, Message: se.Message, Temporary: se.Code < 500}
		if se.EnhancedCode != smtp.NoEnhancedCode {
			e.Enhanced = [3]int(se.EnhancedCode)
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
	e.Reason, e.AdapterFault = Whose(stage, e.Code, e.Enhanced, timedOut)
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
