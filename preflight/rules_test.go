package preflight_test

import (
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop/preflight"
)

func TestParseSPF(t *testing.T) {
	t.Parallel()
	cases := []struct {
		txt     string
		ok      bool
		lookups int
		all     string
	}{
		{"v=spf1 -all", true, 0, "-"},
		{"v=spf1", true, 0, ""},
		{"V=SPF1 include:_spf.google.com ~all", true, 1, "~"},
		{"v=spf1 a mx ptr exists:%{i}.x.test include:a.test ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", true, 5, "-"},
		{"v=spf1 a/24 mx//64 ?all", true, 2, "?"},
		{"v=spf1 redirect=_spf.example.test", true, 1, ""},
		{"v=spf1 redirect=_spf.example.test -all", true, 0, "-"}, // redirect ignored next to all
		{"v=spf1 all", true, 0, "+"},
		{"v=spf1 exp=explain.test -all", true, 0, "-"},
		{"v=spf1 foo=bar -all", true, 0, "-"}, // unknown modifiers are kept
		{"v=spf10 -all", false, 0, ""},
		{"v=spf1 include -all", false, 0, ""},
		{"v=spf1 include: -all", false, 0, ""},
		{"v=spf1 bogus:x.test -all", false, 0, ""},
		{"v=spf1 all:x -all", false, 0, ""},
		{"v=spf1 redirect=a.test redirect=b.test", false, 0, ""},
		{"v=spf1 ip4 -all", false, 0, ""},
	}
	for _, c := range cases {
		rec, err := preflight.ParseSPF(c.txt)
		if (err == nil) != c.ok {
			t.Errorf("ParseSPF(%q) error = %v, want ok=%v", c.txt, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if got := rec.Lookups(); got != c.lookups {
			t.Errorf("ParseSPF(%q).Lookups() = %d, want %d", c.txt, got, c.lookups)
		}
		all, ok := rec.All()
		if got := map[bool]string{true: string(all.Qualifier), false: ""}[ok]; got != c.all {
			t.Errorf("ParseSPF(%q) all qualifier = %q, want %q", c.txt, got, c.all)
		}
	}
}

func TestSPFSelect(t *testing.T) {
	t.Parallel()
	if txt, n := preflight.SPFSelect([]string{"google-site-verification=x", "v=spf1 -all"}); n != 1 || txt != "v=spf1 -all" {
		t.Fatalf("one record among others: %q %d", txt, n)
	}
	if _, n := preflight.SPFSelect([]string{"v=spf1 -all", "v=spf1 ~all"}); n != 2 {
		t.Fatalf("two records counted %d", n)
	}
	if _, n := preflight.SPFSelect([]string{"v=spf1x -all"}); n != 0 {
		t.Fatalf("v=spf1x is not SPF, counted %d", n)
	}
}

func TestTreeWalkTargets(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"example.com":                   "example.com com",
		"Mail.Example.COM.":             "mail.example.com example.com com",
		"a.b.c.d.e.f.example.com":       "a.b.c.d.e.f.example.com b.c.d.e.f.example.com c.d.e.f.example.com d.e.f.example.com e.f.example.com f.example.com example.com com", // 8 labels
		"z.a.b.c.d.e.f.example.com":     "z.a.b.c.d.e.f.example.com b.c.d.e.f.example.com c.d.e.f.example.com d.e.f.example.com e.f.example.com f.example.com example.com com",
		"a.b.c.d.e.example.com":         "a.b.c.d.e.example.com b.c.d.e.example.com c.d.e.example.com d.e.example.com e.example.com example.com com", // 7 labels: one at a time
		"com":                           "com",
		"x.y.z.a.b.c.d.e.f.example.com": "x.y.z.a.b.c.d.e.f.example.com b.c.d.e.f.example.com c.d.e.f.example.com d.e.f.example.com e.f.example.com f.example.com example.com com",
	}
	for in, want := range cases {
		got := strings.Join(preflight.TreeWalkTargets(in), " ")
		if got != want {
			t.Errorf("TreeWalkTargets(%q)\n got %s\nwant %s", in, got, want)
		}
	}
	// At most 8 queries, whatever the length.
	long := strings.Repeat("l.", 30) + "example.com"
	if n := len(preflight.TreeWalkTargets(long)); n != 8 {
		t.Fatalf("a 32-label name walks %d targets, want 8", n)
	}
}

func TestParseDMARC(t *testing.T) {
	t.Parallel()
	r, err := preflight.ParseDMARC("v=DMARC1; p=Reject; sp=none; psd=n; rua=mailto:a@x.test,mailto:b@y.test; pct=50")
	if err != nil || r.Policy != "reject" || r.SubdomainPolicy != "none" || r.PSD != "n" || len(r.RUA) != 2 {
		t.Fatalf("ParseDMARC = %+v, %v", r, err)
	}
	for _, bad := range []string{"v=DMARC1", "v=DMARC1; p=maybe", "p=none; v=DMARC1", "v=DMARC2; p=none", "v=DMARC1; p=none; p=reject", "v=DMARC1; p=none; psd=x"} {
		if _, err := preflight.ParseDMARC(bad); err == nil {
			t.Errorf("ParseDMARC(%q) accepted", bad)
		}
	}
	if !preflight.IsDMARC("v=DMARC1; p=none") || preflight.IsDMARC("v=spf1 -all") || preflight.IsDMARC("p=none; v=DMARC1") {
		t.Fatal("IsDMARC")
	}
}

func TestParseAddress(t *testing.T) {
	t.Parallel()
	ok := map[string]string{ // address → A-label domain
		"jane@example.com":                       "example.com",
		"Jane.Doe+tag@Example.COM":               "example.com",
		"josé@bücher.de":                         "xn--bcher-kva.de",
		"info@xn--bcher-kva.de":                  "xn--bcher-kva.de",
		"用户@例子.广告":                               "xn--fsqu00a.xn--4rr70v",
		`"jane doe"@example.com`:                 "example.com",
		"a!#$%&'*/=?^_`{|}~-@x.org":              "x.org",
		strings.Repeat("a", 64) + "@example.com": "example.com",
	}
	for in, want := range ok {
		a, code, msg := preflight.ParseAddress(in)
		if code != "" || a.Domain != want {
			t.Errorf("ParseAddress(%q) = %+v, %s (%s); want domain %s", in, a, code, msg, want)
		}
	}
	bad := []string{
		"", "plain", "@example.com", "jane@", "jane@localhost", "a..b@example.com", ".a@example.com", "a.@example.com",
		"jane@[192.0.2.1]", "jane@-bad.com", "jane@bad-.com", "jane@exa_mple.com", "jane@example.123",
		strings.Repeat("a", 65) + "@example.com", "a b@example.com", `"unclosed@example.com`, "jane@" + strings.Repeat("a", 64) + ".com",
		"jane@exa<mple.com", "jane@exa mple.com",
	}
	for _, in := range bad {
		if a, code, _ := preflight.ParseAddress(in); code != preflight.ReasonInvalidEmail {
			t.Errorf("ParseAddress(%q) = %+v, %q; want invalid_email", in, a, code)
		}
	}
}

func TestRoleAndDisposable(t *testing.T) {
	t.Parallel()
	for _, l := range []string{"info", "Sales", "sales+emea", "no-reply", "No_Reply", "do.not.reply", "postmaster", "HR"} {
		if !preflight.IsRoleAddress(l) {
			t.Errorf("IsRoleAddress(%q) = false", l)
		}
	}
	for _, l := range []string{"jane", "jane.doe", "salesman", "information.officer.jane", "j"} {
		if preflight.IsRoleAddress(l) {
			t.Errorf("IsRoleAddress(%q) = true", l)
		}
	}
	for _, d := range []string{"mailinator.com", "MAILINATOR.com", "eu.mailinator.com", "yopmail.fr"} {
		if !preflight.IsDisposableDomain(d) {
			t.Errorf("IsDisposableDomain(%q) = false", d)
		}
	}
	for _, d := range []string{"example.com", "notmailinator.com", "com", "mailinator.com.evil.test"} {
		if preflight.IsDisposableDomain(d) {
			t.Errorf("IsDisposableDomain(%q) = true", d)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"aspmx.l.google.com.":                     preflight.ProviderGoogle,
		"alt1.aspmx.l.google.com":                 preflight.ProviderGoogle,
		"contoso-com.mail.protection.outlook.com": preflight.ProviderMicrosoft,
		"outlook-com.olc.protection.outlook.com":  preflight.ProviderMicrosoft,
		"mta5.am0.yahoodns.net":                   preflight.ProviderYahoo,
		"mx01.mail.icloud.com":                    preflight.ProviderApple,
		"mx0a-001b2d01.pphosted.com":              preflight.ProviderProofpoint,
		"eu-smtp-inbound-1.mimecast.com":          preflight.ProviderMimecast,
		"d123.ess.barracudanetworks.com":          preflight.ProviderBarracuda,
		"mx.zoho.eu":                              preflight.ProviderZoho,
		"mail.example.com":                        preflight.ProviderOther,
		"google.com.evil.test":                    preflight.ProviderOther,
		"notgoogle.com":                           preflight.ProviderOther,
	}
	for host, want := range cases {
		if got := preflight.ClassifyHost(host); got != want {
			t.Errorf("ClassifyHost(%q) = %s, want %s", host, got, want)
		}
	}
	// The most preferred exchange decides; the null MX is none.
	mx := []preflight.MX{{Pref: 20, Host: "backup.example.com"}, {Pref: 5, Host: "eu-smtp-inbound-1.mimecast.com"}}
	if got := preflight.ClassifyMX(mx); got != preflight.ProviderMimecast {
		t.Fatalf("ClassifyMX = %s", got)
	}
	if !preflight.IsNullMX([]preflight.MX{{Pref: 0, Host: ""}}) || preflight.IsNullMX(mx) {
		t.Fatal("IsNullMX")
	}
	if preflight.ProviderOfHost("smtp.gmail.com") != preflight.ProviderGoogle || preflight.ProviderOfHost("smtp.office365.com") != preflight.ProviderMicrosoft || preflight.ProviderOfHost("relay.example.com") != "" {
		t.Fatal("ProviderOfHost")
	}
}

func TestWorst(t *testing.T) {
	t.Parallel()
	P, W, U, F := preflight.Pass, preflight.Warn, preflight.Unknown, preflight.Fail
	cases := []struct {
		in   []preflight.Status
		want preflight.Status
	}{{nil, P}, {[]preflight.Status{P, P}, P}, {[]preflight.Status{P, W}, W}, {[]preflight.Status{W, U}, U}, {[]preflight.Status{U, F, W}, F}}
	for _, c := range cases {
		if got := preflight.Worst(c.in...); got != c.want {
			t.Errorf("Worst(%v) = %s, want %s", c.in, got, c.want)
		}
	}
	if preflight.Blocking(U) || preflight.Blocking(W) || !preflight.Blocking(F) {
		t.Fatal("only a definite failure blocks")
	}
}

func TestJudgeRecipient(t *testing.T) {
	t.Parallel()
	undeliverable := &preflight.RecipientDomain{Status: preflight.Fail, Code: "mx_null"}
	google := &preflight.RecipientDomain{Status: preflight.Pass, Code: "mx_ok", Provider: preflight.ProviderGoogle}
	unknown := &preflight.RecipientDomain{Status: preflight.Unknown, Code: "mx_dns_error"}
	cases := []struct {
		email, level string
		dom          *preflight.RecipientDomain
		reason, prov string
	}{
		{"info@example.com", preflight.VerifyOff, nil, "", ""},
		{"jane@gmail.com", preflight.VerifyOff, nil, "", preflight.ProviderGoogle},
		{"info@example.com", preflight.VerifySyntax, nil, preflight.ReasonRoleAddress, ""},
		{"jane@mailinator.com", preflight.VerifySyntax, nil, preflight.ReasonDisposableDomain, ""},
		{"jane@example.com", preflight.VerifySyntax, undeliverable, "", ""}, // syntax does not read DNS
		{"jane@example.com", preflight.VerifyMX, undeliverable, preflight.ReasonUndeliverableDomain, ""},
		{"jane@example.com", preflight.VerifyMX, google, "", preflight.ProviderGoogle},
		{"jane@example.com", preflight.VerifyMX, unknown, "", ""}, // a DNS failure never rejects
		{"jane@example.com", preflight.VerifyMX, nil, "", ""},
		{"a..b@example.com", preflight.VerifySyntax, nil, preflight.ReasonInvalidEmail, ""},
	}
	for _, c := range cases {
		v := preflight.JudgeRecipient(c.email, c.level, c.dom)
		if v.Reason != c.reason || v.Provider != c.prov {
			t.Errorf("JudgeRecipient(%q, %s) = %+v, want reason %q provider %q", c.email, c.level, v, c.reason, c.prov)
		}
	}
}
