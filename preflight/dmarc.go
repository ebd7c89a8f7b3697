package preflight

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dmarc"
)

// DMARCRecord is a parsed DMARC policy record.
type DMARCRecord struct {
	Policy          string   // p: none | quarantine | reject
	SubdomainPolicy string   // sp
	PSD             string   // psd: y | n | "" (RFC 9989)
	RUA             []string // aggregate report URIs
}

// IsDMARC reports whether a TXT string starts with the DMARC version tag.
func IsDMARC(txt string) bool {
	tags, order, err := ParseTags(txt)
	return err == nil && len(order) > 0 && order[0] == "v" && tags["v"] == "DMARC1"
}

// ParseDMARC parses a DMARC record. Tags RFC 9989 removed (pct, rf, ri) and
// unknown tags are ignored; p must be present and valid.
func ParseDMARC(txt string) (DMARCRecord, error) {
	tags, order, err := ParseTags(txt)
	if err != nil {
		return DMARCRecord{}, err
	}
	if len(order) == 0 || order[0] != "v" || tags["v"] != "DMARC1" {
		return DMARCRecord{}, fmt.Errorf("a DMARC record starts with v=DMARC1")
	}
	var rec DMARCRecord
	switch p := strings.ToLower(tags["p"]); p {
	case "none", "quarantine", "reject":
		rec.Policy = p
	case "":
		return rec, fmt.Errorf("the record has no p= tag")
	default:
		return rec, fmt.Errorf("p=%s is not none, quarantine or reject", tags["p"])
	}
	switch sp := strings.ToLower(tags["sp"]); sp {
	case "", "none", "quarantine", "reject":
		rec.SubdomainPolicy = sp
	default:
		return rec, fmt.Errorf("sp=%s is not none, quarantine or reject", tags["sp"])
	}
	switch psd := strings.ToLower(tags["psd"]); psd {
	case "", "y", "n", "u":
		rec.PSD = psd
	default:
		return rec, fmt.Errorf("psd=%s is not y, n or u", tags["psd"])
	}
	// The report addresses as go-msgauth reads them (it strips the
	// obsolete "!size" suffix handling to the receivers).
	if _, ok := tags["rua"]; ok {
		if m, err := dmarc.Parse("v=DMARC1; p=" + rec.Policy + "; rua=" + tags["rua"]); err == nil {
			rec.RUA = m.ReportURIAggregate
		} else {
			for _, u := range strings.Split(tags["rua"], ",") {
				if u = strings.TrimSpace(u); u != "" {
					rec.RUA = append(rec.RUA, u)
				}
			}
		}
	}
	return rec, nil
}

// TreeWalkTargets lists the names the RFC 9989 DNS tree walk queries for
// domain, in order: the domain itself; then, if it has 8 labels or more,
// its last 7 labels, otherwise the domain less its left-most label; then
// one label less each time, down to a single label.
func TreeWalkTargets(domain string) []string {
	labels := strings.Split(normName(domain), ".")
	if len(labels) == 0 || labels[0] == "" {
		return nil
	}
	out := []string{strings.Join(labels, ".")}
	x := len(labels)
	if x >= 8 {
		labels = labels[x-7:]
	} else {
		labels = labels[1:]
	}
	for len(labels) > 0 {
		out = append(out, strings.Join(labels, "."))
		labels = labels[1:]
	}
	return out
}

// DMARCDiscovery is where the tree walk found a domain's policy.
type DMARCDiscovery struct {
	Status       LookupStatus // Found, NoData (no policy anywhere), Error
	PolicyDomain string       // where the applying record was found
	OrgDomain    string       // the Organizational Domain (RFC 9989 §4.10.2)
	Record       string
	Parsed       DMARCRecord
	Evidence     []Evidence
	ErrName      string // the name the DNS did not answer for
	TTL          time.Duration
}

// DiscoverDMARC runs the RFC 9989 DNS tree walk from domain. At each
// target it queries _dmarc.<target>; TXT strings that are not DMARC records
// are discarded and several DMARC records at one name count as none. The
// policy is the first record found (the domain's own, else the closest
// ancestor's). The walk goes on for the Organizational Domain: it stops at
// a record with psd=n (that domain) or psd=y (the domain one label below
// it, towards the author domain); otherwise the Organizational Domain is
// the found record with the fewest labels, and with no record at all the
// domain itself. A DNS failure before the policy is found leaves the result
// unknown (Status Error): absence cannot be concluded.
func DiscoverDMARC(ctx context.Context, r Resolver, domain string) DMARCDiscovery {
	d := DMARCDiscovery{Status: NoData}
	targets := TreeWalkTargets(domain)
	if len(targets) == 0 {
		return d
	}
	org := ""
	for i, t := range targets {
		name := "_dmarc." + t
		a := r.TXT(ctx, name)
		d.Evidence = append(d.Evidence, evidence(name, "TXT", a))
		d.TTL = minTTL(d.TTL, a.TTL)
		if a.Status == Error {
			if d.PolicyDomain == "" {
				d.Status, d.ErrName = Error, name
				return d
			}
			break // the policy stands; the Organizational Domain is the best seen
		}
		var recs []string
		for _, txt := range a.TXT {
			if IsDMARC(txt) {
				recs = append(recs, txt)
			}
		}
		if len(recs) != 1 {
			continue
		}
		parsed, err := ParseDMARC(recs[0])
		if d.PolicyDomain == "" {
			d.Status, d.PolicyDomain, d.Record, d.Parsed = Found, t, recs[0], parsed
			if err != nil {
				// A record with a broken p= still ends the policy search:
				// receivers find it and treat it as they do.
				d.Parsed = DMARCRecord{}
			}
		}
		org = t
		if parsed.PSD == "n" {
			break
		}
		if parsed.PSD == "y" {
			if i > 0 {
				org = targets[i-1]
			} else {
				org = t
			}
			break
		}
	}
	if org == "" {
		org = targets[0]
	}
	d.OrgDomain = org
	return d
}

// CheckDMARC checks the policy that applies to mail from domain: found by
// the tree walk, with p present. rua is advisory (a warning without it).
func CheckDMARC(ctx context.Context, r Resolver, domain string) Check {
	d := DiscoverDMARC(ctx, r, domain)
	c := Check{Name: "dmarc", Evidence: d.Evidence, TTL: d.TTL, Facts: map[string]any{}}
	switch d.Status {
	case Error:
		return c.set(Unknown, "dmarc_dns_error", "The DNS did not answer for %s; the check will be repeated.", d.ErrName)
	case NoData:
		return c.set(Fail, "dmarc_missing", "No DMARC policy applies to %s (none at _dmarc.%s or its parent domains). Publish one, at least \"v=DMARC1; p=none; rua=mailto:…\".", domain, domain)
	}
	c.Facts["policy_domain"] = d.PolicyDomain
	c.Facts["organizational_domain"] = d.OrgDomain
	c.Facts["record"] = d.Record
	rec, err := ParseDMARC(d.Record)
	if err != nil {
		return c.set(Fail, "dmarc_invalid", "The DMARC record at _dmarc.%s is invalid: %v.", d.PolicyDomain, err)
	}
	c.Facts["p"] = rec.Policy
	if len(rec.RUA) == 0 {
		return c.set(Warn, "dmarc_no_rua", "The DMARC policy of %s (p=%s, at _dmarc.%s) asks for no aggregate reports: add rua=mailto:… to see who sends as your domain.", domain, rec.Policy, d.PolicyDomain)
	}
	return c.set(Pass, "dmarc_ok", "A DMARC policy p=%s applies to %s (found at _dmarc.%s).", rec.Policy, domain, d.PolicyDomain)
}
