// Package preflight holds dripdrop's deliverability checks as rules over DNS
// answers (docs/preflight.md): the sender domain's SPF, DKIM, DMARC and MX,
// and the recipient's address syntax, role and disposable lists and mail
// domain. It does no I/O of its own: every DNS answer comes through the
// Resolver interface (production: preflight/dnsresolver; tests: a real DNS
// server on loopback, preflight/dnstest), and time comes from the caller.
//
// A DNS failure (SERVFAIL, a timeout) is never a failure of the domain: the
// check is "unknown", and an unknown result never blocks sending on its own.
package preflight

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Status is the outcome of one check or of a whole domain.
type Status string

// Statuses, from best to worst; Unknown sits apart (DNS did not answer).
const (
	Pass    Status = "pass"
	Warn    Status = "warn"
	Fail    Status = "fail"
	Unknown Status = "unknown"
)

// LookupStatus is what the DNS said about one question.
type LookupStatus string

// Lookup statuses. NoData is NOERROR with no record of the type asked;
// Error is anything that does not let us conclude (SERVFAIL, REFUSED, a
// timeout, a broken answer).
const (
	Found    LookupStatus = "found"
	NoData   LookupStatus = "nodata"
	NXDomain LookupStatus = "nxdomain"
	Error    LookupStatus = "error"
)

// MX is one mail exchanger record.
type MX struct {
	Pref uint16 `json:"pref"`
	Host string `json:"host"` // lowercased, without the trailing dot; "" is the null MX "."
}

// Answer is the answer to one question.
type Answer struct {
	Status LookupStatus
	TXT    []string // one string per TXT record (its character-strings joined)
	MX     []MX
	Addrs  []netip.Addr
	// TTL is the smallest TTL of the records (or the negative-caching TTL
	// of a negative answer); 0 when unknown.
	TTL time.Duration
	// Err says why a lookup is Error ("SERVFAIL", "timeout", …).
	Err string
}

// Resolver answers DNS questions. Names are A-labels (ASCII), without the
// trailing dot. Implementations never return a Go error: a failure is an
// Answer with Status Error.
type Resolver interface {
	TXT(ctx context.Context, name string) Answer
	MX(ctx context.Context, name string) Answer
	// Addrs asks for A and AAAA records; Found when either has one.
	Addrs(ctx context.Context, name string) Answer
}

// Evidence is one DNS observation a check rests on.
type Evidence struct {
	Name   string       `json:"name"`
	Type   string       `json:"type"`
	Status LookupStatus `json:"status"`
	Values []string     `json:"values,omitempty"`
	Err    string       `json:"error,omitempty"`
}

func evidence(name, typ string, a Answer) Evidence {
	e := Evidence{Name: name, Type: typ, Status: a.Status, Err: a.Err}
	switch typ {
	case "TXT":
		e.Values = append(e.Values, a.TXT...)
	case "MX":
		for _, m := range a.MX {
			h := m.Host
			if h == "" {
				h = "."
			}
			e.Values = append(e.Values, strconv.Itoa(int(m.Pref))+" "+h)
		}
	case "A/AAAA":
		for _, ad := range a.Addrs {
			e.Values = append(e.Values, ad.String())
		}
	}
	return e
}

// Check is the result of one check of a sender domain.
type Check struct {
	Name   string `json:"name"` // spf, dkim, dmarc, mx
	Status Status `json:"status"`
	// Code is a stable reason (e.g. spf_too_many_lookups); Detail says it
	// for people and how to fix it.
	Code     string         `json:"code"`
	Detail   string         `json:"detail"`
	Facts    map[string]any `json:"facts,omitempty"`
	Evidence []Evidence     `json:"evidence"`
	// TTL is the smallest TTL among the answers the check read.
	TTL time.Duration `json:"-"`
}

// Worst folds statuses: any Fail fails; else any Unknown is unknown; else
// any Warn warns; else pass.
func Worst(ss ...Status) Status {
	out := Pass
	rank := map[Status]int{Pass: 0, Warn: 1, Unknown: 2, Fail: 3}
	for _, s := range ss {
		if rank[s] > rank[out] {
			out = s
		}
	}
	return out
}

// minTTL returns the smaller positive duration.
func minTTL(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	case b < a:
		return b
	}
	return a
}

// normName lowercases a domain name and drops a trailing dot.
func normName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
