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
}

// Header parses the message's header block.
func (m Message) Header() textproto.MIMEHeader {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(m.Data))).ReadMIMEHeader()
	return h
}

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

	mu   sync.Mutex
	msgs []Message
	done chan struct{}
}

// Start listens on addr (for example "127.0.0.1:0") and serves until Close.
func Start(addr string, opts Options) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, opts: opts, done: make(chan struct{})}
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

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s    *Sink
	from string
	to   []string
}

func (se *session) AuthMechanisms() []string { return []string{"PLAIN"} }

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error { return nil }), nil
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
	se.s.accept(m)
	return nil
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }
