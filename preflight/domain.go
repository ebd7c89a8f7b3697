package preflight

import (
	"context"
	"time"
)

// Result TTL bounds of a sender-domain report: the DNS TTL, but re-checked
// at least daily and no more often than every 5 minutes.
const (
	MinReportTTL = 5 * time.Minute
	MaxReportTTL = 24 * time.Hour
)

// DomainInput is what a sender-domain check needs.
type DomainInput struct {
	Domain string // the From domain, an A-label
	// Provider is the adapter's sending provider when known (google,
	// microsoft; "" for a generic relay): it adds the provider's SPF
	// include and DKIM selectors to the checks.
	Provider      string
	DKIMSelectors []string // configured selectors (override the provider's)
}

// DomainReport is the result of all checks of one sender domain.
type DomainReport struct {
	Domain    string    `json:"domain"`
	Status    Status    `json:"status"`
	Provider  string    `json:"provider,omitempty"`
	Checks    []Check   `json:"checks"`
	CheckedAt time.Time `json:"checked_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CheckDomain runs SPF, DKIM, DMARC and MX for a sender domain. now is the
// check's time.
func CheckDomain(ctx context.Context, r Resolver, in DomainInput, now time.Time) DomainReport {
	d := normName(in.Domain)
	checks := []Check{
		CheckSPF(ctx, r, d, in.Provider),
		CheckDKIM(ctx, r, d, DKIMSelectors(in.Provider, in.DKIMSelectors)),
		CheckDMARC(ctx, r, d),
		CheckSenderMX(ctx, r, d),
	}
	rep := DomainReport{Domain: d, Provider: in.Provider, Checks: checks, CheckedAt: now}
	var ttl time.Duration
	var ss []Status
	for _, c := range checks {
		ss = append(ss, c.Status)
		ttl = minTTL(ttl, c.TTL)
	}
	rep.Status = Worst(ss...)
	rep.ExpiresAt = now.Add(ReportTTL(ttl, rep.Status))
	return rep
}

// ReportTTL is how long a report stands: the smallest DNS TTL read,
// clamped to [MinReportTTL, MaxReportTTL]; an unknown result is retried
// after MinReportTTL.
func ReportTTL(ttl time.Duration, s Status) time.Duration {
	if s == Unknown {
		return MinReportTTL
	}
	return min(max(ttl, MinReportTTL), MaxReportTTL)
}

// Blocking reports whether a domain status counts as failing for the
// tenant's require_domain_auth: only a definite failure does; an unknown
// result (the DNS did not answer) never blocks on its own.
func Blocking(s Status) bool { return s == Fail }
