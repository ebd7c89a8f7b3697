// Package smtpsink is a local SMTP server that accepts and records every
// message: the delivery target of `dripdrop dev` (provider "sink") and of the
// dispatch tests, which speak real SMTP to it.
package smtpsink

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/dripdrop/dripdrop/mailauth"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one accepted message, as received on the wire.
type Message struct {
	From       string
	To         []string
	Data       []byte // after dot-unstuffing, CRLF line endings as sent
	MessageID  string // the Message-ID header, with angle brackets
	Subject    string
	ReceivedAt time.Time
	// Dropped is set when the sink kept the message but never answered.
	Dropped bool
}

// Header parses the message's header block.
func (m Message) Header() textproto.MIMEHeader {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.Data))).ReadMIMEHeader()
	return h
}

// FaultKind selects how the sink answers a message.
type FaultKind int

const (
	// Accept answers 250 (the default).
	Accept FaultKind = iota
	// Reject answers with Code/Enhanced/Text after the final dot.
	Reject
	// Drop reads the whole message, then closes the connection without a
	// reply (the RFC 1047 gap: the sender cannot know it was received).
	Drop
	// Stall waits Delay before answering 250.
	Stall
)

// Fault is the sink's answer to one delivery attempt.
type Fault struct {
	Kind     FaultKind
	Code     int    // Reject: 4xx or 5xx
	Enhanced [3]int // Reject: e.g. {5,1,1}
	Text     string
	Delay    time.Duration // Stall
}

// FaultFunc chooses the answer to the attempt-th delivery (1-based) to rcpt.
type FaultFunc func(rcpt string, attempt int) Fault

// Options configure a Sink.
type Options struct {
	// OnMessage, when set, is called for every accepted message.
	OnMessage func(Message)
	// MaxMessageBytes caps a message (default 10 MiB).
	MaxMessageBytes int64
}

// Sink is a running SMTP sink.
type Sink struct {
	srv  *smtp.Server
	ln   net.Listener
	opts Options

	mu       sync.Mutex
	msgs     []Message
	attempts map[string]int
	faults   FaultFunc
	authFn   AuthFunc
	oauthFn  OAuthFunc
	oauthMx  []string
	auths    int
	done     chan struct{}
}

// AuthFunc decides an AUTH attempt: nil accepts it, an *smtp.SMTPError is
// the reply (for example 535 5.7.8).
type AuthFunc func(username, password string) error

// AuthFailed is the usual reply to wrong credentials.
var AuthFailed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}

// OAuthFunc decides an OAuth2 login (XOAUTH2 or OAUTHBEARER): nil accepts
// it, an *smtp.SMTPError is the final reply.
type OAuthFunc func(username, token string) error

// SetOAuth makes the sink offer OAuth2 logins (mechs: XOAUTH2 and/or
// OAUTHBEARER; none given: XOAUTH2) decided by f, alongside PLAIN; nil
// removes them.
func (s *Sink) SetOAuth(f OAuthFunc, mechs ...string) {
	if len(mechs) == 0 {
		mechs = []string{mailauth.XOAuth2}
	}
	s.mu.Lock()
	s.oauthFn, s.oauthMx = f, mechs
	s.mu.Unlock()
}

// SetAuth installs (or, with nil, removes) AUTH fault injection; by default
// every AUTH succeeds.
func (s *Sink) SetAuth(f AuthFunc) {
	s.mu.Lock()
	s.authFn = f
	s.mu.Unlock()
}

// AuthAttempts returns how many AUTH exchanges the sink has seen.
func (s *Sink) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// SetFaults installs (or, with nil, removes) fault injection.
func (s *Sink) SetFaults(f FaultFunc) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Attempts returns how many deliveries to rcpt were attempted.
func (s *Sink) Attempts(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[strings.ToLower(rcpt)]
}

// Reset forgets recorded messages and attempts.
func (s *Sink) Reset() {
	s.mu.Lock()
	s.msgs, s.attempts, s.auths = nil, map[string]int{}, 0
	s.mu.Unlock()
}

// fault returns the answer for a new attempt to rcpt.
func (s *Sink) fault(rcpt string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(rcpt)
	s.attempts[key]++
	if s.faults == nil {
		return Fault{}
	}
	return s.faults(rcpt, s.attempts[key])
}

// Start listens on addr (for example "127.0.0.1:0") and serves until Close.
func Start(addr string, opts Options) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, opts: opts, done: make(chan struct{}), attempts: map[string]int{}}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "sink.dripdrop.local"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 10 << 20
	if opts.MaxMessageBytes > 0 {
		srv.MaxMessageBytes = opts.MaxMessageBytes
	}
	srv.MaxRecipients = 50
	srv.AllowInsecureAuth = true
	s.srv = srv
	go func() {
		defer close(s.done)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address the sink listens on.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Port is the TCP port the sink listens on.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Messages returns a copy of everything accepted so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Close stops the sink.
func (s *Sink) Close() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Sink) accept(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	if s.opts.OnMessage != nil {
		s.opts.OnMessage(m)
	}
}

type backend struct{ s *Sink }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s    *Sink
	conn *smtp.Conn
	from string
	to   []string
}

func (se *session) AuthMechanisms() []string {
	se.s.mu.Lock()
	defer se.s.mu.Unlock()
	if se.s.oauthFn == nil {
		return []string{"PLAIN"}
	}
	return append([]string{"PLAIN"}, se.s.oauthMx...)
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	se.s.mu.Lock()
	oauth := se.s.oauthFn
	se.s.mu.Unlock()
	check := func(user, token string) error {
		se.s.mu.Lock()
		se.s.auths++
		se.s.mu.Unlock()
		return oauth(user, token)
	}
	switch {
	case oauth != nil && mech == mailauth.XOAuth2:
		return mailauth.NewXOAuth2Server(check), nil
	case oauth != nil && mech == mailauth.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if check(o.Username, o.Token) != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		}), nil
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		se.s.mu.Lock()
		se.s.auths++
		f := se.s.authFn
		se.s.mu.Unlock()
		if f == nil {
			return nil
		}
		return f(username, password)
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	se.from = from
	se.to = nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: se.from, To: append([]string(nil), se.to...), Data: data, ReceivedAt: time.Now()}
	h := m.Header()
	m.MessageID = strings.TrimSpace(h.Get("Message-Id"))
	m.Subject = h.Get("Subject")
	rcpt := ""
	if len(se.to) > 0 {
		rcpt = se.to[0]
	}
	switch f := se.s.fault(rcpt); f.Kind {
	case Reject:
		return &smtp.SMTPError{Code: f.Code, EnhancedCode: smtp.EnhancedCode(f.Enhanced), Message: f.Text}
	case Drop:
		m.Dropped = true
		se.s.accept(m)
		_ = se.conn.Conn().Close()
		return errors.New("connection dropped")
	case Stall:
		time.Sleep(f.Delay)
	}
	se.s.accept(m)
	return nil
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }
