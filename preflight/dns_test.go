package preflight_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"golang.org/x/net/publicsuffix"

	"github.com/dripdrop/dripdrop/preflight"
	"github.com/dripdrop/dripdrop/preflight/dnsresolver"
	"github.com/dripdrop/dripdrop/preflight/dnstest"
)

var (
	keyOnce sync.Once
	key2048 *rsa.PrivateKey
	key1024 *rsa.PrivateKey
)

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		var err error
		if key2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if key1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
	return key2048, key1024
}

func dkimTXT(t testing.TB, pub any) string { return dnstest.DKIMRecord(t, pub) }

// shortKey is a 512-bit RSA public key: only its size matters here (Go
// refuses to generate one), so the modulus is an odd 512-bit number.
func shortKey() *rsa.PublicKey {
	n := new(big.Int).Lsh(big.NewInt(1), 511)
	n.Add(n, big.NewInt(12345677))
	return &rsa.PublicKey{N: n, E: 65537}
}

// fixture starts the zones every test here reads.
func fixture(t *testing.T) (*dnstest.Server, *dnsresolver.Resolver) {
	t.Helper()
	k2048, k1024 := keys(t)
	recs := []string{
		// good.test: a Google Workspace domain done right.
		`good.test. 3600 IN TXT "v=spf1 include:_spf.google.com ~all"`,
		`good.test. 3600 IN TXT "google-site-verification=abc"`,
		`_spf.google.com. 300 IN TXT "v=spf1 include:_netblocks.google.com include:_netblocks2.google.com ~all"`,
		`_netblocks.google.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"`,
		`_netblocks2.google.com. 300 IN TXT "v=spf1 ip6:2001:db8::/32 ~all"`,
		`google._domainkey.good.test. 3600 IN TXT ` + dkimTXT(t, &k2048.PublicKey),
		`_dmarc.good.test. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"`,
		`good.test. 3600 IN MX 1 aspmx.l.google.com.`,
		`good.test. 3600 IN MX 5 alt1.aspmx.l.google.com.`,
		// plusall / neutral / two records
		`plusall.test. 300 IN TXT "v=spf1 +all"`,
		`neutral.test. 300 IN TXT "v=spf1 ip4:192.0.2.1 ?all"`,
		`two.test. 300 IN TXT "v=spf1 -all"`,
		`two.test. 300 IN TXT "v=spf1 include:_spf.google.com ~all"`,
		`nospf.test. 300 IN TXT "hello"`,
		// many.test: 11 lookups through includes; ten.test exactly 10.
		`many.test. 300 IN TXT "v=spf1 include:i1.many.test include:i2.many.test mx -all"`,
		`i1.many.test. 300 IN TXT "v=spf1 a mx exists:x.many.test include:i3.many.test -all"`,
		`i2.many.test. 300 IN TXT "v=spf1 a mx ptr -all"`,
		`i3.many.test. 300 IN TXT "v=spf1 a -all"`,
		`ten.test. 300 IN TXT "v=spf1 include:i1.ten.test include:i2.ten.test -all"`,
		`i1.ten.test. 300 IN TXT "v=spf1 a mx exists:x.ten.test include:i3.ten.test -all"`,
		`i2.ten.test. 300 IN TXT "v=spf1 a mx ptr -all"`,
		`i3.ten.test. 300 IN TXT "v=spf1 a -all"`,
		`loop.test. 300 IN TXT "v=spf1 include:loop2.test -all"`,
		`loop2.test. 300 IN TXT "v=spf1 include:loop.test -all"`,
		`brokeninc.test. 300 IN TXT "v=spf1 include:nothing.test -all"`,
		`redir.test. 300 IN TXT "v=spf1 redirect=_spf.redir.test"`,
		`_spf.redir.test. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"`,
		`spf.protection.outlook.com. 300 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`,
		// DKIM: 1024-bit (warn), 512-bit (fail), revoked, Microsoft pair by CNAME.
		`short.test. 300 IN TXT "v=spf1 include:_spf.google.com -all"`,
		`google._domainkey.short.test. 300 IN TXT ` + dkimTXT(t, &k1024.PublicKey),
		`google._domainkey.tiny.test. 300 IN TXT ` + dkimTXT(t, shortKey()),
		`google._domainkey.revoked.test. 300 IN TXT "v=DKIM1; k=rsa; p="`,
		`selector1._domainkey.ms.test. 300 IN CNAME selector1-ms-test._domainkey.contoso.onmicrosoft.test.`,
		`selector1-ms-test._domainkey.contoso.onmicrosoft.test. 300 IN TXT ` + dkimTXT(t, &k2048.PublicKey),
		`ms.test. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"`,
		`ms.test. 300 IN MX 0 ms-test.mail.protection.outlook.com.`,
		// DMARC only at the organisational domain (found by the tree walk),
		// on a real public suffix so x/net/publicsuffix can cross-check it.
		`_dmarc.example.co.uk. 600 IN TXT "v=DMARC1; p=quarantine; rua=mailto:d@example.co.uk"`,
		`mail.example.co.uk. 300 IN MX 10 mx.example.co.uk.`,
		`_dmarc.nop.test. 300 IN TXT "v=DMARC1; rua=mailto:d@nop.test"`,
		`_dmarc.norua.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.dup.test. 300 IN TXT "v=DMARC1; p=none"`,
		`_dmarc.dup.test. 300 IN TXT "v=DMARC1; p=reject"`,
		`_dmarc.psd.test. 300 IN TXT "v=DMARC1; p=reject; psd=y"`,
		// MX: null MX, A only, nothing.
		`nullmx.test. 300 IN MX 0 .`,
		`aonly.test. 300 IN A 192.0.2.10`,
		`v6only.test. 300 IN AAAA 2001:db8::10`,
		`nothing.test. 300 IN TXT "not mail"`,
		`yahoo-user.test. 300 IN MX 1 mta5.am0.yahoodns.net.`,
	}
	srv := dnstest.Start(t, recs...)
	srv.ServFail("servfail.test")
	srv.ServFail("_dmarc.servfail.test")
	srv.ServFail("google._domainkey.servfail.test")
	srv.Silent("slow.test")
	srv.Silent("_dmarc.slow.test")
	srv.Silent("google._domainkey.slow.test")
	srv.ServFail("_dmarc.walkfail.example.test")
	srv.ServFail("_dmarc.example.test")
	return srv, &dnsresolver.Resolver{Servers: []string{srv.Addr}, Timeout: 300 * time.Millisecond}
}

func TestSPFOverDNS(t *testing.T) {
	t.Parallel()
	_, r := fixture(t)
	ctx := context.Background()
	cases := []struct {
		domain, provider string
		status           preflight.Status
		code             string
		lookups          int
	}{
		{"good.test", preflight.ProviderGoogle, preflight.Pass, "spf_ok", 3},
		{"good.test", preflight.ProviderMicrosoft, preflight.Fail, "spf_provider_missing", 3},
		{"good.test", "", preflight.Pass, "spf_ok", 3},
		{"plusall.test", "", preflight.Fail, "spf_pass_all", -1},
		{"neutral.test", "", preflight.Fail, "spf_neutral_all", -1},
		{"two.test", "", preflight.Fail, "spf_multiple_records", -1},
		{"nospf.test", "", preflight.Fail, "spf_missing", -1},
		{"nxdomain.test", "", preflight.Fail, "spf_missing", -1},
		{"many.test", "", preflight.Fail, "spf_too_many_lookups", 11},
		{"ten.test", "", preflight.Pass, "spf_ok", 10},
		{"loop.test", "", preflight.Pass, "spf_ok", 2},
		{"brokeninc.test", "", preflight.Fail, "spf_include_broken", -1},
		{"redir.test", preflight.ProviderMicrosoft, preflight.Pass, "spf_ok", 2},
		{"servfail.test", "", preflight.Unknown, "spf_dns_error", -1},
		{"slow.test", "", preflight.Unknown, "spf_dns_error", -1},
	}
	for _, c := range cases {
		got := preflight.CheckSPF(ctx, r, c.domain, c.provider)
		if got.Status != c.status || got.Code != c.code {
			t.Errorf("CheckSPF(%s, %q) = %s %s (%s), want %s %s", c.domain, c.provider, got.Status, got.Code, got.Detail, c.status, c.code)
		}
		if c.lookups >= 0 && got.Facts["lookups"] != c.lookups {
			t.Errorf("CheckSPF(%s) lookups = %v, want %d", c.domain, got.Facts["lookups"], c.lookups)
		}
		if len(got.Evidence) == 0 || got.Evidence[0].Name != c.domain {
			t.Errorf("CheckSPF(%s) evidence = %+v", c.domain, got.Evidence)
		}
	}
}

func TestDKIMOverDNS(t *testing.T) {
	t.Parallel()
	_, r := fixture(t)
	ctx := context.Background()
	cases := []struct {
		domain    string
		selectors []string
		status    preflight.Status
		code      string
		bits      any
	}{
		{"good.test", []string{"google"}, preflight.Pass, "dkim_ok", 2048},
		{"short.test", []string{"google"}, preflight.Warn, "dkim_key_short", 1024},
		{"tiny.test", []string{"google"}, preflight.Fail, "dkim_key_too_short", 512},
		{"revoked.test", []string{"google"}, preflight.Fail, "dkim_revoked", nil},
		{"nothing.test", []string{"google"}, preflight.Fail, "dkim_missing", nil},
		{"ms.test", preflight.DKIMSelectors(preflight.ProviderMicrosoft, nil), preflight.Pass, "dkim_ok", 2048}, // selector1 by CNAME, selector2 missing
		{"good.test", []string{"s1", "google"}, preflight.Pass, "dkim_ok", 2048},
		{"servfail.test", []string{"google"}, preflight.Unknown, "dkim_dns_error", nil},
		{"slow.test", []string{"google"}, preflight.Unknown, "dkim_dns_error", nil},
		{"generic.test", nil, preflight.Warn, "dkim_no_selector", nil},
	}
	for _, c := range cases {
		got := preflight.CheckDKIM(ctx, r, c.domain, c.selectors)
		if got.Status != c.status || got.Code != c.code || got.Facts["key_bits"] != c.bits {
			t.Errorf("CheckDKIM(%s, %v) = %s %s bits=%v (%s), want %s %s %v", c.domain, c.selectors, got.Status, got.Code, got.Facts["key_bits"], got.Detail, c.status, c.code, c.bits)
		}
	}
}

// The key CheckDKIM passes is one a real DKIM verifier (go-msgauth)
// accepts a signature against, and the key it fails is one it refuses.
func TestDKIMAgreesWithVerifier(t *testing.T) {
	t.Parallel()
	_, r := fixture(t)
	k2048, _ := keys(t)
	msg := "From: Jane <jane@good.test>\r\nTo: bob@example.com\r\nSubject: hi\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n\r\nHello.\r\n"
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(msg), &dkim.SignOptions{Domain: "good.test", Selector: "google", Signer: k2048}); err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) ([]string, error) {
		a := r.TXT(context.Background(), name)
		if a.Status != preflight.Found {
			return nil, fmt.Errorf("%s: %s", name, a.Status)
		}
		return a.TXT, nil
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed.Bytes()), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "good.test" {
		t.Fatalf("go-msgauth verification of the good key: %v %+v", err, vs)
	}
	// tiny.test's 512-bit key: go-msgauth refuses it as we do.
	var tiny bytes.Buffer
	if err := dkim.Sign(&tiny, strings.NewReader(strings.Replace(msg, "good.test", "tiny.test", 1)), &dkim.SignOptions{Domain: "tiny.test", Selector: "google", Signer: k2048}); err != nil {
		t.Fatal(err)
	}
	vs, err = dkim.VerifyWithOptions(bytes.NewReader(tiny.Bytes()), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err == nil {
		t.Fatalf("go-msgauth accepted a signature against a 512-bit key: %v %+v", err, vs)
	}
}

func TestDMARCOverDNS(t *testing.T) {
	t.Parallel()
	srv, r := fixture(t)
	ctx := context.Background()
	cases := []struct {
		domain  string
		status  preflight.Status
		code    string
		policyD string
	}{
		{"good.test", preflight.Pass, "dmarc_ok", "good.test"},
		{"a.b.mail.example.co.uk", preflight.Pass, "dmarc_ok", "example.co.uk"},
		{"nop.test", preflight.Fail, "dmarc_invalid", "nop.test"},
		{"norua.test", preflight.Warn, "dmarc_no_rua", "norua.test"},
		{"dup.test", preflight.Fail, "dmarc_missing", ""}, // two records at one name count as none
		{"nothing.test", preflight.Fail, "dmarc_missing", ""},
		{"servfail.test", preflight.Unknown, "dmarc_dns_error", ""},
		{"slow.test", preflight.Unknown, "dmarc_dns_error", ""},
		{"walkfail.example.test", preflight.Unknown, "dmarc_dns_error", ""},
	}
	for _, c := range cases {
		got := preflight.CheckDMARC(ctx, r, c.domain)
		pd, _ := got.Facts["policy_domain"].(string)
		if got.Status != c.status || got.Code != c.code || pd != c.policyD {
			t.Errorf("CheckDMARC(%s) = %s %s at %q (%s), want %s %s at %q", c.domain, got.Status, got.Code, pd, got.Detail, c.status, c.code, c.policyD)
		}
	}
	// The walk from a.b.mail.example.co.uk asked each level once, in order.
	for _, n := range []string{"_dmarc.a.b.mail.example.co.uk", "_dmarc.b.mail.example.co.uk", "_dmarc.mail.example.co.uk", "_dmarc.example.co.uk"} {
		if srv.Asked(n, "TXT") < 1 {
			t.Errorf("the tree walk did not ask %s", n)
		}
	}
	// Cross-check: the Organizational Domain the walk found is the one
	// the public suffix list gives.
	d := preflight.DiscoverDMARC(ctx, r, "a.b.mail.example.co.uk")
	want, err := publicsuffix.EffectiveTLDPlusOne("a.b.mail.example.co.uk")
	if err != nil || d.OrgDomain != want {
		t.Fatalf("OrgDomain = %q, public suffix list says %q (%v)", d.OrgDomain, want, err)
	}
	// psd=y at a parent: the policy applies; the Organizational Domain is
	// the name one label below it.
	d = preflight.DiscoverDMARC(ctx, r, "x.shop.psd.test")
	if d.Status != preflight.Found || d.PolicyDomain != "psd.test" || d.OrgDomain != "shop.psd.test" {
		t.Fatalf("psd discovery = %+v", d)
	}
}

func TestMXOverDNS(t *testing.T) {
	t.Parallel()
	_, r := fixture(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		domain   string
		status   preflight.Status
		code     string
		provider string
	}{
		{"good.test", preflight.Pass, "mx_ok", preflight.ProviderGoogle},
		{"ms.test", preflight.Pass, "mx_ok", preflight.ProviderMicrosoft},
		{"yahoo-user.test", preflight.Pass, "mx_ok", preflight.ProviderYahoo},
		{"nullmx.test", preflight.Fail, "mx_null", preflight.ProviderOther},
		{"aonly.test", preflight.Pass, "mx_implicit", preflight.ProviderOther},
		{"v6only.test", preflight.Pass, "mx_implicit", preflight.ProviderOther},
		{"nothing.test", preflight.Fail, "mx_missing", preflight.ProviderOther},
		{"nxdomain.test", preflight.Fail, "mx_missing", preflight.ProviderOther},
		{"servfail.test", preflight.Unknown, "mx_dns_error", ""},
		{"slow.test", preflight.Unknown, "mx_dns_error", ""},
	}
	for _, c := range cases {
		got := preflight.CheckRecipientDomain(ctx, r, c.domain, now)
		if got.Status != c.status || got.Code != c.code || got.Provider != c.provider {
			t.Errorf("CheckRecipientDomain(%s) = %s %s %s, want %s %s %s", c.domain, got.Status, got.Code, got.Provider, c.status, c.code, c.provider)
		}
		wantTTL := preflight.MinRecipientTTL
		if c.status == preflight.Unknown {
			wantTTL = preflight.FailedRecipientTTL
		}
		if got.ExpiresAt.Sub(now) != wantTTL {
			t.Errorf("CheckRecipientDomain(%s) cached for %v, want %v", c.domain, got.ExpiresAt.Sub(now), wantTTL)
		}
	}
	// Sender MX: implicit MX warns, a null MX fails, a DNS failure is unknown.
	for domain, want := range map[string]preflight.Status{"good.test": preflight.Pass, "aonly.test": preflight.Warn, "nullmx.test": preflight.Fail, "servfail.test": preflight.Unknown} {
		if got := preflight.CheckSenderMX(ctx, r, domain); got.Status != want {
			t.Errorf("CheckSenderMX(%s) = %s %s", domain, got.Status, got.Code)
		}
	}
}

func TestCheckDomain(t *testing.T) {
	t.Parallel()
	_, r := fixture(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	rep := preflight.CheckDomain(context.Background(), r, preflight.DomainInput{Domain: "Good.Test", Provider: preflight.ProviderGoogle}, now)
	if rep.Domain != "good.test" || rep.Status != preflight.Pass || len(rep.Checks) != 4 {
		t.Fatalf("good.test report = %+v", rep)
	}
	for i, name := range []string{"spf", "dkim", "dmarc", "mx"} {
		if rep.Checks[i].Name != name || rep.Checks[i].Status != preflight.Pass {
			t.Errorf("check %d = %s %s %s", i, rep.Checks[i].Name, rep.Checks[i].Status, rep.Checks[i].Code)
		}
	}
	// The smallest TTL read was 300 s (Google's SPF includes).
	if rep.ExpiresAt.Sub(now) != 300*time.Second {
		t.Fatalf("expires after %v", rep.ExpiresAt.Sub(now))
	}
	// A domain whose DNS fails is unknown, not failed, and retried soon.
	rep = preflight.CheckDomain(context.Background(), r, preflight.DomainInput{Domain: "slow.test", Provider: preflight.ProviderGoogle}, now)
	if rep.Status != preflight.Unknown || preflight.Blocking(rep.Status) || rep.ExpiresAt.Sub(now) != preflight.MinReportTTL {
		t.Fatalf("slow.test report = %s, expires %v", rep.Status, rep.ExpiresAt.Sub(now))
	}
	rep = preflight.CheckDomain(context.Background(), r, preflight.DomainInput{Domain: "plusall.test"}, now)
	if rep.Status != preflight.Fail || !preflight.Blocking(rep.Status) {
		t.Fatalf("plusall.test report = %s", rep.Status)
	}
}
