// Package netguard decides which outbound destinations the engine may
// connect to (docs/security.md#the-operators-network).
//
// Tenants choose where the engine connects: adapter SMTP hosts and, later,
// webhook URLs. Without a guard a tenant could make the engine talk to the
// operator's own network — cloud metadata at 169.254.169.254, a Redis on
// 10.0.0.5:6379, the database on localhost. The guard refuses loopback,
// private, shared (CGNAT), link-local, unspecified, multicast and reserved
// addresses, in every spelling, unless the operator allows private targets.
//
// It checks twice: CheckHost and CheckSMTPPort validate what a tenant
// submits (literal IPs, internal names, odd numeric forms), and Control runs
// inside net.Dialer on the address actually being dialled, after DNS, so a
// public-looking name that resolves (or rebinds) to a private address is
// refused too.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// ErrForbiddenTarget is wrapped by every refusal.
var ErrForbiddenTarget = errors.New("forbidden target")

// DefaultSMTPPorts are the submission/relay ports accepted when the operator
// lists none.
var DefaultSMTPPorts = []int{25, 465, 587, 2525}

// Environment variables read by FromEnv.
const (
	EnvAllowPrivate = "DRIPDROP_ALLOW_PRIVATE_TARGETS"
	EnvSMTPPorts    = "DRIPDROP_SMTP_PORTS"
)

// Guard is the outbound-destination policy. The zero value refuses private
// targets and accepts DefaultSMTPPorts.
type Guard struct {
	// AllowPrivate accepts every address and name (development, or an
	// operator whose relays live on a private network).
	AllowPrivate bool
	// SMTPPorts are the accepted SMTP ports; empty means DefaultSMTPPorts.
	SMTPPorts []int
}

// FromEnv builds a guard from DRIPDROP_ALLOW_PRIVATE_TARGETS (a boolean) and
// DRIPDROP_SMTP_PORTS (comma-separated ports). getenv is usually os.Getenv.
func FromEnv(getenv func(string) string) (Guard, error) {
	var g Guard
	if v := strings.TrimSpace(getenv(EnvAllowPrivate)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Guard{}, fmt.Errorf("%s: %q is not a boolean", EnvAllowPrivate, v)
		}
		g.AllowPrivate = b
	}
	if v := strings.TrimSpace(getenv(EnvSMTPPorts)); v != "" {
		ports, err := ParsePorts(v)
		if err != nil {
			return Guard{}, fmt.Errorf("%s: %w", EnvSMTPPorts, err)
		}
		g.SMTPPorts = ports
	}
	return g, nil
}

// ParsePorts parses a comma-separated list of TCP ports.
func ParsePorts(s string) ([]int, error) {
	var ports []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q is not a TCP port", f)
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return nil, errors.New("no ports listed")
	}
	return ports, nil
}

// Ports returns the accepted SMTP ports.
func (g Guard) Ports() []int {
	if len(g.SMTPPorts) == 0 {
		return DefaultSMTPPorts
	}
	return g.SMTPPorts
}

// CheckSMTPPort refuses ports that are not in the accepted list.
func (g Guard) CheckSMTPPort(port int) error {
	if slices.Contains(g.Ports(), port) {
		return nil
	}
	return fmt.Errorf("%w: port %d is not an accepted SMTP port (accepted: %s)", ErrForbiddenTarget, port, joinInts(g.Ports()))
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// Control is a net.Dialer Control hook: it runs after name resolution with
// the literal address about to be connected and refuses forbidden ones.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrForbiddenTarget, address)
	}
	return g.CheckAddr(ap.Addr())
}

// Dialer returns a copy of base whose Control hook applies the guard (after
// base's own Control, if any).
func (g Guard) Dialer(base net.Dialer) *net.Dialer {
	d := base
	if prev := base.ControlContext; prev != nil { // net.Dialer then ignores Control
		d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
			if err := prev(ctx, network, address, c); err != nil {
				return err
			}
			return g.Control(network, address, c)
		}
		return &d
	}
	prev := base.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, c); err != nil {
				return err
			}
		}
		return g.Control(network, address, c)
	}
	return &d
}

// CheckAddr refuses an address in a forbidden range.
func (g Guard) CheckAddr(a netip.Addr) error {
	if g.AllowPrivate {
		return nil
	}
	if why := forbidden(a); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenTarget, a.WithZone(""), why)
	}
	return nil
}

var ranges = []struct {
	p   netip.Prefix
	why string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (\"this network\") address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared carrier-grade NAT address (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata lives here)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local (private) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	nat64L  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	teredo  = netip.MustParsePrefix("2001::/32")
	mapped4 = netip.MustParsePrefix("::ffff:0:0/96")
)

// forbidden names the reason a is refused, or "" when it may be dialled.
// IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by
// the embedded address.
func forbidden(a netip.Addr) string {
	if !a.IsValid() {
		return "not a valid address"
	}
	a = a.WithZone("")
	if mapped4.Contains(a) {
		a = a.Unmap()
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a) || nat64L.Contains(a):
			if why := forbidden(netip.AddrFrom4([4]byte(b[12:16]))); why != "" {
				return why + " behind NAT64"
			}
		case sixTo4.Contains(a):
			if why := forbidden(netip.AddrFrom4([4]byte(b[2:6]))); why != "" {
				return why + " behind 6to4"
			}
		case teredo.Contains(a):
			return "a Teredo tunnel address"
		}
	}
	for _, r := range ranges {
		if r.p.Contains(a) {
			return r.why
		}
	}
	return ""
}

// internalSuffixes are name suffixes that never denote a public mail host:
// RFC 6761 localhost, mDNS, Kubernetes cluster names, ICANN's private-use
// .internal (which includes metadata.google.internal), home networks.
var internalSuffixes = []string{
	".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp", ".home",
}

// CheckHost validates a host as a tenant submits it (an adapter's SMTP host,
// a webhook URL's host): literal IPs in any spelling, internal names,
// single-label names (resolved through the operator's search domains) and
// non-canonical numeric forms such as 2130706433, 0177.0.0.1 or 0x7f.1
// (which some resolvers turn into addresses) are refused. Names that merely
// resolve to a private address are caught at dial time by Control.
func (g Guard) CheckHost(host string) error {
	h := strings.ToLower(strings.TrimSpace(host))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if h == "" {
		return fmt.Errorf("%w: empty host", ErrForbiddenTarget)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return g.CheckAddr(a)
	}
	if g.AllowPrivate {
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if a, ok := parseLegacyIPv4(name); ok {
		return fmt.Errorf("%w: %q is a numeric address in a non-standard form (it means %s); write addresses as dotted decimal", ErrForbiddenTarget, host, a)
	}
	if !strings.Contains(name, ".") {
		return fmt.Errorf("%w: %q is a single-label (internal) name; use a fully qualified public host name", ErrForbiddenTarget, host)
	}
	for _, s := range internalSuffixes {
		if strings.HasSuffix(name, s) {
			return fmt.Errorf("%w: %q is an internal name", ErrForbiddenTarget, host)
		}
	}
	if last := name[strings.LastIndexByte(name, '.')+1:]; isDigits(last) {
		// A top-level label is never all-numeric (RFC 3696 §2), so this is an
		// address in some spelling ParseAddr did not accept (e.g. 127.1.1.1.1).
		return fmt.Errorf("%w: %q is not a valid host name", ErrForbiddenTarget, host)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseLegacyIPv4 parses the inet_aton forms: one to four parts, each
// decimal, octal (leading 0) or hexadecimal (0x), the last part filling the
// remaining bytes — 2130706433, 0x7f000001, 0177.0.0.1, 127.1.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		case p == "0x" || p == "0X":
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*uint(i))
	}
	if vals[last] >= 1<<(8*uint(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
