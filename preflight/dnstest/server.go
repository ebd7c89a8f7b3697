// Package dnstest serves fixture zones from a real DNS server
// (github.com/miekg/dns) on loopback, for tests: records from zone-file
// lines, names that answer SERVFAIL, names that never answer (timeouts),
// and a count of the questions asked. Nothing here touches the network.
package dnstest

import (
	"crypto/x509"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an authoritative-and-recursive-looking DNS server for tests.
type Server struct {
	Addr string // "127.0.0.1:port", UDP and TCP

	mu       sync.Mutex
	rrs      map[string][]dns.RR // owner (fqdn, lowercase) → records
	servfail map[string]bool
	silent   map[string]bool
	asked    map[string]int // "name TYPE" → count
	udp, tcp *dns.Server
}

// Start serves the records (zone-file lines: "example.com. 300 IN MX 10
// mx.example.com.") until the test ends.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}, servfail: map[string]bool{}, silent: map[string]bool{}, asked: map[string]int{}}
	s.Add(t, records...)
	// UDP and TCP on one port: a free UDP port's TCP twin may be taken by
	// another process, so try a few.
	var pc net.PacketConn
	var l net.Listener
	var err error
	for try := 0; ; try++ {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: l, Handler: h}
	var started sync.WaitGroup
	started.Add(2)
	s.udp.NotifyStartedFunc = started.Done
	s.tcp.NotifyStartedFunc = started.Done
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	started.Wait()
	t.Cleanup(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
	})
	return s
}

// Add adds records.
func (s *Server) Add(t testing.TB, records ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range records {
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			t.Fatalf("dnstest: bad record %q: %v", line, err)
		}
		owner := strings.ToLower(rr.Header().Name)
		s.rrs[owner] = append(s.rrs[owner], rr)
	}
}

// ServFail makes every question about name answer SERVFAIL.
func (s *Server) ServFail(name string) {
	s.mu.Lock()
	s.servfail[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Silent makes every question about name go unanswered (a timeout).
func (s *Server) Silent(name string) {
	s.mu.Lock()
	s.silent[dns.Fqdn(strings.ToLower(name))] = true
	s.mu.Unlock()
}

// Asked returns how often "name TYPE" was asked (e.g. "example.com MX").
func (s *Server) Asked(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asked[strings.ToLower(strings.TrimSuffix(name, "."))+" "+qtype]
}

// Total returns how many questions were asked.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.asked {
		n += c
	}
	return n
}

var soa = func() dns.RR {
	rr, _ := dns.NewRR(". 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60")
	return rr
}()

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	s.asked[strings.TrimSuffix(name, ".")+" "+dns.TypeToString[q.Qtype]]++
	silent, fail := s.silent[name], s.servfail[name]
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	switch {
	case silent:
		s.mu.Unlock()
		return // never answer: the client times out
	case fail:
		m.Rcode = dns.RcodeServerFailure
	default:
		s.answer(m, name, q.Qtype, 0)
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}

// answer fills m for (name, qtype), following CNAMEs inside the fixture.
func (s *Server) answer(m *dns.Msg, name string, qtype uint16, depth int) {
	rrs, exists := s.rrs[name]
	var cname dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype {
			m.Answer = append(m.Answer, dns.Copy(rr))
		} else if rr.Header().Rrtype == dns.TypeCNAME {
			cname = rr
		}
	}
	if len(m.Answer) > 0 && m.Answer[len(m.Answer)-1].Header().Rrtype == qtype {
		return
	}
	if cname != nil && depth < 8 {
		m.Answer = append(m.Answer, dns.Copy(cname))
		s.answer(m, strings.ToLower(cname.(*dns.CNAME).Target), qtype, depth+1)
		return
	}
	if !exists && !s.hasBelow(name) {
		m.Rcode = dns.RcodeNameError
	}
	ns := dns.Copy(soa)
	m.Ns = append(m.Ns, ns)
}

// hasBelow reports whether a name has descendants (an empty non-terminal
// answers NOERROR/NODATA, not NXDOMAIN).
func (s *Server) hasBelow(name string) bool {
	for owner := range s.rrs {
		if strings.HasSuffix(owner, "."+name) {
			return true
		}
	}
	return false
}

// DKIMRecord is a DKIM key record for pub (an *rsa.PublicKey or any key
// x509 can marshal) as zone-file TXT data, split into quoted strings.
func DKIMRecord(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	rec := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	var parts []string
	for len(rec) > 200 {
		parts = append(parts, `"`+rec[:200]+`"`)
		rec = rec[200:]
	}
	parts = append(parts, `"`+rec+`"`)
	return strings.Join(parts, " ")
}
