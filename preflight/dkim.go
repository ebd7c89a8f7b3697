package preflight

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// DKIM key sizes (RFC 8301 §3.2: verifiers refuse RSA keys under 1024
// bits; 2048 is what Google and Microsoft generate and recommend).
const (
	MinDKIMBits  = 1024
	GoodDKIMBits = 2048
)

// ProviderDKIMSelectors are the selectors a known provider publishes its
// keys under: Google Workspace's default "google", Microsoft 365's pair.
var ProviderDKIMSelectors = map[string][]string{
	ProviderGoogle:    {"google"},
	ProviderMicrosoft: {"selector1", "selector2"},
}

// DKIMKey is a parsed DKIM key record (RFC 6376 §3.6.1).
type DKIMKey struct {
	Version   string
	KeyType   string // rsa | ed25519
	Bits      int    // RSA modulus size; 256 for Ed25519
	Revoked   bool   // an empty p= tag
	Testing   bool   // t=y
	HashAlgos []string
}

// ParseTags parses an RFC 6376 §3.2 tag-list ("v=DKIM1; k=rsa; p=…"):
// tag names are case-sensitive, whitespace around tags and values is
// ignored, a tag may appear once, and a trailing ";" is allowed.
func ParseTags(s string) (map[string]string, []string, error) {
	tags := map[string]string{}
	var order []string
	for _, spec := range strings.Split(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		k, v, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, nil, fmt.Errorf("tag %q has no value", strings.TrimSpace(spec))
		}
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, " \t\r\n") {
			return nil, nil, fmt.Errorf("malformed tag name %q", k)
		}
		if _, dup := tags[k]; dup {
			return nil, nil, fmt.Errorf("tag %q appears twice", k)
		}
		tags[k] = strings.TrimSpace(v)
		order = append(order, k)
	}
	return tags, order, nil
}

// ParseDKIMKey parses a DKIM key record and measures its key.
func ParseDKIMKey(txt string) (DKIMKey, error) {
	tags, order, err := ParseTags(txt)
	if err != nil {
		return DKIMKey{}, err
	}
	k := DKIMKey{Version: tags["v"], KeyType: "rsa"}
	if v, ok := tags["v"]; ok {
		if v != "DKIM1" {
			return k, fmt.Errorf("unknown version %q (want DKIM1)", v)
		}
		if order[0] != "v" {
			return k, fmt.Errorf("v= must be the first tag")
		}
	}
	if kt, ok := tags["k"]; ok && kt != "" {
		k.KeyType = strings.ToLower(kt)
	}
	for _, f := range strings.Split(tags["t"], ":") {
		if strings.TrimSpace(f) == "y" {
			k.Testing = true
		}
	}
	if h, ok := tags["h"]; ok {
		for _, a := range strings.Split(h, ":") {
			k.HashAlgos = append(k.HashAlgos, strings.TrimSpace(a))
		}
	}
	p, ok := tags["p"]
	if !ok {
		return k, fmt.Errorf("no p= tag (public key)")
	}
	p = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, p)
	if p == "" {
		k.Revoked = true
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return k, fmt.Errorf("p= is not base64: %v", err)
	}
	switch k.KeyType {
	case "rsa":
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			// RFC 6376 erratum 3017: some publish a bare RSAPublicKey.
			rk, err2 := x509.ParsePKCS1PublicKey(der)
			if err2 != nil {
				return k, fmt.Errorf("p= is not an RSA public key: %v", err)
			}
			pub = rk
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return k, fmt.Errorf("p= is not an RSA public key")
		}
		k.Bits = rk.N.BitLen()
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return k, fmt.Errorf("an Ed25519 key has %d bytes, not %d", ed25519.PublicKeySize, len(der))
		}
		k.Bits = 256
	default:
		return k, fmt.Errorf("unknown key type %q", k.KeyType)
	}
	return k, nil
}

// DKIMSelectors returns the selectors to look at: the configured ones, else
// the provider's known ones.
func DKIMSelectors(provider string, configured []string) []string {
	if len(configured) > 0 {
		return configured
	}
	return ProviderDKIMSelectors[provider]
}

type selectorResult struct {
	selector string
	status   Status
	code     string
	detail   string
	bits     int
	ttl      time.Duration
}

// CheckDKIM looks for a usable key at each selector; the best selector
// decides. RSA keys below MinDKIMBits fail, below GoodDKIMBits warn.
func CheckDKIM(ctx context.Context, r Resolver, domain string, selectors []string) Check {
	c := Check{Name: "dkim", Facts: map[string]any{"selectors": selectors}}
	if len(selectors) == 0 {
		return c.set(Warn, "dkim_no_selector", "dripdrop does not know which DKIM selector %s signs with: set dkim_selectors on the domain (POST /v1/domains/%s/check) to have the key checked.", domain, domain)
	}
	var results []selectorResult
	for _, sel := range selectors {
		name := sel + "._domainkey." + domain
		a := r.TXT(ctx, name)
		c.Evidence = append(c.Evidence, evidence(name, "TXT", a))
		c.TTL = minTTL(c.TTL, a.TTL)
		res := selectorResult{selector: sel, ttl: a.TTL}
		switch {
		case a.Status == Error:
			res.status, res.code = Unknown, "dkim_dns_error"
			res.detail = fmt.Sprintf("The DNS did not answer for %s (%s); the check will be repeated.", name, a.Err)
		case len(a.TXT) == 0:
			res.status, res.code = Fail, "dkim_missing"
			res.detail = fmt.Sprintf("No DKIM key is published at %s.", name)
		case len(a.TXT) > 1:
			res.status, res.code = Fail, "dkim_multiple_records"
			res.detail = fmt.Sprintf("%s has %d TXT records; a DKIM key needs exactly one.", name, len(a.TXT))
		default:
			k, err := ParseDKIMKey(a.TXT[0])
			switch {
			case err != nil:
				res.status, res.code = Fail, "dkim_invalid"
				res.detail = fmt.Sprintf("The DKIM key at %s is invalid: %v.", name, err)
			case k.Revoked:
				res.status, res.code = Fail, "dkim_revoked"
				res.detail = fmt.Sprintf("The DKIM key at %s is revoked (empty p=).", name)
			case k.KeyType == "rsa" && k.Bits < MinDKIMBits:
				res.status, res.code, res.bits = Fail, "dkim_key_too_short", k.Bits
				res.detail = fmt.Sprintf("The DKIM key at %s has %d bits; receivers ignore RSA keys under %d bits. Generate a %d-bit key.", name, k.Bits, MinDKIMBits, GoodDKIMBits)
			case k.KeyType == "rsa" && k.Bits < GoodDKIMBits:
				res.status, res.code, res.bits = Warn, "dkim_key_short", k.Bits
				res.detail = fmt.Sprintf("The DKIM key at %s has %d bits; %d bits is the current recommendation.", name, k.Bits, GoodDKIMBits)
			case k.Testing:
				res.status, res.code, res.bits = Warn, "dkim_testing", k.Bits
				res.detail = fmt.Sprintf("The DKIM key at %s is in testing mode (t=y): receivers may treat signed mail as unsigned. Remove t=y.", name)
			default:
				res.status, res.code, res.bits = Pass, "dkim_ok", k.Bits
				res.detail = fmt.Sprintf("A %d-bit %s DKIM key is published at %s.", k.Bits, strings.ToUpper(k.KeyType), name)
			}
		}
		results = append(results, res)
	}
	rank := map[Status]int{Pass: 0, Warn: 1, Unknown: 2, Fail: 3}
	best := results[0]
	for _, res := range results[1:] {
		if rank[res.status] < rank[best.status] {
			best = res
		}
	}
	c.Facts["selector"] = best.selector
	if best.bits > 0 {
		c.Facts["key_bits"] = best.bits
	}
	if best.status == Fail && len(selectors) > 1 {
		return c.set(Fail, best.code, "No usable DKIM key at any of the selectors %s of %s: %s", strings.Join(selectors, ", "), domain, best.detail)
	}
	return c.set(best.status, best.code, "%s", best.detail)
}
