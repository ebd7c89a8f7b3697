// Package smtpd is dripdrop's inbound SMTP listener (docs/ingest.md): a go-smtp
// server that accepts mail only for addresses the engine sends from (an
// adapter's from_address), takes the tenant from that recipient — never from
// the message — and feeds each message through the same pipeline as
// POST /v1/inbound/raw.
package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/ingest"
)

// Store is what the listener needs from the database.
type Store interface {
	InboundTenants(ctx context.Context, address string) ([]ingest.InboundRecipient, error)
	Ingest(ctx context.Context, tenant string, in ingest.InboundInput) (ingest.InboundResult, error)
	Now() time.Time
}

// Config configures the listener.
type Config struct {
	Addr  string // host:port to listen on
	Store Store
	// Domain is announced in the greeting (default "dripdrop").
	Domain string
	// TLSConfig enables STARTTLS when set.
	TLSConfig *tls.Config
	Logger    *slog.Logger
	// Limits (defaults: 10 MiB, 50 recipients, 60 s read and write
	// timeouts, 30 s for the database work of one message).
	MaxMessageBytes int64
	MaxRecipients   int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	StoreTimeout    time.Duration
}

// Server is a running listener.
type Server struct {
	srv *smtp.Server
	ln  net.Listener
	cfg Config
}

// Listen binds the address; Serve accepts connections.
func Listen(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("smtpd: a store is required")
	}
	if cfg.Domain == "" {
		cfg.Domain = "dripdrop"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = ingest.MaxRawSize
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 50
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 30 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, cfg: cfg}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = cfg.Domain
	s.srv.MaxMessageBytes = cfg.MaxMessageBytes
	s.srv.MaxRecipients = cfg.MaxRecipients
	s.srv.ReadTimeout = cfg.ReadTimeout
	s.srv.WriteTimeout = cfg.WriteTimeout
	s.srv.TLSConfig = cfg.TLSConfig
	s.srv.ErrorLog = slogAdapter{cfg.Logger}
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts connections until Close or Shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for open conversations to end.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close stops the listener and closes every connection.
func (s *Server) Close() error { return s.srv.Close() }

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) {
	a.l.Warn("inbound smtp", "detail", strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (a slogAdapter) Println(v ...any) {
	a.l.Warn("inbound smtp", "detail", strings.TrimSpace(fmt.Sprintln(v...)))
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, tenants: map[string]uuid.UUID{}}, nil
}

type session struct {
	s       *Server
	tenants map[string]uuid.UUID // tenant → the adapter first addressed
	order   []string
}

var (
	errNoSuchUser = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such recipient here"}
	errTemporary  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure, try again later"}
	errMalformed  = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message is not a readable RFC 5322 message"}
)

func (se *session) Mail(string, *smtp.MailOptions) error { return nil }

// Rcpt accepts only addresses that are an adapter's from_address of exactly
// one tenant.
func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), se.s.cfg.StoreTimeout)
	defer cancel()
	rs, err := se.s.cfg.Store.InboundTenants(ctx, to)
	if err != nil {
		se.s.cfg.Logger.Warn("inbound smtp: recipient lookup failed", "err", err)
		return errTemporary
	}
	tenant := ""
	for _, r := range rs {
		if tenant != "" && r.TenantKey != tenant {
			return errNoSuchUser // ambiguous: the address belongs to more than one tenant
		}
		tenant = r.TenantKey
	}
	if tenant == "" {
		return errNoSuchUser
	}
	if _, ok := se.tenants[tenant]; !ok {
		se.tenants[tenant] = rs[0].AdapterID
		se.order = append(se.order, tenant)
	}
	return nil
}

// Data reads the message (the server enforces the size limit) and ingests
// it once for each tenant addressed.
func (se *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	m, err := ingest.ParseRaw(buf.Bytes(), se.s.cfg.Store.Now())
	if err != nil {
		return errMalformed
	}
	ctx, cancel := context.WithTimeout(context.Background(), se.s.cfg.StoreTimeout)
	defer cancel()
	for _, tenant := range se.order {
		adapter := se.tenants[tenant]
		res, err := se.s.cfg.Store.Ingest(ctx, tenant, ingest.InboundInput{AdapterID: &adapter, Message: m})
		if err != nil {
			se.s.cfg.Logger.Warn("inbound smtp: ingest failed", "tenant_key", tenant, "err", err)
			return errTemporary
		}
		se.s.cfg.Logger.Info("inbound message", "tenant_key", tenant, "id", res.ID, "intent", res.Intent, "correlation", res.Correlation, "duplicate", res.Duplicate)
	}
	return nil
}

func (se *session) Reset() {
	se.tenants, se.order = map[string]uuid.UUID{}, nil
}

func (se *session) Logout() error { return nil }
