package preflight

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Mailbox providers a recipient domain's MX can belong to.
const (
	ProviderGoogle     = "google"
	ProviderMicrosoft  = "microsoft"
	ProviderYahoo      = "yahoo"
	ProviderApple      = "apple"
	ProviderProofpoint = "proofpoint"
	ProviderMimecast   = "mimecast"
	ProviderBarracuda  = "barracuda"
	ProviderZoho       = "zoho"
	ProviderOther      = "other"
)

// Providers lists every classification, "other" last.
var Providers = []string{ProviderGoogle, ProviderMicrosoft, ProviderYahoo, ProviderApple, ProviderProofpoint, ProviderMimecast, ProviderBarracuda, ProviderZoho, ProviderOther}

// ValidProvider reports whether p is one of Providers.
func ValidProvider(p string) bool {
	for _, q := range Providers {
		if p == q {
			return true
		}
	}
	return false
}

// mxSuffixes maps MX host suffixes to the provider that runs them. A host
// matches a suffix when it equals it or ends in "."+suffix. The list names
// the providers' documented MX host names (docs/preflight.md#providers).
var mxSuffixes = []struct{ suffix, provider string }{
	{"google.com", ProviderGoogle},
	{"googlemail.com", ProviderGoogle},
	{"protection.outlook.com", ProviderMicrosoft},
	{"outlook.com", ProviderMicrosoft},
	{"hotmail.com", ProviderMicrosoft},
	{"yahoodns.net", ProviderYahoo},
	{"yahoo.com", ProviderYahoo},
	{"mail.icloud.com", ProviderApple},
	{"icloud.com", ProviderApple},
	{"me.com", ProviderApple},
	{"pphosted.com", ProviderProofpoint},
	{"ppe-hosted.com", ProviderProofpoint},
	{"mimecast.com", ProviderMimecast},
	{"mimecast.co.za", ProviderMimecast},
	{"mimecast-offshore.com", ProviderMimecast},
	{"barracudanetworks.com", ProviderBarracuda},
	{"zoho.com", ProviderZoho},
	{"zoho.eu", ProviderZoho},
	{"zoho.in", ProviderZoho},
	{"zoho.com.au", ProviderZoho},
	{"zohomail.com", ProviderZoho},
}

// ClassifyHost names the provider of one MX host.
func ClassifyHost(host string) string {
	h := normName(host)
	for _, s := range mxSuffixes {
		if h == s.suffix || strings.HasSuffix(h, "."+s.suffix) {
			return s.provider
		}
	}
	return ProviderOther
}

// ClassifyMX names the provider of a domain by its most preferred MX host
// (the lowest preference; ties by name).
func ClassifyMX(mxs []MX) string {
	live := make([]MX, 0, len(mxs))
	for _, m := range mxs {
		if m.Host != "" {
			live = append(live, m)
		}
	}
	if len(live) == 0 {
		return ProviderOther
	}
	sort.Slice(live, func(i, j int) bool {
		if live[i].Pref != live[j].Pref {
			return live[i].Pref < live[j].Pref
		}
		return live[i].Host < live[j].Host
	})
	return ClassifyHost(live[0].Host)
}

// IsNullMX reports whether an MX set is RFC 7505's null MX: a single
// record with the root as its exchange.
func IsNullMX(mxs []MX) bool {
	return len(mxs) == 1 && mxs[0].Host == ""
}

// ProviderOfHost names the provider of an SMTP submission host (the
// adapter's relay): smtp.gmail.com is Google, smtp.office365.com Microsoft.
func ProviderOfHost(host string) string {
	h := normName(host)
	for _, s := range []struct{ suffix, provider string }{
		{"gmail.com", ProviderGoogle}, {"googlemail.com", ProviderGoogle}, {"google.com", ProviderGoogle},
		{"office365.com", ProviderMicrosoft}, {"outlook.com", ProviderMicrosoft},
	} {
		if h == s.suffix || strings.HasSuffix(h, "."+s.suffix) {
			return s.provider
		}
	}
	return ""
}

// DomainMail is what the DNS says about where a domain's mail goes.
type DomainMail struct {
	Status   Status // Pass: mail can be delivered; Fail: it cannot; Unknown: DNS failed
	Code     string // mx_ok, mx_implicit, mx_null, mx_missing, mx_dns_error
	Provider string // classification of the MX (ProviderOther for an implicit MX)
	Evidence []Evidence
	TTL      time.Duration
}

// LookupMail resolves where mail for domain goes: its MX records, or, with
// none, its address records (the implicit MX of RFC 5321 §5.1); a null MX
// (RFC 7505) or a domain with neither means no mail is accepted.
func LookupMail(ctx context.Context, r Resolver, domain string) DomainMail {
	var d DomainMail
	a := r.MX(ctx, domain)
	d.Evidence = append(d.Evidence, evidence(domain, "MX", a))
	d.TTL = a.TTL
	switch a.Status {
	case Error:
		d.Status, d.Code = Unknown, "mx_dns_error"
		return d
	case Found:
		if IsNullMX(a.MX) {
			d.Status, d.Code, d.Provider = Fail, "mx_null", ProviderOther
			return d
		}
		d.Status, d.Code, d.Provider = Pass, "mx_ok", ClassifyMX(a.MX)
		return d
	case NXDomain:
		d.Status, d.Code, d.Provider = Fail, "mx_missing", ProviderOther
		return d
	}
	ad := r.Addrs(ctx, domain)
	d.Evidence = append(d.Evidence, evidence(domain, "A/AAAA", ad))
	d.TTL = minTTL(d.TTL, ad.TTL)
	switch ad.Status {
	case Error:
		d.Status, d.Code = Unknown, "mx_dns_error"
	case Found:
		d.Status, d.Code, d.Provider = Pass, "mx_implicit", ProviderOther
	default:
		d.Status, d.Code, d.Provider = Fail, "mx_missing", ProviderOther
	}
	return d
}

// CheckSenderMX checks that replies to the From domain can arrive.
func CheckSenderMX(ctx context.Context, r Resolver, domain string) Check {
	m := LookupMail(ctx, r, domain)
	c := Check{Name: "mx", Evidence: m.Evidence, TTL: m.TTL, Facts: map[string]any{}}
	if m.Provider != "" {
		c.Facts["provider"] = m.Provider
	}
	switch m.Code {
	case "mx_ok":
		return c.set(Pass, m.Code, "%s has MX records (%s): replies can arrive.", domain, m.Provider)
	case "mx_implicit":
		return c.set(Warn, m.Code, "%s has no MX record; mail to it goes to its address record (implicit MX). Publish an MX record for the mailbox host that receives replies.", domain)
	case "mx_null":
		return c.set(Fail, m.Code, "%s publishes a null MX (\"0 .\"): it accepts no mail, so replies bounce. Publish the MX records of your mailbox host.", domain)
	case "mx_missing":
		return c.set(Fail, m.Code, "%s has no MX and no address record: replies cannot arrive. Publish the MX records of your mailbox host.", domain)
	}
	return c.set(Unknown, m.Code, "The DNS did not answer for the MX of %s; the check will be repeated.", domain)
}
