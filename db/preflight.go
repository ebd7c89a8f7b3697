package db

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/health"
	"github.com/dripdrop/dripdrop/preflight"
)

// Tenant settings of require_domain_auth (docs/preflight.md#enforcement).
const (
	DomainAuthOff   = "off"
	DomainAuthWarn  = "warn"
	DomainAuthBlock = "block"
)

// DomainAuthGrace is how long a sender domain may fail before
// require_domain_auth=block rests its adapters.
const DomainAuthGrace = 72 * time.Hour

// ReasonDomainAuthFailed is the rest reason of an adapter whose From domain
// failed its checks past the grace period under require_domain_auth=block.
const ReasonDomainAuthFailed = "domain_auth_failed"

// How soon the leader checks a sender domain again, by its last status:
// a failing one hourly (so a fix is seen soon), an unknown one (the DNS
// did not answer) in 15 minutes, the others daily.
const (
	recheckPass    = 24 * time.Hour
	recheckFail    = time.Hour
	recheckUnknown = 15 * time.Minute
	// domainRest is how long one failing check rests an adapter; each
	// failing check (hourly) extends it, so it does not probe in between.
	domainRest = recheckFail + 10*time.Minute
	// recipientLookups bounds the DNS questions in flight for one batch.
	recipientLookups = 16
	// recipientDNSBudget bounds the DNS time of one enrollment request: a
	// domain not answered by then is unknown, and accepted.
	recipientDNSBudget = 5 * time.Second
)

// SenderDomain is a tenant's From domain with its last preflight report.
type SenderDomain struct {
	Domain        string            `json:"domain"`
	Status        preflight.Status  `json:"status"`
	Checked       bool              `json:"checked"`
	Provider      string            `json:"provider"`
	DKIMSelectors []string          `json:"dkim_selectors"`
	Checks        []preflight.Check `json:"checks"`
	CheckedAt     *time.Time        `json:"checked_at"`
	ExpiresAt     *time.Time        `json:"expires_at"`
	NextCheckAt   time.Time         `json:"next_check_at"`
	FailingSince  *time.Time        `json:"failing_since"`
	// Enforcement is what require_domain_auth does about this domain.
	Enforcement DomainEnforcement `json:"enforcement"`
	AdapterIDs  []uuid.UUID       `json:"adapter_ids"`
}

// DomainEnforcement says what the tenant's require_domain_auth does with a
// domain: nothing (off), show it (warn), or rest its adapters from
// BlocksAt (block, 72 h after it started failing).
type DomainEnforcement struct {
	Mode     string     `json:"mode"`
	Blocking bool       `json:"blocking"`
	BlocksAt *time.Time `json:"blocks_at"`
}

// DomainCheckInput are optional settings sent with an on-demand check;
// they are stored on the domain for later checks.
type DomainCheckInput struct {
	// DKIMSelectors replaces the selectors checked (empty: the provider's).
	DKIMSelectors *[]string `json:"dkim_selectors"`
	// Provider overrides the sending provider (google, microsoft; "" =
	// from the adapters' SMTP hosts).
	Provider *string `json:"provider"`
}

// TenantSettings are a tenant's engine-wide settings.
type TenantSettings struct {
	RequireDomainAuth string `json:"require_domain_auth"`
}

// TenantSettingsInput patches TenantSettings.
type TenantSettingsInput struct {
	RequireDomainAuth *string `json:"require_domain_auth"`
}

// NormalizeDomain validates a domain name (Unicode or A-label) and returns
// its lowercased A-label form.
func NormalizeDomain(field, d string) (string, error) {
	a, code, msg := preflight.ParseAddress("postmaster@" + strings.TrimSuffix(strings.TrimSpace(d), "."))
	if code != "" {
		return "", dripdrop.Errorf(dripdrop.ECodeInvalidValue, field, "not a valid domain name: %s", msg)
	}
	return a.Domain, nil
}

// fromDomain is the A-label domain of an adapter's From address ("" when
// it does not parse).
func fromDomain(from string) string { return preflight.RecipientDomainOf(from) }

// ensureSenderDomain makes sure the domain of a From address is known; the
// leader's domain sweep checks a new one within a minute.
func (s *Store) ensureSenderDomain(ctx context.Context, q *dbsqlc.Queries, tenant, from string) error {
	d := fromDomain(from)
	if d == "" {
		return nil
	}
	return q.EnsureSenderDomain(ctx, dbsqlc.EnsureSenderDomainParams{TenantKey: tenant, Domain: d, Now: s.clock.Now()})
}

// Settings returns the tenant's settings.
func (s *Store) Settings(ctx context.Context, tenant string) (_ TenantSettings, err error) {
	defer wrapErr(&err, "settings")
	m, err := s.q.GetRequireDomainAuth(ctx, tenant)
	if err != nil {
		return TenantSettings{}, mapErr(err, "tenant")
	}
	return TenantSettings{RequireDomainAuth: m}, nil
}

// UpdateSettings patches the tenant's settings.
func (s *Store) UpdateSettings(ctx context.Context, tenant string, in TenantSettingsInput) (_ TenantSettings, err error) {
	defer wrapErr(&err, "update settings")
	if in.RequireDomainAuth == nil {
		return s.Settings(ctx, tenant)
	}
	switch *in.RequireDomainAuth {
	case DomainAuthOff, DomainAuthWarn, DomainAuthBlock:
	default:
		return TenantSettings{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "require_domain_auth", "require_domain_auth must be \"off\", \"warn\" or \"block\"")
	}
	m, err := s.q.SetRequireDomainAuth(ctx, dbsqlc.SetRequireDomainAuthParams{TenantKey: tenant, RequireDomainAuth: *in.RequireDomainAuth})
	if err != nil {
		return TenantSettings{}, mapErr(err, "tenant")
	}
	return TenantSettings{RequireDomainAuth: m}, nil
}

func (s *Store) senderDomainFrom(ctx context.Context, tenant string, r dbsqlc.SenderDomain, mode string) (SenderDomain, error) {
	d := SenderDomain{
		Domain: r.Domain, Status: preflight.Status(r.Status), Checked: r.Checked, Provider: r.Provider, DKIMSelectors: r.DkimSelectors,
		Checks: []preflight.Check{}, CheckedAt: r.CheckedAt, ExpiresAt: r.ExpiresAt, NextCheckAt: r.NextCheckAt, FailingSince: r.FailingSince,
		AdapterIDs: []uuid.UUID{},
	}
	if d.DKIMSelectors == nil {
		d.DKIMSelectors = []string{}
	}
	if len(r.Checks) > 2 {
		if err := json.Unmarshal(r.Checks, &d.Checks); err != nil {
			return d, err
		}
	}
	d.Enforcement = enforcement(mode, r, s.clock.Now())
	as, err := s.q.AdaptersOfDomain(ctx, dbsqlc.AdaptersOfDomainParams{TenantKey: tenant, Domain: r.Domain})
	if err != nil {
		return d, err
	}
	for _, a := range as {
		d.AdapterIDs = append(d.AdapterIDs, a.ID)
	}
	return d, nil
}

func enforcement(mode string, r dbsqlc.SenderDomain, now time.Time) DomainEnforcement {
	e := DomainEnforcement{Mode: mode}
	if mode == DomainAuthBlock && r.FailingSince != nil && preflight.Blocking(preflight.Status(r.Status)) {
		at := r.FailingSince.Add(DomainAuthGrace)
		e.BlocksAt = &at
		e.Blocking = !now.Before(at)
	}
	return e
}

// ListDomains lists the tenant's sender domains in name order, after the
// given name.
func (s *Store) ListDomains(ctx context.Context, tenant, after string, limit int) (_ []SenderDomain, next string, err error) {
	defer wrapErr(&err, "list domains")
	lim := Page{Limit: limit}.limit()
	mode, err := s.q.GetRequireDomainAuth(ctx, tenant)
	if err != nil {
		return nil, "", mapErr(err, "tenant")
	}
	rows, err := s.q.ListSenderDomains(ctx, dbsqlc.ListSenderDomainsParams{TenantKey: tenant, After: after, Lim: int32(lim + 1)})
	if err != nil {
		return nil, "", err
	}
	if len(rows) > lim {
		rows, next = rows[:lim], rows[lim-1].Domain
	}
	out := make([]SenderDomain, 0, len(rows))
	for _, r := range rows {
		d, err := s.senderDomainFrom(ctx, tenant, r, mode)
		if err != nil {
			return nil, "", err
		}
		out = append(out, d)
	}
	return out, next, nil
}

// GetDomain returns one sender domain with its last report.
func (s *Store) GetDomain(ctx context.Context, tenant, domain string) (_ SenderDomain, err error) {
	defer wrapErr(&err, "get domain")
	d, err := NormalizeDomain("domain", domain)
	if err != nil {
		return SenderDomain{}, err
	}
	mode, err := s.q.GetRequireDomainAuth(ctx, tenant)
	if err != nil {
		return SenderDomain{}, mapErr(err, "tenant")
	}
	r, err := s.q.GetSenderDomain(ctx, dbsqlc.GetSenderDomainParams{TenantKey: tenant, Domain: d})
	if err != nil {
		return SenderDomain{}, mapErr(err, "domain")
	}
	return s.senderDomainFrom(ctx, tenant, r, mode)
}

// CheckDomain checks a sender domain now (creating it when new, storing
// the given settings first), stores the report and applies
// require_domain_auth.
func (s *Store) CheckDomain(ctx context.Context, tenant, domain string, in DomainCheckInput) (_ SenderDomain, err error) {
	defer wrapErr(&err, "check domain")
	d, err := NormalizeDomain("domain", domain)
	if err != nil {
		return SenderDomain{}, err
	}
	if in.Provider != nil && *in.Provider != "" && preflight.ProviderSPFInclude[*in.Provider] == "" {
		return SenderDomain{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "provider", "provider must be \"google\", \"microsoft\" or \"\" (from the adapters)")
	}
	if in.DKIMSelectors != nil {
		if len(*in.DKIMSelectors) > 10 {
			return SenderDomain{}, dripdrop.Errorf(dripdrop.ECodeOutOfRange, "dkim_selectors", "at most 10 selectors")
		}
		for i, sel := range *in.DKIMSelectors {
			if _, err := NormalizeDomain("dkim_selectors", sel+".x.example"); err != nil || strings.Contains(sel, ".") && sel != strings.Trim(sel, ".") {
				return SenderDomain{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "dkim_selectors", "dkim_selectors[%d] is not a valid selector", i)
			}
		}
	}
	if s.resolver == nil {
		return SenderDomain{}, dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "no DNS resolver is configured")
	}
	now := s.clock.Now()
	if err := s.q.EnsureSenderDomain(ctx, dbsqlc.EnsureSenderDomainParams{TenantKey: tenant, Domain: d, Now: now}); err != nil {
		return SenderDomain{}, mapErr(err, "tenant")
	}
	row, err := s.q.GetSenderDomain(ctx, dbsqlc.GetSenderDomainParams{TenantKey: tenant, Domain: d})
	if err != nil {
		return SenderDomain{}, err
	}
	if in.DKIMSelectors != nil || in.Provider != nil {
		if in.DKIMSelectors != nil {
			row.DkimSelectors = *in.DKIMSelectors
		}
		if in.Provider != nil {
			row.ProviderSet = *in.Provider
		}
		if row.DkimSelectors == nil {
			row.DkimSelectors = []string{}
		}
		if err := s.q.SetSenderDomainSettings(ctx, dbsqlc.SetSenderDomainSettingsParams{TenantKey: tenant, Domain: d, DkimSelectors: row.DkimSelectors, ProviderSet: row.ProviderSet, Now: now}); err != nil {
			return SenderDomain{}, err
		}
	}
	row, err = s.checkSenderDomain(ctx, tenant, row)
	if err != nil {
		return SenderDomain{}, err
	}
	mode, err := s.q.GetRequireDomainAuth(ctx, tenant)
	if err != nil {
		return SenderDomain{}, err
	}
	return s.senderDomainFrom(ctx, tenant, row, mode)
}

// DomainSweep is the leader's duty for one tenant: it checks the sender
// domains that are due (new ones, and each again after a day, an hour when
// failing, 15 minutes when the DNS did not answer). It returns how many it
// checked.
func (s *Store) DomainSweep(ctx context.Context, tenant string) (_ int, err error) {
	defer wrapErr(&err, "domain sweep")
	if s.resolver == nil {
		return 0, nil
	}
	rows, err := s.q.DueSenderDomains(ctx, dbsqlc.DueSenderDomainsParams{TenantKey: tenant, Now: s.clock.Now(), Lim: 50})
	if err != nil {
		return 0, err
	}
	for i, r := range rows {
		if _, err := s.checkSenderDomain(ctx, tenant, r); err != nil {
			return i, err
		}
	}
	return len(rows), nil
}

// providerOf is the sending provider of a domain: the operator's override,
// else the first adapter whose SMTP host is a known provider's.
func (s *Store) providerOf(tenant string, r dbsqlc.SenderDomain, adapters []dbsqlc.Adapter) string {
	if r.ProviderSet != "" {
		return r.ProviderSet
	}
	for _, a := range adapters {
		if len(a.Credentials) == 0 || s.vault == nil {
			continue
		}
		c, err := s.openCredentials(tenant, a)
		if err != nil {
			continue
		}
		if p := preflight.ProviderOfHost(c.Host); p != "" {
			return p
		}
	}
	return ""
}

// checkSenderDomain runs the DNS checks (outside any transaction), stores
// the report, and under require_domain_auth=block rests the domain's
// adapters once it has failed for the grace period.
func (s *Store) checkSenderDomain(ctx context.Context, tenant string, r dbsqlc.SenderDomain) (dbsqlc.SenderDomain, error) {
	adapters, err := s.q.AdaptersOfDomain(ctx, dbsqlc.AdaptersOfDomainParams{TenantKey: tenant, Domain: r.Domain})
	if err != nil {
		return r, err
	}
	provider := s.providerOf(tenant, r, adapters)
	rep := preflight.CheckDomain(ctx, s.resolver, preflight.DomainInput{Domain: r.Domain, Provider: provider, DKIMSelectors: r.DkimSelectors}, s.clock.Now())
	rep.Checks = withAlignment(rep.Checks, sentCopyOf(r), r.Domain, provider)
	rep.Status = foldStatus(rep.Checks)
	checks, err := json.Marshal(rep.Checks)
	if err != nil {
		return r, err
	}
	now := s.clock.Now()
	next := now.Add(recheckPass)
	switch rep.Status {
	case preflight.Fail:
		next = now.Add(recheckFail)
	case preflight.Unknown:
		next = now.Add(recheckUnknown)
	}
	exp := rep.ExpiresAt
	row, err := s.q.SaveSenderDomain(ctx, dbsqlc.SaveSenderDomainParams{
		TenantKey: tenant, Domain: r.Domain, Status: string(rep.Status), Checks: checks, Provider: provider, Now: now,
		ExpiresAt: &exp, NextCheckAt: next,
	})
	if err != nil {
		return r, err
	}
	mode, err := s.q.GetRequireDomainAuth(ctx, tenant)
	if err != nil {
		return row, err
	}
	if e := enforcement(mode, row, now); e.Blocking {
		if err := s.restForDomain(ctx, tenant, adapters, now); err != nil {
			return row, err
		}
	}
	return row, nil
}

// restForDomain rests (or keeps resting) every live adapter of a failing
// domain, reason domain_auth_failed, until the next hourly check is past.
func (s *Store) restForDomain(ctx context.Context, tenant string, adapters []dbsqlc.Adapter, now time.Time) error {
	until := now.Add(domainRest)
	for _, ad := range adapters {
		if err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
			a, err := q.LockAdapter(ctx, dbsqlc.LockAdapterParams{TenantKey: tenant, ID: ad.ID})
			if err != nil || a.DeletedAt != nil {
				return nil, err
			}
			if a.HealthState == dripdrop.HealthResting {
				return nil, q.ExtendRest(ctx, dbsqlc.ExtendRestParams{TenantKey: tenant, ID: a.ID, Until: until, Now: now})
			}
			_, ev, err := s.transition(ctx, q, a, health.Decision{To: dripdrop.HealthResting, Reason: ReasonDomainAuthFailed, RestingUntil: &until}, SourceEngine)
			if err != nil {
				return nil, err
			}
			return []event{ev}, nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// recipientCheck is the pre-write check of an enrollment request: one
// verdict per address (a rejection code, or the recipient's provider).
// At verify_recipients=mx it reads the tenant's recipient-domain cache in
// one query, asks the DNS for the domains it misses (bounded concurrency
// and time, outside any transaction) and stores what it learned; a DNS
// failure is unknown and never rejects.
func (s *Store) recipientCheck(ctx context.Context, tenant, level string, emails []string) ([]preflight.RecipientVerdict, error) {
	out := make([]preflight.RecipientVerdict, len(emails))
	if level == "" {
		level = preflight.VerifySyntax
	}
	var cache map[string]*preflight.RecipientDomain
	if level == preflight.VerifyMX && s.resolver != nil {
		var err error
		if cache, err = s.recipientDomains(ctx, tenant, emails); err != nil {
			return nil, err
		}
	}
	for i, e := range emails {
		var d *preflight.RecipientDomain
		if cache != nil {
			d = cache[preflight.RecipientDomainOf(e)]
		}
		out[i] = preflight.JudgeRecipient(e, level, d)
	}
	return out, nil
}

func (s *Store) recipientDomains(ctx context.Context, tenant string, emails []string) (map[string]*preflight.RecipientDomain, error) {
	seen := map[string]bool{}
	var domains []string
	for _, e := range emails {
		d := preflight.RecipientDomainOf(e)
		if d == "" || seen[d] || preflight.WellKnownProvider(d) != "" {
			continue // a consumer mailbox domain (gmail.com, …) takes mail
		}
		seen[d] = true
		domains = append(domains, d)
	}
	out := make(map[string]*preflight.RecipientDomain, len(domains))
	if len(domains) == 0 {
		return out, nil
	}
	now := s.clock.Now()
	rows, err := s.q.CachedRecipientDomains(ctx, dbsqlc.CachedRecipientDomainsParams{TenantKey: tenant, Domains: domains, Now: now})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.Domain] = &preflight.RecipientDomain{Domain: r.Domain, Status: preflight.Status(r.Status), Code: r.Code, Provider: r.Provider, CheckedAt: r.CheckedAt, ExpiresAt: r.ExpiresAt}
	}
	var missing []string
	for _, d := range domains {
		if out[d] == nil {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	dctx, cancel := context.WithTimeout(ctx, recipientDNSBudget)
	defer cancel()
	fresh := make([]preflight.RecipientDomain, len(missing))
	var wg sync.WaitGroup
	sem := make(chan struct{}, recipientLookups)
	for i, d := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fresh[i] = preflight.CheckRecipientDomain(dctx, s.resolver, d, now)
		}()
	}
	wg.Wait()
	p := dbsqlc.SaveRecipientDomainsParams{TenantKey: tenant}
	for i := range fresh {
		f := &fresh[i]
		out[f.Domain] = f
		ev, _ := json.Marshal(f.Evidence)
		p.Domains = append(p.Domains, f.Domain)
		p.Statuses = append(p.Statuses, string(f.Status))
		p.Codes = append(p.Codes, f.Code)
		p.Providers = append(p.Providers, f.Provider)
		p.Evidence = append(p.Evidence, string(ev))
		p.CheckedAt = append(p.CheckedAt, f.CheckedAt)
		p.ExpiresAt = append(p.ExpiresAt, f.ExpiresAt)
	}
	if err := s.saveRecipientDomains(ctx, p); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	return out, nil
}

// saveRecipientDomains stores fresh recipient-domain checks. On Citus an
// INSERT … SELECT from the parameter arrays would be collected on the
// coordinator and commit on every worker, and this cache has no tenant
// table to join them to: there it is a multi-row VALUES upsert
// (docs/scaling.md#writing-queries-that-shard).
func (s *Store) saveRecipientDomains(ctx context.Context, p dbsqlc.SaveRecipientDomainsParams) error {
	if !s.onCitus(ctx) {
		return s.q.SaveRecipientDomains(ctx, p)
	}
	rows := make([][]any, len(p.Domains))
	for i := range p.Domains {
		rows[i] = []any{p.Domains[i], p.Statuses[i], p.Codes[i], p.Providers[i], p.Evidence[i], p.CheckedAt[i], p.ExpiresAt[i]}
	}
	for _, chunk := range valuesChunks(rows, 1) {
		sql, args := valuesInsert("INSERT INTO recipient_domains (tenant_key, domain, status, code, provider, evidence, checked_at, expires_at) VALUES ",
			"($1, ?, ?, ?, ?, ?::jsonb, ?::timestamptz, ?::timestamptz)",
			` ON CONFLICT (tenant_key, domain) DO UPDATE SET status = excluded.status, code = excluded.code, provider = excluded.provider,
				evidence = excluded.evidence, checked_at = excluded.checked_at, expires_at = excluded.expires_at`, chunk, p.TenantKey)
		if _, err := s.pool.Exec(ctx, sql, args...); err != nil {
			return err
		}
	}
	return nil
}

// rejectRecipient turns a rejection into the error of a request.
func rejectRecipient(v preflight.RecipientVerdict, field string) error {
	code := map[string]string{
		preflight.ReasonInvalidEmail: dripdrop.ECodeInvalidEmail, preflight.ReasonRoleAddress: dripdrop.ECodeRoleAddress,
		preflight.ReasonDisposableDomain: dripdrop.ECodeDisposableDomain, preflight.ReasonUndeliverableDomain: dripdrop.ECodeUndeliverableDomain,
	}[v.Reason]
	if code == "" {
		code = dripdrop.ECodeInvalidValue
	}
	return dripdrop.Errorf(code, field, "%s", v.Detail)
}
