package preflight_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dripdrop/dripdrop/preflight"
)

// The record parsers never panic, and what they accept is consistent.
func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all", "v=spf1 include:_spf.google.com ~all", "v=spf1 a/24 mx//64 ip6:2001:db8::/32 ?all",
		"v=spf1 redirect=_spf.example.com", "v=spf1 exists:%{i}.%{h}._spf.example.com -all", "v=spf1 +all",
		"v=spf1 include: -all", "v=spf1 foo=bar =baz", "v=spf1 \x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := preflight.ParseSPF(s)
		if err != nil {
			return
		}
		if !preflight.IsSPF(s) {
			t.Fatalf("accepted a non-SPF string %q", s)
		}
		if n := rec.Lookups(); n < 0 || n > len(rec.Terms)+1 {
			t.Fatalf("lookups %d for %d terms", n, len(rec.Terms))
		}
	})
}

func FuzzParseDKIMKey(f *testing.F) {
	for _, s := range []string{
		"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC", "v=DKIM1; p=", "k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		"v=DKIM1; t=y:s; h=sha256; p=AAAA", "p", "v=DKIM2; p=x", ";;;", "v=DKIM1;p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := preflight.ParseDKIMKey(s)
		if err != nil {
			return
		}
		if !k.Revoked && k.Bits <= 0 {
			t.Fatalf("accepted key %q without a size", s)
		}
	})
}

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none", "v=DMARC1; p=reject; sp=quarantine; psd=n; rua=mailto:a@b.example,mailto:c@d.example!10m",
		"v=DMARC1; p=quarantine; pct=50; rf=afrf; ri=86400", "v=DMARC1;", "p=none; v=DMARC1", "v=DMARC1; p=none; rua=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := preflight.ParseDMARC(s)
		if err != nil {
			return
		}
		switch r.Policy {
		case "none", "quarantine", "reject":
		default:
			t.Fatalf("accepted policy %q from %q", r.Policy, s)
		}
		if !preflight.IsDMARC(s) {
			t.Fatalf("parsed %q but IsDMARC says no", s)
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"jane@example.com", "josé@bücher.de", `"a b"@example.com`, "a..b@example.com", "x@[192.0.2.1]", "@", "a@b@c.example",
		"用户@例子.广告", "a@xn--bcher-kva.de", "a@-x.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, code, _ := preflight.ParseAddress(s)
		if code != "" {
			return
		}
		if !utf8.ValidString(s) || len(a.Local) > 64 || a.Domain == "" || a.Domain != strings.ToLower(a.Domain) {
			t.Fatalf("accepted %q as %+v", s, a)
		}
		for i := 0; i < len(a.Domain); i++ {
			if a.Domain[i] >= 0x80 {
				t.Fatalf("domain %q of %q is not ASCII", a.Domain, s)
			}
		}
		// The A-label domain parses again to itself.
		b, code, _ := preflight.ParseAddress(a.Local + "@" + a.Domain)
		if code != "" || b.Domain != a.Domain {
			t.Fatalf("round trip of %q: %+v %s", s, b, code)
		}
	})
}

// ParseDKIMSignature never panics; what it accepts has a d= without
// surrounding space or a trailing dot, lower case.
func FuzzParseDKIMSignature(f *testing.F) {
	for _, s := range []string{
		"v=1; a=rsa-sha256; d=example.com; s=s1; h=from; bh=x; b=y", "d=Example.COM.; s=S", "s=x", "d=;", "=;=", "v=1;\r\n\td=a.b;\r\n s=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := preflight.ParseDKIMSignature(s)
		if err != nil {
			return
		}
		if sig.D == "" || sig.D != strings.ToLower(sig.D) || strings.HasSuffix(sig.D, ".") || sig.D != strings.TrimSpace(sig.D) {
			t.Fatalf("ParseDKIMSignature(%q) accepted d=%q", s, sig.D)
		}
	})
}
