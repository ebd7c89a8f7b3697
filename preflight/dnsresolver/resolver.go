// Package dnsresolver is preflight's production resolver: DNS questions to
// recursive servers over UDP (TCP when an answer is truncated) with
// github.com/miekg/dns, and answers mapped to preflight.Answer. A timeout,
// SERVFAIL or any other failure is an Answer with Status Error, never a Go
// error, so the rules can call it "unknown".
package dnsresolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dripdrop/dripdrop/preflight"
)

// Resolver asks recursive DNS servers.
type Resolver struct {
	// Servers are "host:port" addresses of recursive resolvers, tried in
	// order until one answers.
	Servers []string
	// Timeout bounds each exchange (default 3 s); a question's total time
	// is bounded by its context too.
	Timeout time.Duration
}

// FromSystem reads the servers of /etc/resolv.conf (or the given file).
func FromSystem(path string) (*Resolver, error) {
	if path == "" {
		path = "/etc/resolv.conf"
	}
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	r := &Resolver{Timeout: time.Duration(cfg.Timeout) * time.Second}
	for _, s := range cfg.Servers {
		r.Servers = append(r.Servers, net.JoinHostPort(s, cfg.Port))
	}
	if len(r.Servers) == 0 {
		return nil, errors.New("dnsresolver: no name servers in " + path)
	}
	return r, nil
}

var _ preflight.Resolver = (*Resolver)(nil)

// TXT implements preflight.Resolver.
func (r *Resolver) TXT(ctx context.Context, name string) preflight.Answer {
	a, rrs := r.ask(ctx, name, dns.TypeTXT)
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			a.TXT = append(a.TXT, strings.Join(t.Txt, ""))
		}
	}
	return settle(a, len(a.TXT))
}

// MX implements preflight.Resolver.
func (r *Resolver) MX(ctx context.Context, name string) preflight.Answer {
	a, rrs := r.ask(ctx, name, dns.TypeMX)
	for _, rr := range rrs {
		if m, ok := rr.(*dns.MX); ok {
			a.MX = append(a.MX, preflight.MX{Pref: m.Preference, Host: strings.TrimSuffix(strings.ToLower(m.Mx), ".")})
		}
	}
	return settle(a, len(a.MX))
}

// Addrs implements preflight.Resolver: A, then AAAA.
func (r *Resolver) Addrs(ctx context.Context, name string) preflight.Answer {
	a4, rr4 := r.ask(ctx, name, dns.TypeA)
	a6, rr6 := r.ask(ctx, name, dns.TypeAAAA)
	out := preflight.Answer{TTL: a4.TTL}
	if a6.TTL > 0 && (out.TTL == 0 || a6.TTL < out.TTL) {
		out.TTL = a6.TTL
	}
	for _, rr := range append(rr4, rr6...) {
		switch v := rr.(type) {
		case *dns.A:
			if ad, ok := netip.AddrFromSlice(v.A.To4()); ok {
				out.Addrs = append(out.Addrs, ad)
			}
		case *dns.AAAA:
			if ad, ok := netip.AddrFromSlice(v.AAAA); ok {
				out.Addrs = append(out.Addrs, ad)
			}
		}
	}
	switch {
	case len(out.Addrs) > 0:
		out.Status = preflight.Found
	case a4.Status == preflight.Error || a6.Status == preflight.Error:
		out.Status, out.Err = preflight.Error, a4.Err+a6.Err
	case a4.Status == preflight.NXDomain:
		out.Status = preflight.NXDomain
	default:
		out.Status = preflight.NoData
	}
	return out
}

func settle(a preflight.Answer, n int) preflight.Answer {
	if a.Status == preflight.Found && n == 0 {
		a.Status = preflight.NoData
	}
	return a
}

// ask sends one question and returns the answer records of the asked type
// (a CNAME chain in the answer is followed by the recursive server; its
// CNAME records are skipped here).
func (r *Resolver) ask(ctx context.Context, name string, qtype uint16) (preflight.Answer, []dns.RR) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	lastErr := "no name server"
	for _, srv := range r.Servers {
		if ctx.Err() != nil {
			return preflight.Answer{Status: preflight.Error, Err: "timeout"}, nil
		}
		resp, err := exchange(ctx, "udp", srv, m, timeout)
		if err == nil && resp.Truncated {
			resp, err = exchange(ctx, "tcp", srv, m, timeout)
		}
		if err != nil {
			lastErr = "timeout"
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				lastErr = "network error"
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
			var rrs []dns.RR
			var ttl uint32
			for _, rr := range resp.Answer {
				if rr.Header().Rrtype == qtype {
					rrs = append(rrs, rr)
					if ttl == 0 || rr.Header().Ttl < ttl {
						ttl = rr.Header().Ttl
					}
				}
			}
			if len(rrs) == 0 {
				return preflight.Answer{Status: preflight.NoData, TTL: negTTL(resp)}, nil
			}
			return preflight.Answer{Status: preflight.Found, TTL: time.Duration(ttl) * time.Second}, rrs
		case dns.RcodeNameError:
			return preflight.Answer{Status: preflight.NXDomain, TTL: negTTL(resp)}, nil
		default:
			lastErr = dns.RcodeToString[resp.Rcode]
			if lastErr == "" {
				lastErr = "rcode " + dns.RcodeToString[dns.RcodeServerFailure]
			}
		}
	}
	return preflight.Answer{Status: preflight.Error, Err: lastErr}, nil
}

func exchange(ctx context.Context, network, srv string, m *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: timeout}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, _, err := c.ExchangeContext(ctx, m, srv)
	return resp, err
}

// negTTL is RFC 2308's negative-caching TTL: the smaller of the SOA
// record's TTL and its MINIMUM field.
func negTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return 0
}
