package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/dripdrop/dripdrop"
)

// Failed-authentication limiting (docs/security.md#credentials): more than
// authFailLimit failed authentications within authFailWindow from one client
// address are answered 429 with Retry-After, for tenant keys and the admin
// token alike.
//
// Credentials are still verified first: a request that authenticates is never
// limited, so clients that share an address with a misbehaving one (an
// office NAT, a proxy) keep working; only the failing requests turn from 401
// into 429. Tenant keys carry 256 random bits, so the limit is not what keeps
// them from being guessed; it makes scanning loud, tells misconfigured
// clients to back off, and bounds how fast a short admin token could be
// tried against a replica.
//
// State is per replica and bounded: at most authLimitEntries addresses are
// tracked; a new address past that forgets the address first tracked (a
// ring of keys in insertion order), so a flood of distinct addresses costs
// constant memory and constant time per request. IPv6 clients are counted per /64, the block one subscriber holds.
const (
	authFailLimit    = 20
	authFailWindow   = time.Minute
	authLimitEntries = 16384
)

type authLimiter struct {
	clock   dripdrop.Clock
	limit   int
	window  time.Duration
	entries int

	mu   sync.Mutex
	m    map[netip.Prefix]*authFailures
	ring []netip.Prefix // tracked keys in insertion order, oldest at head
	head int
}

type authFailures struct {
	start time.Time // first failure of the current window
	n     int
}

func newAuthLimiter(clock dripdrop.Clock) *authLimiter {
	return &authLimiter{clock: clock, limit: authFailLimit, window: authFailWindow, entries: authLimitEntries, m: map[netip.Prefix]*authFailures{}}
}

// fail records a failed authentication from client and reports whether it is
// over the limit, and for how long it stays there.
func (l *authLimiter) fail(client netip.Addr) (bool, time.Duration) {
	if !client.IsValid() {
		return false, 0
	}
	key := clientKey(client)
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.m[key]
	if f == nil || now.Sub(f.start) >= l.window || now.Before(f.start) {
		if f == nil {
			l.track(key)
			f = &authFailures{}
			l.m[key] = f
		}
		*f = authFailures{start: now}
	}
	f.n++
	if f.n <= l.limit {
		return false, 0
	}
	return true, f.start.Add(l.window).Sub(now)
}

// track records a new key, forgetting the oldest when the ring is full.
func (l *authLimiter) track(key netip.Prefix) {
	if len(l.ring) < l.entries {
		l.ring = append(l.ring, key)
		return
	}
	delete(l.m, l.ring[l.head])
	l.ring[l.head] = key
	l.head = (l.head + 1) % len(l.ring)
}

func (l *authLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// clientKey is the unit of counting: the address, or its /64 for IPv6.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// clientAddr is the address a request comes from: the TCP peer, or — when the
// peer is a trusted proxy — the right-most X-Forwarded-For entry that is not
// itself a trusted proxy.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !inPrefixes(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed hop: do not trust anything left of it
		}
		if a = a.Unmap(); !inPrefixes(a, trusted) {
			return a
		}
	}
	return peer
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies parses a comma-separated list of addresses and CIDR
// prefixes (DRIPDROP_TRUSTED_PROXIES).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
