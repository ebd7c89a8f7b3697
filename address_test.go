package dripdrop

import (
	"strings"
	"testing"
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
