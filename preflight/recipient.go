package preflight

import (
	"bufio"
	"context"
	_ "embed"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Verification levels of recipients at enrollment (per sequence version).
const (
	VerifyOff    = "off"    // only the address form the API always checks
	VerifySyntax = "syntax" // RFC 5321/6531 syntax with IDN, role and disposable lists (the default)
	VerifyMX     = "mx"     // and a mail domain in the DNS: MX or address records, no null MX
)

// ValidVerify reports whether v is a verification level.
func ValidVerify(v string) bool { return v == VerifyOff || v == VerifySyntax || v == VerifyMX }

// Rejection codes of a recipient.
const (
	ReasonInvalidEmail        = "invalid_email"
	ReasonRoleAddress         = "role_address"
	ReasonDisposableDomain    = "disposable_domain"
	ReasonUndeliverableDomain = "undeliverable_domain"
)

// Address is a parsed recipient address.
type Address struct {
	Local  string // as given (UTF-8 allowed, RFC 6531)
	Domain string // the A-label form, lowercased: what DNS is asked
	// UDomain is the domain in Unicode (U-label) form.
	UDomain string
}

var idnaProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true), idna.VerifyDNSLength(true), idna.StrictDomainName(true))

// ParseAddress checks an address against RFC 5321 (dot-atom or quoted local
// part, at most 64 octets; a domain of LDH labels, at most 255 octets, no
// address literals) extended by RFC 6531 (UTF-8 in the local part, an IDN
// domain, checked and converted by IDNA 2008 with UTS #46 mapping). It
// returns a reason code on failure.
func ParseAddress(s string) (Address, string, string) {
	if !utf8.ValidString(s) || len(s) > 254 {
		return Address{}, ReasonInvalidEmail, "the address is not valid UTF-8 or longer than 254 octets"
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Address{}, ReasonInvalidEmail, "the address needs the form local@domain"
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return Address{}, ReasonInvalidEmail, "the local part is longer than 64 octets"
	}
	if msg := checkLocal(local); msg != "" {
		return Address{}, ReasonInvalidEmail, msg
	}
	if strings.HasPrefix(domain, "[") {
		return Address{}, ReasonInvalidEmail, "address literals are not accepted for recipients"
	}
	ascii, err := idnaProfile.ToASCII(domain)
	if err != nil || ascii == "" || !strings.Contains(ascii, ".") {
		return Address{}, ReasonInvalidEmail, "the domain is not a valid (internationalised) domain name"
	}
	ascii = strings.ToLower(ascii)
	for _, l := range strings.Split(ascii, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return Address{}, ReasonInvalidEmail, "the domain has an invalid label"
		}
	}
	if tld := ascii[strings.LastIndexByte(ascii, '.')+1:]; strings.Trim(tld, "0123456789") == "" {
		return Address{}, ReasonInvalidEmail, "the domain's last label is numeric"
	}
	u, err := idnaProfile.ToUnicode(ascii)
	if err != nil {
		u = ascii
	}
	return Address{Local: local, Domain: ascii, UDomain: u}, "", ""
}

// checkLocal validates a dot-atom (atext, or any non-ASCII UTF-8 under
// RFC 6531) or a quoted string.
func checkLocal(l string) string {
	if strings.HasPrefix(l, "\"") {
		if len(l) < 2 || !strings.HasSuffix(l, "\"") {
			return "the quoted local part is not closed"
		}
		body := l[1 : len(l)-1]
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c == '\\' {
				i++
				if i == len(body) || body[i] < 32 || body[i] == 127 {
					return "a bad escape in the quoted local part"
				}
				continue
			}
			if c == '"' || c < 32 || c == 127 {
				return "a forbidden character in the quoted local part"
			}
		}
		return ""
	}
	if l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return "the local part has a leading, trailing or double dot"
	}
	for _, r := range l {
		if r >= 0x80 {
			continue
		}
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r)) {
			return "the local part has a character that needs quoting"
		}
	}
	return ""
}

//go:embed data/role_addresses.txt
var roleData string

//go:embed data/disposable_domains.txt
var disposableData string

var (
	roleSet       = loadList(roleData)
	disposableSet = loadList(disposableData)
)

// loadList reads a data file: one entry a line, lowercased; "#" starts a
// comment; blank lines are skipped.
func loadList(s string) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.ToLower(strings.TrimSpace(line)); line != "" {
			out[line] = true
		}
	}
	return out
}

// IsRoleAddress reports whether a local part names a role or a team rather
// than a person (data/role_addresses.txt). A "+tag" and the separators ".",
// "-", "_" do not hide a role: "Sales+EU" and "no-reply" match.
func IsRoleAddress(local string) bool {
	l := strings.ToLower(strings.Trim(local, "\""))
	if i := strings.IndexByte(l, '+'); i > 0 {
		l = l[:i]
	}
	if roleSet[l] {
		return true
	}
	return roleSet[strings.NewReplacer(".", "", "-", "", "_", "").Replace(l)]
}

// IsDisposableDomain reports whether a domain (an A-label) or one of its
// parents is a disposable-mailbox service (data/disposable_domains.txt).
func IsDisposableDomain(domain string) bool {
	d := normName(domain)
	for {
		if disposableSet[d] {
			return true
		}
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		d = d[i+1:]
	}
}

// wellKnown maps consumer mail domains to their provider, so the provider
// of their users is known without a lookup.
var wellKnown = map[string]string{
	"gmail.com": ProviderGoogle, "googlemail.com": ProviderGoogle,
	"outlook.com": ProviderMicrosoft, "hotmail.com": ProviderMicrosoft, "live.com": ProviderMicrosoft, "msn.com": ProviderMicrosoft,
	"hotmail.co.uk": ProviderMicrosoft, "outlook.de": ProviderMicrosoft, "hotmail.de": ProviderMicrosoft, "hotmail.fr": ProviderMicrosoft,
	"yahoo.com": ProviderYahoo, "ymail.com": ProviderYahoo, "yahoo.co.uk": ProviderYahoo, "yahoo.de": ProviderYahoo, "yahoo.fr": ProviderYahoo,
	"aol.com":    ProviderYahoo,
	"icloud.com": ProviderApple, "me.com": ProviderApple, "mac.com": ProviderApple,
	"zoho.com": ProviderZoho, "zohomail.com": ProviderZoho,
}

// WellKnownProvider names the provider of a consumer mail domain without
// DNS ("" when the domain is not one of them).
func WellKnownProvider(domain string) string { return wellKnown[normName(domain)] }

// Recipient-domain cache lifetimes: a definite answer stands for its DNS
// TTL but at least MinRecipientTTL and at most MaxRecipientTTL; a DNS
// failure is retried after FailedRecipientTTL.
const (
	MinRecipientTTL    = time.Hour
	MaxRecipientTTL    = 7 * 24 * time.Hour
	FailedRecipientTTL = 5 * time.Minute
)

// RecipientDomain is the cached verdict on one recipient domain.
type RecipientDomain struct {
	Domain    string     `json:"domain"`
	Status    Status     `json:"status"` // Pass, Fail (undeliverable) or Unknown
	Code      string     `json:"code"`   // LookupMail's code
	Provider  string     `json:"provider"`
	Evidence  []Evidence `json:"evidence"`
	CheckedAt time.Time  `json:"checked_at"`
	ExpiresAt time.Time  `json:"expires_at"`
}

// CheckRecipientDomain asks the DNS where mail for domain goes.
func CheckRecipientDomain(ctx context.Context, r Resolver, domain string, now time.Time) RecipientDomain {
	m := LookupMail(ctx, r, domain)
	rd := RecipientDomain{Domain: normName(domain), Status: m.Status, Code: m.Code, Provider: m.Provider, Evidence: m.Evidence, CheckedAt: now}
	if p := WellKnownProvider(domain); p != "" && m.Status != Fail {
		rd.Provider = p
	}
	ttl := FailedRecipientTTL
	if m.Status != Unknown {
		ttl = min(max(m.TTL, MinRecipientTTL), MaxRecipientTTL)
	}
	rd.ExpiresAt = now.Add(ttl)
	return rd
}

// RecipientVerdict is the decision on one recipient at enrollment.
type RecipientVerdict struct {
	Reason   string // "" when accepted; else a rejection code
	Detail   string
	Provider string // the recipient's provider when known ("" otherwise)
}

// JudgeRecipient decides one address at a verification level. domain is the
// cached (or fresh) DNS verdict on its domain, consulted only at VerifyMX;
// nil there means none is available and the address is accepted (a DNS
// failure never rejects).
func JudgeRecipient(email, level string, domain *RecipientDomain) RecipientVerdict {
	if level == VerifyOff || level == "" {
		return RecipientVerdict{Provider: WellKnownProvider(domainOf(email))}
	}
	a, code, msg := ParseAddress(email)
	if code != "" {
		return RecipientVerdict{Reason: code, Detail: msg}
	}
	v := RecipientVerdict{Provider: WellKnownProvider(a.Domain)}
	if IsRoleAddress(a.Local) {
		return RecipientVerdict{Reason: ReasonRoleAddress, Detail: "the address names a role or team, not a person (" + strings.ToLower(a.Local) + "@)"}
	}
	if IsDisposableDomain(a.Domain) {
		return RecipientVerdict{Reason: ReasonDisposableDomain, Detail: a.Domain + " is a disposable-mailbox service"}
	}
	if level == VerifyMX && domain != nil {
		switch domain.Status {
		case Fail:
			why := "has no MX and no address record"
			if domain.Code == "mx_null" {
				why = "publishes a null MX: it accepts no mail"
			}
			return RecipientVerdict{Reason: ReasonUndeliverableDomain, Detail: a.Domain + " " + why}
		case Pass:
			v.Provider = domain.Provider
		}
	}
	return v
}

// RecipientDomainOf returns the A-label domain of an address ("" when it
// does not parse).
func RecipientDomainOf(email string) string {
	a, code, _ := ParseAddress(email)
	if code != "" {
		return ""
	}
	return a.Domain
}

func domainOf(email string) string {
	if i := strings.LastIndexByte(email, '@'); i >= 0 {
		return strings.ToLower(email[i+1:])
	}
	return ""
}
