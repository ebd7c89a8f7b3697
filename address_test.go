package dripdrop

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestParseEmail(t *testing.T) {
	t.Parallel()
	ok := map[string]string{
		"ada@example.com":             "ada@example.com",
		"  Ada.Lovelace@Example.COM ": "Ada.Lovelace@example.com",
		"a+tag@sub.example.co.uk":     "a+tag@sub.example.co.uk",
		"josé@exämple.de":             "josé@exämple.de",
	}
	for in, want := range ok {
		got, err := ParseEmail(in)
		if err != nil || got != want {
			t.Errorf("ParseEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "a", "a@", "@b.com", "a@b@c.com", "<a@b.com>", "Ada <a@b.com>", "a@b.com (x)",
		"a@localhost", "a@-b.com", "a@b..com", "a b@c.com", "a@b.com\r\nBcc: x@y.com", "a\x00@b.com",
		strings.Repeat("a", 65) + "@b.com", "a@" + strings.Repeat("b", 250) + ".com", "a@b.com,c@d.com", "\xff@b.com"}
	for _, in := range bad {
		if got, err := ParseEmail(in); err == nil {
			t.Errorf("ParseEmail(%q) = %q, want error", in, got)
		}
	}
}

func FuzzParseEmail(f *testing.F) {
	for _, s := range []string{"ada@example.com", "a@b", "\"q\"@x.org", "a@b.com\r\n", "(c)a@b.com", "ü@ü.de", strings.Repeat("@", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseEmail(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(got, "\r\n\x00<>, ") || len(got) > MaxEmailLength {
			t.Fatalf("accepted unsafe address %q", got)
		}
		again, err := ParseEmail(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q (%v)", got, again, err)
		}
	})
}

// parseEmailByNetMail is ParseEmail as it was before its dot-atom fast
// path: every address through net/mail. The two must agree on everything.
func parseEmailByNetMail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > MaxEmailLength || !utf8.ValidString(s) {
		return "", errors.New("refused before parsing")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '<' || r == '>' || r == '(' || r == ')' || r == ',' || r == ';' || r == '"' || r == '\\' {
			return "", errors.New("forbidden character")
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return "", errors.New("no local@domain")
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return "", errors.New("local part too long")
	}
	if len(domain) > 253 || !strings.Contains(domain, ".") {
		return "", errors.New("not fully qualified")
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", errors.New("bad label")
		}
		for _, r := range label {
			if !(r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return "", errors.New("bad label character")
			}
		}
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", errors.New("net/mail refused")
	}
	return local + "@" + strings.ToLower(domain), nil
}

var parseEmailPairs = []string{"ada@example.com", "Ada.Lovelace@Example.COM", "a.b@c.d", ".a@b.com", "a.@b.com", "a..b@c.com",
	"!#$%&'*+-/=?^_`{|}~@x.org", "a@b.com.", "a@.b.com", "a@b..c", "ü@ü.de", "a@exämple.de", "a@b-.com", "a@1.2", "[a]@b.com",
	"a:b@c.com", "a@[1.2.3.4]", "a@b_c.com", "\"q\"@x.org", "a@B.Com", "x@y.z"}

// TestParseEmailAgreesWithNetMail: the fast path for dot-atom local parts
// accepts and returns exactly what net/mail's path did.
func TestParseEmailAgreesWithNetMail(t *testing.T) {
	t.Parallel()
	for _, s := range parseEmailPairs {
		checkParseEmailAgrees(t, s)
	}
}

func FuzzParseEmailAgreesWithNetMail(f *testing.F) {
	for _, s := range parseEmailPairs {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkParseEmailAgrees(t, s) })
}

func checkParseEmailAgrees(t *testing.T, s string) {
	t.Helper()
	got, err := ParseEmail(s)
	want, werr := parseEmailByNetMail(s)
	if (err == nil) != (werr == nil) || got != want {
		t.Fatalf("ParseEmail(%q) = %q, %v; through net/mail: %q, %v", s, got, err, want, werr)
	}
}
