package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Every spelling a tenant might use to reach the operator's network.
var forbiddenHosts = []string{
	// loopback
	"127.0.0.1", "127.255.255.254", "::1", "[::1]", "0:0:0:0:0:0:0:1",
	// RFC 1918
	"10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1", "192.168.255.255",
	// CGNAT (Alibaba Cloud metadata is 100.100.100.200)
	"100.64.0.1", "100.100.100.200", "100.127.255.255",
	// link-local incl. cloud metadata
	"169.254.169.254", "169.254.0.1", "fe80::1", "fe80::1%eth0", "[fe80::1%25eth0]", "febf::1",
	// unique local
	"fc00::1", "fd00:ec2::254", "fdff:ffff::1",
	// unspecified
	"0.0.0.0", "0.1.2.3", "::", "[::]",
	// multicast, broadcast, reserved
	"224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "ff02::1", "ff05::fb",
	// IPv4-mapped and other embeddings
	"::ffff:127.0.0.1", "::ffff:7f00:1", "[::ffff:169.254.169.254]", "::ffff:10.0.0.1", "::127.0.0.1",
	"64:ff9b::a9fe:a9fe", "64:ff9b::10.1.2.3", "2002:7f00:1::1", "2002:a9fe:a9fe::", "2001:0:4136:e378::1",
	// decimal / octal / hex / short integer forms
	"2130706433", "0x7f000001", "0X7F000001", "017700000001", "0177.0.0.1", "0x7f.0.0.1", "0x7f.1", "127.1", "127.0.1",
	"2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "167772161", "010.0.0.1", "3232235521", "0", "0x0",
	"127.0.0.1.", "1.2.3.4.5", "08.08.08.08",
	// internal names
	"localhost", "LOCALHOST", "localhost.", "foo.localhost", "metadata.google.internal", "metadata.google.internal.",
	"metadata", "instance-data", "kubernetes", "redis", "redis.default.svc.cluster.local", "printer.local",
	"db.internal", "router.home.arpa", "nas.lan", "box.localdomain", "",
}

var allowedHosts = []string{
	"smtp.gmail.com", "smtp.acme.example.com", "SMTP.Example.COM.", "8.8.8.8", "1.1.1.1", "2001:4860:4860::8888",
	"[2606:4700:4700::1111]", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "192.169.0.1",
	"169.253.255.255", "223.255.255.255", "1e100.net", "123.example.com", "mail-0x7f.example.org", "::ffff:8.8.8.8",
	"64:ff9b::8.8.8.8", "2002:808:808::1",
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	var g Guard
	for _, h := range forbiddenHosts {
		if err := g.CheckHost(h); !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("CheckHost(%q) = %v, want ErrForbiddenTarget", h, err)
		}
	}
	for _, h := range allowedHosts {
		if err := g.CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q) = %v, want nil", h, err)
		}
	}
	open := Guard{AllowPrivate: true}
	for _, h := range append(forbiddenHosts[:len(forbiddenHosts)-1:len(forbiddenHosts)-1], allowedHosts...) {
		if err := open.CheckHost(h); err != nil {
			t.Errorf("AllowPrivate CheckHost(%q) = %v, want nil", h, err)
		}
	}
	if err := open.CheckHost(""); err == nil {
		t.Error("empty host accepted with AllowPrivate")
	}
}

func TestLegacyIPv4(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "017700000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"127.1": "127.0.0.1", "127.0.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "10.0x10203": "10.1.2.3",
		"0xa9fea9fe": "169.254.169.254", "4294967295": "255.255.255.255", "1.2.3.4": "1.2.3.4",
	} {
		a, ok := parseLegacyIPv4(s)
		if !ok || a.String() != want {
			t.Errorf("parseLegacyIPv4(%q) = %v %v, want %s", s, a, ok, want)
		}
	}
	for _, s := range []string{"4294967296", "1.2.3.256", "1.16777216", "1.2.65536", "256.1", "0x", "1..2", "08", "a.b", "1.2.3.4.5", "example.com", ""} {
		if a, ok := parseLegacyIPv4(s); ok {
			t.Errorf("parseLegacyIPv4(%q) = %v, want no parse", s, a)
		}
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	var g Guard
	for _, addr := range []string{
		"127.0.0.1:25", "[::1]:25", "10.0.0.1:587", "169.254.169.254:80", "[fe80::1%eth0]:25", "[::ffff:127.0.0.1]:25",
		"[fd00::1]:25", "0.0.0.0:25", "[::]:25", "224.0.0.1:25", "100.100.100.200:80", "not-an-address:25", "1.2.3.4",
	} {
		if err := g.Control("tcp", addr, nil); !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("Control(%q) = %v, want ErrForbiddenTarget", addr, err)
		}
		if err := (Guard{AllowPrivate: true}).Control("tcp", addr, nil); err != nil {
			t.Errorf("AllowPrivate Control(%q) = %v", addr, err)
		}
	}
	for _, addr := range []string{"8.8.8.8:25", "[2001:4860:4860::8888]:587", "[::ffff:8.8.8.8]:25"} {
		if err := g.Control("tcp", addr, nil); err != nil {
			t.Errorf("Control(%q) = %v, want nil", addr, err)
		}
	}
}

func TestCheckSMTPPort(t *testing.T) {
	t.Parallel()
	var g Guard
	for _, p := range []int{25, 465, 587, 2525} {
		if err := g.CheckSMTPPort(p); err != nil {
			t.Errorf("default port %d: %v", p, err)
		}
	}
	for _, p := range []int{0, 22, 80, 443, 2526, 3306, 5432, 6379, 11211, 65535, -1, 70000} {
		if err := g.CheckSMTPPort(p); !errors.Is(err, ErrForbiddenTarget) {
			t.Errorf("port %d: %v, want ErrForbiddenTarget", p, err)
		}
	}
	custom := Guard{SMTPPorts: []int{1025}}
	if custom.CheckSMTPPort(1025) != nil || custom.CheckSMTPPort(25) == nil {
		t.Error("custom port list not honoured")
	}
	// AllowPrivate does not open other ports: the port list is separate.
	if (Guard{AllowPrivate: true}).CheckSMTPPort(6379) == nil {
		t.Error("AllowPrivate opened port 6379")
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	g, err := FromEnv(env(nil))
	if err != nil || g.AllowPrivate || len(g.SMTPPorts) != 0 || len(g.Ports()) != 4 {
		t.Fatalf("empty env: %+v %v", g, err)
	}
	g, err = FromEnv(env(map[string]string{EnvAllowPrivate: "true", EnvSMTPPorts: " 25, 1025 ,25"}))
	if err != nil || !g.AllowPrivate || len(g.SMTPPorts) != 2 || g.SMTPPorts[1] != 1025 {
		t.Fatalf("set env: %+v %v", g, err)
	}
	for _, m := range []map[string]string{{EnvAllowPrivate: "yes please"}, {EnvSMTPPorts: "25,smtp"}, {EnvSMTPPorts: "0"}, {EnvSMTPPorts: "65536"}, {EnvSMTPPorts: ","}} {
		if _, err := FromEnv(env(m)); err == nil {
			t.Errorf("FromEnv(%v) accepted", m)
		}
	}
}

// A name that passes CheckHost but resolves to loopback at dial time is
// refused by the dialer (the DNS-rebinding case); "localhost" (from /etc/hosts) and
// a custom resolver answering 127.0.0.1 for a public-looking name stand in.
func TestDialerRefusesResolvedPrivateAddress(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A resolver whose DNS server answers every A query with 127.0.0.1.
	rebind := &net.Resolver{PreferGo: true, Dial: fakeDNS(t, netip.MustParseAddr("127.0.0.1"))}
	var g Guard
	if err := g.CheckHost("rebind.example.com"); err != nil {
		t.Fatalf("the name itself looks public: %v", err)
	}
	for _, d := range []*net.Dialer{g.Dialer(net.Dialer{}), g.Dialer(net.Dialer{Resolver: rebind})} {
		for _, host := range []string{"127.0.0.1", "localhost", "rebind.example.com"} {
			if host == "rebind.example.com" && d.Resolver == nil {
				continue
			}
			c, err := d.DialContext(ctx, "tcp4", net.JoinHostPort(host, port))
			if err == nil {
				_ = c.Close()
				t.Errorf("dial %s succeeded", host)
				continue
			}
			if !errors.Is(err, ErrForbiddenTarget) {
				t.Errorf("dial %s: %v, want ErrForbiddenTarget", host, err)
			}
		}
	}
	// The base dialer's own Control still runs, and AllowPrivate connects.
	called := false
	open := Guard{AllowPrivate: true}.Dialer(net.Dialer{Resolver: rebind, Control: func(string, string, syscall.RawConn) error { called = true; return nil }})
	c, err := open.DialContext(ctx, "tcp4", net.JoinHostPort("rebind.example.com", port))
	if err != nil {
		t.Fatalf("AllowPrivate dial: %v", err)
	}
	_ = c.Close()
	if !called {
		t.Error("base Control not called")
	}
	ctxCalled := false
	withCtx := g.Dialer(net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error { ctxCalled = true; return nil }})
	if _, err := withCtx.DialContext(ctx, "tcp4", net.JoinHostPort("127.0.0.1", port)); !errors.Is(err, ErrForbiddenTarget) || !ctxCalled {
		t.Errorf("ControlContext base: err %v called %v", err, ctxCalled)
	}
}

// fakeDNS returns a resolver Dial that serves one answer for every A query
// over an in-memory connection (the Go resolver speaks DNS over it).
func fakeDNS(t *testing.T, answer netip.Addr) func(context.Context, string, string) (net.Conn, error) {
	return func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer func() { _ = server.Close() }()
			buf := make([]byte, 1500)
			for {
				n, err := server.Read(buf)
				if err != nil {
					return
				}
				if resp := dnsAnswer(buf[:n], answer); resp != nil {
					if _, err := server.Write(resp); err != nil {
						return
					}
				}
			}
		}()
		return &packetPipe{client}, nil
	}
}

// packetPipe marks the pipe as a packet conn so the resolver uses UDP framing.
type packetPipe struct{ net.Conn }

func (packetPipe) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errors.ErrUnsupported }
func (packetPipe) WriteTo([]byte, net.Addr) (int, error)  { return 0, errors.ErrUnsupported }

// dnsAnswer builds a response to a single-question query: an A record for A
// queries, no records otherwise.
func dnsAnswer(q []byte, a netip.Addr) []byte {
	if len(q) < 12 {
		return nil
	}
	// Find the end of the question name.
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	qend := i + 5
	qtype := int(q[i+1])<<8 | int(q[i+2])
	resp := append([]byte{}, q[:qend]...)
	resp[2] = 0x81 // QR, RD
	resp[3] = 0x80 // RA, NOERROR
	resp[6], resp[7] = 0, 0
	resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0
	if qtype == 1 {
		resp[7] = 1
		ip := a.As4()
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ip[0], ip[1], ip[2], ip[3])
	}
	return resp
}

// FuzzCheckHost: never panics; whatever denotes an address (standard or
// legacy spelling) in a forbidden range is refused.
func FuzzCheckHost(f *testing.F) {
	for _, h := range append(forbiddenHosts, allowedHosts...) {
		f.Add(h)
	}
	var g Guard
	f.Fuzz(func(t *testing.T, h string) {
		err := g.CheckHost(h)
		if a, perr := netip.ParseAddr(h); perr == nil && forbidden(a) != "" && err == nil {
			t.Fatalf("%q (%s) accepted", h, a)
		}
		if _, ok := parseLegacyIPv4(h); ok && err == nil {
			if _, perr := netip.ParseAddr(h); perr != nil {
				t.Fatalf("legacy numeric form %q accepted", h)
			}
		}
	})
}
