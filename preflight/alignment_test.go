package preflight_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/preflight"
)

func TestDKIMAligned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		from, d, org string
		want         bool
	}{
		{"example.com", "example.com", "example.com", true},
		{"example.com", "EXAMPLE.COM.", "", true},                // case and trailing dot
		{"mail.example.com", "example.com", "example.com", true}, // d= is the organisational domain
		{"example.com", "mail.example.com", "example.com", true}, // relaxed: same organisational domain
		{"news.example.com", "mail.example.com", "example.com", true},
		{"a.b.example.co.uk", "example.co.uk", "example.co.uk", true},
		{"example.com", "gmail.com", "example.com", false},               // the provider's domain
		{"example.com", "example.onmicrosoft.com", "example.com", false}, // Microsoft's default signing
		{"example.com", "com", "example.com", false},                     // above the organisational domain
		{"example.com", "notexample.com", "example.com", false},          // suffix but not a label boundary
		{"example.co.uk", "co.uk", "example.co.uk", false},               // a public suffix
		{"mail.example.com", "example.com", "", true},                    // org unknown: a parent aligns
		{"mail.example.com", "com", "", false},                           // org unknown: never a single label
		{"example.com", "mail.example.com", "", false},                   // org unknown: a child does not
		{"example.com", "", "example.com", false},
		{"", "example.com", "", false},
		{"mail.example.com", "other.example.com", "mail.example.com", false}, // org is the From domain itself
	} {
		if got := preflight.DKIMAligned(tc.from, tc.d, tc.org); got != tc.want {
			t.Errorf("DKIMAligned(%q, %q, %q) = %v, want %v", tc.from, tc.d, tc.org, got, tc.want)
		}
	}
}

func TestParseDKIMSignature(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, d, s string
		ok       bool
	}{
		{"v=1; a=rsa-sha256; c=relaxed/relaxed; d=Example.COM; s=s2026;\r\n\th=from:to; bh=abc=; b=def", "example.com", "s2026", true},
		{"v=1; a=rsa-sha256; d=gmail.com; s=20230601; b=x", "gmail.com", "20230601", true},
		{"v=1; a=rsa-sha256; s=only; b=x", "", "only", false},
		{"not a tag list", "", "", false},
	} {
		got, err := preflight.ParseDKIMSignature(tc.in)
		if (err == nil) != tc.ok || got.D != tc.d || (tc.ok && got.S != tc.s) {
			t.Errorf("ParseDKIMSignature(%q) = %+v, %v; want d=%q s=%q ok=%v", tc.in, got, err, tc.d, tc.s, tc.ok)
		}
	}
}

func TestCheckDKIMAlignment(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	copyOf := func(sigs ...preflight.DKIMSignature) *preflight.SentCopy {
		return &preflight.SentCopy{MessageID: "m1@example.com", FromDomain: "example.com", Signatures: sigs, SeenAt: at}
	}
	for _, tc := range []struct {
		name     string
		seen     *preflight.SentCopy
		provider string
		status   preflight.Status
		code     string
		detail   string
	}{
		{"unseen", nil, "", preflight.Unknown, "dkim_alignment_unseen", "Sent folder"},
		{"aligned", copyOf(preflight.DKIMSignature{D: "example.com", S: "s1"}), "", preflight.Pass, "dkim_aligned", "d=example.com"},
		{"one of two aligned", copyOf(preflight.DKIMSignature{D: "gmail.com", S: "g"}, preflight.DKIMSignature{D: "mail.example.com", S: "s1"}), "google", preflight.Pass, "dkim_aligned", "d=mail.example.com"},
		{"provider domain", copyOf(preflight.DKIMSignature{D: "gmail.com", S: "20230601"}), "google", preflight.Fail, "dkim_not_aligned", "not aligned"},
		{"onmicrosoft", copyOf(preflight.DKIMSignature{D: "contoso.onmicrosoft.com", S: "selector1-contoso"}), "microsoft", preflight.Fail, "dkim_not_aligned", "d=contoso.onmicrosoft.com"},
		{"unsigned relay", copyOf(), "", preflight.Fail, "dkim_unsigned", "no DKIM-Signature"},
		{"unsigned google copy", copyOf(), "google", preflight.Unknown, "dkim_alignment_unsigned_copy", "outgoing copy only"},
		{"unsigned microsoft copy", copyOf(), "microsoft", preflight.Unknown, "dkim_alignment_unsigned_copy", "microsoft"},
		{"unreadable", &preflight.SentCopy{MessageID: "m1@example.com", Unreadable: 1, SeenAt: at}, "google", preflight.Fail, "dkim_signature_invalid", "d= tag"},
	} {
		c := preflight.CheckDKIMAlignment(tc.seen, "example.com", "example.com", tc.provider)
		if c.Name != "dkim_alignment" || c.Status != tc.status || c.Code != tc.code || !strings.Contains(c.Detail, tc.detail) || c.Evidence == nil {
			t.Errorf("%s: got %s %s %q (evidence %v), want %s %s containing %q", tc.name, c.Status, c.Code, c.Detail, c.Evidence, tc.status, tc.code, tc.detail)
		}
		if tc.seen != nil && (len(c.Evidence) != 1 || c.Facts["message_id"] != "m1@example.com" || c.Facts["seen_at"] != at) {
			t.Errorf("%s: evidence %+v facts %v", tc.name, c.Evidence, c.Facts)
		}
		if tc.seen != nil && len(tc.seen.Signatures) > 0 && len(c.Evidence[0].Values) != len(tc.seen.Signatures) {
			t.Errorf("%s: evidence values %v", tc.name, c.Evidence[0].Values)
		}
	}
}
