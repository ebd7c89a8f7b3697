package dispatch

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
)

// replyServer is an in-process go-smtp server whose RCPT and DATA replies
// a test chooses, counting what it was asked: connections, RCPTs per
// address, DATA transactions and the EHLO names sessions began with.
type replyServer struct {
	srv *smtp.Server
	ln  net.Listener

	mu        sync.Mutex
	rcptReply func(to string) error
	dataReply func() error
	conns     []*smtp.Conn
	accepted  int
	rcpts     map[string]int
	datas     int
	delivered int
	helos     []string
}

type countingListener struct {
	net.Listener
	s *replyServer
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.s.mu.Lock()
		l.s.accepted++
		l.s.mu.Unlock()
	}
	return c, err
}

func startReplyServer(t *testing.T, tlsConf *tls.Config) *replyServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &replyServer{rcpts: map[string]int{}}
	s.ln = countingListener{ln, s}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "mx.test.example"
	s.srv.AllowInsecureAuth = true
	s.srv.TLSConfig = tlsConf
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	done := make(chan struct{})
	go func() { defer close(done); _ = s.srv.Serve(s.ln) }()
	t.Cleanup(func() { _ = s.srv.Close(); <-done })
	return s
}

func (s *replyServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *replyServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, c)
	s.helos = append(s.helos, c.Hostname())
	return &replySession{s: s}, nil
}

// dropAll closes every connection from the server's side.
func (s *replyServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Conn().Close()
	}
}

func (s *replyServer) counts(to string) (conns, rcpts, datas, delivered int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted, s.rcpts[to], s.datas, s.delivered
}

type replySession struct{ s *replyServer }

func (r *replySession) Mail(string, *smtp.MailOptions) error { return nil }
func (r *replySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	r.s.mu.Lock()
	r.s.rcpts[to]++
	f := r.s.rcptReply
	r.s.mu.Unlock()
	if f != nil {
		return f(to)
	}
	return nil
}
func (r *replySession) Data(rd io.Reader) error {
	_, _ = io.Copy(io.Discard, rd)
	r.s.mu.Lock()
	r.s.datas++
	f := r.s.dataReply
	r.s.mu.Unlock()
	if f != nil {
		if err := f(); err != nil {
			return err
		}
	}
	r.s.mu.Lock()
	r.s.delivered++
	r.s.mu.Unlock()
	return nil
}
func (r *replySession) Reset()        {}
func (r *replySession) Logout() error { return nil }

func replyDelivery(port int, adapter uuid.UUID, to string) Delivery {
	m := baseMessage()
	m.To = to
	raw, _ := m.Build()
	return Delivery{AdapterID: adapter, Credentials: dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: port, TLS: "none"},
		From: "ada@acme.example.com", To: to, Data: raw}
}

func reject(code int, enh smtp.EnhancedCode, text string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: text}
}

func sendErr(t *testing.T, err error) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *SendError", err)
	}
	return se
}

// On a reused connection, a server's reply to RCPT or DATA is its answer:
// classified once, the connection reset and kept, the recipient asked once.
func TestSMTPTransportReplyOnReusedConnection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		rcpt      error
		data      error
		temporary bool
		bounce    bool
		adapter   string
		datas     int // DATA transactions the failing send made
	}{
		{name: "550 5.1.1 at RCPT", rcpt: reject(550, smtp.EnhancedCode{5, 1, 1}, "<gone@example.com>: Recipient address rejected: User unknown"), bounce: true},
		{name: "451 4.7.1 at RCPT", rcpt: reject(451, smtp.EnhancedCode{4, 7, 1}, "<bob@example.com>: Recipient address rejected: Greylisted, try again later"), temporary: true},
		{name: "554 at the end of DATA", data: reject(554, smtp.EnhancedCode{5, 6, 0}, "Message content rejected"), datas: 1},
		{name: "sender rejected at RCPT", rcpt: reject(553, smtp.EnhancedCode{5, 7, 1}, "<ada@acme.example.com>: Sender address rejected: not owned by user bob"), adapter: "sender_rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startReplyServer(t, nil)
			tr := loopbackTransport()
			defer tr.Close()
			adapter := uuid.New()
			if _, err := tr.Send(context.Background(), replyDelivery(s.port(), adapter, "first@example.com")); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			s.rcptReply = func(to string) error {
				if to == "target@example.com" {
					return c.rcpt
				}
				return nil
			}
			s.dataReply = func() error { return c.data }
			s.mu.Unlock()
			_, err := tr.Send(context.Background(), replyDelivery(s.port(), adapter, "target@example.com"))
			se := sendErr(t, err)
			if se.Temporary != c.temporary || se.Bounce() != c.bounce || se.AdapterFault != (c.adapter != "") || se.Reason != c.adapter {
				t.Fatalf("temporary=%v bounce=%v adapter=%v reason=%q (%v)", se.Temporary, se.Bounce(), se.AdapterFault, se.Reason, se)
			}
			conns, rcpts, datas, _ := s.counts("target@example.com")
			if rcpts != 1 || conns != 1 || datas-1 != c.datas {
				t.Fatalf("the failing send made %d connections in all, asked RCPT %d times and ran %d DATA; want 1, 1 and %d", conns, rcpts, datas-1, c.datas)
			}
			if tr.Idle() != 1 {
				t.Fatalf("%d idle connections after the reply, want the connection kept", tr.Idle())
			}
			s.mu.Lock()
			s.dataReply = nil
			s.mu.Unlock()
			if _, err := tr.Send(context.Background(), replyDelivery(s.port(), adapter, "next@example.com")); err != nil {
				t.Fatal(err)
			}
			if conns, _, _, delivered := s.counts(""); conns != 1 || delivered != 2 {
				t.Fatalf("after the reply: %d connections, %d delivered; want the kept connection reused (1) and 2", conns, delivered)
			}
		})
	}
}

// A 421 means the server is closing: the connection is not pooled.
func TestSMTPTransport421IsNotPooled(t *testing.T) {
	t.Parallel()
	s := startReplyServer(t, nil)
	tr := loopbackTransport()
	defer tr.Close()
	adapter := uuid.New()
	s.rcptReply = func(string) error { return reject(421, smtp.EnhancedCode{4, 7, 0}, "Too many connections, closing") }
	se := sendErr(t, func() error {
		_, err := tr.Send(context.Background(), replyDelivery(s.port(), adapter, "bob@example.com"))
		return err
	}())
	if !se.AdapterFault || se.Reason != "server_unavailable" {
		t.Fatalf("421: adapter=%v reason=%q", se.AdapterFault, se.Reason)
	}
	if _, rcpts, _, _ := s.counts("bob@example.com"); rcpts != 1 || tr.Idle() != 0 {
		t.Fatalf("421: %d RCPTs, %d idle connections; want 1 and 0", rcpts, tr.Idle())
	}
}

// A pooled connection the server closed while it was idle fails with no
// reply: it is redialled once and the message delivered exactly once.
func TestSMTPTransportRedialsAConnectionClosedWhileIdle(t *testing.T) {
	t.Parallel()
	s := startReplyServer(t, nil)
	tr := loopbackTransport()
	defer tr.Close()
	adapter := uuid.New()
	if _, err := tr.Send(context.Background(), replyDelivery(s.port(), adapter, "first@example.com")); err != nil {
		t.Fatal(err)
	}
	s.dropAll()
	if _, err := tr.Send(context.Background(), replyDelivery(s.port(), adapter, "bob@example.com")); err != nil {
		t.Fatalf("after the idle connection was closed: %v", err)
	}
	conns, rcpts, _, delivered := s.counts("bob@example.com")
	if conns != 2 || rcpts != 1 || delivered != 2 {
		t.Fatalf("%d connections, %d RCPTs for the second message, %d delivered; want 2, 1, 2", conns, rcpts, delivered)
	}
}

// testCA is a private certificate authority made for a test, with a leaf
// certificate for 127.0.0.1 and localhost.
type testCA struct {
	pem     string // the CA certificate, PEM
	leaf    tls.Certificate
	leafPEM []byte // the leaf certificate, PEM
	keyPEM  []byte // the leaf's key, PEM
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dripdrop test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay.test.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost", "relay.test.example"}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca := testCA{
		pem:     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		leafPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	if ca.leaf, err = tls.X509KeyPair(ca.leafPEM, ca.keyPEM); err != nil {
		t.Fatal(err)
	}
	return ca
}

func (ca testCA) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{ca.leaf}, MinVersion: tls.VersionTLS12}
}

// The adapter's HELO name is said on every EHLO, before and after
// STARTTLS; without one, the from domain is.
func TestSMTPTransportSaysTheConfiguredHELO(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	for _, c := range []struct{ helo, want string }{{"mta.acme.example", "mta.acme.example"}, {"", "acme.example.com"}} {
		s := startReplyServer(t, ca.serverConfig())
		tr := loopbackTransport()
		d := replyDelivery(s.port(), uuid.New(), "bob@example.com")
		d.Credentials.TLS, d.Credentials.HELO, d.Credentials.TLSCAPEM = "require_starttls", c.helo, ca.pem
		if _, err := tr.Send(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		_ = tr.Close()
		s.mu.Lock()
		helos := append([]string(nil), s.helos...)
		s.mu.Unlock()
		if len(helos) != 2 || helos[0] != c.want || helos[1] != c.want {
			t.Errorf("HELO %q: the server saw sessions begin with EHLO %q, want %q before and after STARTTLS", c.helo, helos, c.want)
		}
		res := Verify(context.Background(), d.Credentials, d.From, nil, nil)
		s.mu.Lock()
		helos = append([]string(nil), s.helos[2:]...)
		s.mu.Unlock()
		if !res.OK || len(helos) != 2 || helos[0] != c.want || helos[1] != c.want {
			t.Errorf("verify, HELO %q: ok=%v (%+v), EHLO %q, want %q twice", c.helo, res.OK, res, helos, c.want)
		}
	}
}

// TLS trust is per adapter: a relay with a private CA is refused (reason
// tls, the adapter's failure) until its CA is given as tls_ca_pem, or
// checking is switched off with tls_insecure_skip_verify.
func TestSMTPTransportTLSTrust(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s := startReplyServer(t, ca.serverConfig())
	cases := []struct {
		name, mode, caPEM string
		skip              bool
		ok                bool
	}{
		{"starttls untrusted", "starttls", "", false, false},
		{"require_starttls untrusted", "require_starttls", "", false, false},
		{"starttls trusted by tls_ca_pem", "starttls", ca.pem, false, true},
		{"starttls skip verify", "starttls", "", true, true},
		{"another CA is not trusted", "starttls", newTestCA(t).pem, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := loopbackTransport()
			defer tr.Close()
			d := replyDelivery(s.port(), uuid.New(), "bob@example.com")
			d.Credentials.TLS, d.Credentials.TLSCAPEM, d.Credentials.TLSInsecureSkipVerify = c.mode, c.caPEM, c.skip
			_, err := tr.Send(context.Background(), d)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				se := sendErr(t, err)
				if !se.AdapterFault || se.Reason != "tls" || !strings.Contains(se.Message, "certificate") {
					t.Fatalf("adapter=%v reason=%q message=%q, want the adapter's tls failure", se.AdapterFault, se.Reason, se.Message)
				}
			}
			res := Verify(context.Background(), d.Credentials, d.From, nil, nil)
			if res.OK != c.ok || (!c.ok && res.FailedStage != "starttls") {
				t.Fatalf("verify: ok=%v failed stage %q, want ok=%v", res.OK, res.FailedStage, c.ok)
			}
		})
	}
}

// Implicit TLS with a private CA: untrusted is a tls failure, not a
// connection one.
func TestSMTPTransportImplicitTLSTrust(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ca.serverConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := &replyServer{rcpts: map[string]int{}, ln: ln}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "mx.test.example"
	done := make(chan struct{})
	go func() { defer close(done); _ = s.srv.Serve(ln) }()
	defer func() { _ = s.srv.Close(); <-done }()
	tr := loopbackTransport()
	defer tr.Close()
	d := replyDelivery(s.port(), uuid.New(), "bob@example.com")
	d.Credentials.TLS = "tls"
	if se := sendErr(t, func() error { _, err := tr.Send(context.Background(), d); return err }()); se.Reason != "tls" || !se.AdapterFault {
		t.Fatalf("untrusted implicit TLS: adapter=%v reason=%q", se.AdapterFault, se.Reason)
	}
	d.Credentials.TLSCAPEM = ca.pem
	if _, err := tr.Send(context.Background(), d); err != nil {
		t.Fatalf("trusted implicit TLS: %v", err)
	}
}
