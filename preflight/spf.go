package preflight

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MaxSPFLookups is RFC 7208's limit on DNS-querying terms (include, a, mx,
// ptr, exists and the redirect modifier), counted through every include and
// redirect.
const MaxSPFLookups = 10

// SPFTerm is one term of an SPF record.
type SPFTerm struct {
	Qualifier byte   // '+', '-', '~', '?' (mechanisms only)
	Name      string // mechanism or modifier name, lowercased
	Value     string // domain-spec, address or modifier value ("" when absent)
	Modifier  bool
}

// SPFRecord is a parsed "v=spf1" record.
type SPFRecord struct {
	Terms []SPFTerm
}

// IsSPF reports whether a TXT string is an SPF record (RFC 7208 §4.5:
// "v=spf1" followed by a space or the end, case-insensitively).
func IsSPF(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

var spfMechanisms = map[string]bool{"all": true, "include": true, "a": true, "mx": true, "ptr": true, "ip4": true, "ip6": true, "exists": true}

// ParseSPF parses an SPF record (RFC 7208 §4.6/§12). Unknown mechanisms and
// malformed terms are errors (the receiver's permerror); unknown modifiers
// are kept, as the RFC asks.
func ParseSPF(txt string) (SPFRecord, error) {
	if !IsSPF(txt) {
		return SPFRecord{}, fmt.Errorf("not an SPF record")
	}
	var rec SPFRecord
	seen := map[string]bool{}
	for _, f := range strings.Fields(txt[6:]) {
		t := SPFTerm{Qualifier: '+'}
		if i := strings.IndexByte(f, '='); i > 0 && !strings.ContainsAny(f[:i], ":/") {
			t.Modifier, t.Name, t.Value = true, strings.ToLower(f[:i]), f[i+1:]
			if !validSPFName(t.Name) {
				return rec, fmt.Errorf("malformed modifier %q", f)
			}
			if (t.Name == "redirect" || t.Name == "exp") && seen[t.Name] {
				return rec, fmt.Errorf("modifier %q appears twice", t.Name)
			}
			if (t.Name == "redirect" || t.Name == "exp") && t.Value == "" {
				return rec, fmt.Errorf("modifier %q needs a domain", t.Name)
			}
			seen[t.Name] = true
			rec.Terms = append(rec.Terms, t)
			continue
		}
		if f[0] == '+' || f[0] == '-' || f[0] == '~' || f[0] == '?' {
			t.Qualifier, f = f[0], f[1:]
		}
		name := f
		if i := strings.IndexAny(f, ":/"); i >= 0 {
			name = f[:i]
			if f[i] == ':' {
				t.Value = f[i+1:]
				if t.Value == "" {
					return rec, fmt.Errorf("mechanism %q has an empty argument", f)
				}
			} else {
				t.Value = f[i:] // a bare CIDR length: a/24, mx//64
			}
		}
		t.Name = strings.ToLower(name)
		if !spfMechanisms[t.Name] {
			return rec, fmt.Errorf("unknown mechanism %q", name)
		}
		switch t.Name {
		case "include", "exists", "ip4", "ip6":
			if t.Value == "" || strings.HasPrefix(t.Value, "/") {
				return rec, fmt.Errorf("mechanism %q needs an argument", t.Name)
			}
		case "all":
			if t.Value != "" {
				return rec, fmt.Errorf("mechanism all takes no argument")
			}
		}
		rec.Terms = append(rec.Terms, t)
	}
	return rec, nil
}

func validSPFName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// All returns the record's "all" mechanism, if any.
func (r SPFRecord) All() (SPFTerm, bool) {
	for _, t := range r.Terms {
		if !t.Modifier && t.Name == "all" {
			return t, true
		}
	}
	return SPFTerm{}, false
}

// Redirect returns the redirect modifier's domain; a record with an "all"
// mechanism ignores its redirect (RFC 7208 §6.1).
func (r SPFRecord) Redirect() string {
	if _, ok := r.All(); ok {
		return ""
	}
	for _, t := range r.Terms {
		if t.Modifier && t.Name == "redirect" {
			return t.Value
		}
	}
	return ""
}

// Lookups counts the record's own DNS-querying terms.
func (r SPFRecord) Lookups() int {
	n := 0
	for _, t := range r.Terms {
		if !t.Modifier {
			switch t.Name {
			case "include", "a", "mx", "ptr", "exists":
				n++
			}
		}
	}
	if r.Redirect() != "" {
		n++
	}
	return n
}

// hasMacro reports whether a domain-spec uses macros (it cannot be followed
// without a message).
func hasMacro(s string) bool { return strings.Contains(s, "%") }

// ProviderSPFInclude is the include a known sending provider needs in the
// sender domain's SPF (docs/preflight.md).
var ProviderSPFInclude = map[string]string{
	ProviderGoogle:    "_spf.google.com",
	ProviderMicrosoft: "spf.protection.outlook.com",
}

// SPFSelect picks the SPF record out of a TXT answer: exactly one must
// exist.
func SPFSelect(txts []string) (string, int) {
	var found []string
	for _, t := range txts {
		if IsSPF(t) {
			found = append(found, t)
		}
	}
	if len(found) == 1 {
		return found[0], 1
	}
	return "", len(found)
}

// CheckSPF evaluates the SPF record of domain: exactly one record, no
// "+all"/"?all", at most MaxSPFLookups DNS-querying terms counted through
// includes and redirects, and the provider's include when provider is a
// known one.
func CheckSPF(ctx context.Context, r Resolver, domain, provider string) Check {
	c := Check{Name: "spf", Facts: map[string]any{}}
	a := r.TXT(ctx, domain)
	c.Evidence = append(c.Evidence, evidence(domain, "TXT", a))
	c.TTL = a.TTL
	if a.Status == Error {
		return c.set(Unknown, "spf_dns_error", "The DNS did not answer for %s (%s); the check will be repeated.", domain, a.Err)
	}
	txt, n := SPFSelect(a.TXT)
	switch {
	case n == 0:
		return c.set(Fail, "spf_missing", "%s publishes no SPF record: add one TXT record starting with \"v=spf1\".", domain)
	case n > 1:
		return c.set(Fail, "spf_multiple_records", "%s publishes %d SPF records; receivers treat that as an error (permerror). Merge them into one.", domain, n)
	}
	rec, err := ParseSPF(txt)
	if err != nil {
		return c.set(Fail, "spf_syntax", "The SPF record of %s is invalid: %v.", domain, err)
	}
	if all, ok := rec.All(); ok && (all.Qualifier == '+' || all.Qualifier == '?') {
		code := "spf_pass_all"
		if all.Qualifier == '?' {
			code = "spf_neutral_all"
		}
		return c.set(Fail, code, "The SPF record of %s ends in \"%call\", which authorises (or does not refuse) every server on the Internet; end it with \"~all\" or \"-all\".", domain, all.Qualifier)
	}
	w := spfWalk{ctx: ctx, r: r, visited: map[string]bool{normName(domain): true}, includes: map[string]bool{}}
	w.walk(rec, 0)
	c.Evidence = append(c.Evidence, w.evidence...)
	c.TTL = minTTL(c.TTL, w.ttl)
	c.Facts["lookups"] = w.lookups
	c.Facts["record"] = txt
	if w.unknown != "" && w.lookups <= MaxSPFLookups && w.fail == "" {
		return c.set(Unknown, "spf_dns_error", "The DNS did not answer for %s, which the SPF record of %s includes; the check will be repeated.", w.unknown, domain)
	}
	if w.lookups > MaxSPFLookups {
		return c.set(Fail, "spf_too_many_lookups", "The SPF record of %s needs %d DNS lookups (includes counted through); receivers stop at %d and fail it (permerror). Flatten or remove includes.", domain, w.lookups, MaxSPFLookups)
	}
	if w.fail != "" {
		return c.set(Fail, "spf_include_broken", "%s", w.fail)
	}
	if inc, ok := ProviderSPFInclude[provider]; ok {
		c.Facts["provider_include"] = inc
		if !w.includes[inc] {
			return c.set(Fail, "spf_provider_missing", "The SPF record of %s does not include %s, so %s's servers are not authorised to send for it: add \"include:%s\" before the \"all\".", domain, inc, providerName(provider), inc)
		}
	}
	if _, ok := rec.All(); !ok && rec.Redirect() == "" {
		return c.set(Warn, "spf_no_all", "The SPF record of %s has no \"all\" mechanism, so unlisted servers get \"neutral\"; end it with \"~all\" or \"-all\".", domain)
	}
	return c.set(Pass, "spf_ok", "%s publishes one valid SPF record with %d DNS lookups (at most %d).", domain, w.lookups, MaxSPFLookups)
}

type spfWalk struct {
	ctx      context.Context
	r        Resolver
	lookups  int
	visited  map[string]bool
	includes map[string]bool
	evidence []Evidence
	unknown  string // first name the DNS did not answer for
	fail     string // first broken include/redirect
	ttl      time.Duration
}

func (w *spfWalk) walk(rec SPFRecord, depth int) {
	var targets []string
	for _, t := range rec.Terms {
		if !t.Modifier {
			switch t.Name {
			case "include", "a", "mx", "ptr", "exists":
				w.lookups++
			}
			if t.Name == "include" {
				targets = append(targets, t.Value)
			}
		}
	}
	if rd := rec.Redirect(); rd != "" {
		w.lookups++
		targets = append(targets, rd)
	}
	for _, target := range targets {
		if w.lookups > MaxSPFLookups || depth > MaxSPFLookups {
			return
		}
		if hasMacro(target) {
			continue // depends on the message; counted, not followed
		}
		name := normName(target)
		w.includes[name] = true
		if w.visited[name] {
			continue
		}
		w.visited[name] = true
		a := w.r.TXT(w.ctx, name)
		w.evidence = append(w.evidence, evidence(name, "TXT", a))
		w.ttl = minTTL(w.ttl, a.TTL)
		if a.Status == Error {
			if w.unknown == "" {
				w.unknown = name
			}
			continue
		}
		txt, n := SPFSelect(a.TXT)
		if n != 1 {
			if w.fail == "" {
				w.fail = fmt.Sprintf("%s, named by an include or redirect, publishes %d SPF records (exactly one is needed): receivers fail the whole record.", name, n)
			}
			continue
		}
		sub, err := ParseSPF(txt)
		if err != nil {
			if w.fail == "" {
				w.fail = fmt.Sprintf("The SPF record of %s, named by an include or redirect, is invalid: %v.", name, err)
			}
			continue
		}
		w.walk(sub, depth+1)
	}
}

func (c Check) set(s Status, code, format string, args ...any) Check {
	c.Status, c.Code, c.Detail = s, code, fmt.Sprintf(format, args...)
	if c.Evidence == nil {
		c.Evidence = []Evidence{}
	}
	return c
}

func providerName(p string) string {
	switch p {
	case ProviderGoogle:
		return "Google"
	case ProviderMicrosoft:
		return "Microsoft"
	}
	return p
}
