package mailsync

import (
	"strings"
	"testing"
	"time"
)

func TestSentCopyOf(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, block, fallback string
		domain                string
		ds                    []string
		unreadable            int
	}{
		{"folded signature", "From: Ada <ada@Acme.Example.com>\r\nDKIM-Signature: v=1; a=rsa-sha256; d=acme.example.com;\r\n\ts=s2026; h=from; b=x\r\n\r\n", "", "acme.example.com", []string{"acme.example.com/s2026"}, 0},
		{"two signatures, LF", "DKIM-Signature: v=1; d=gmail.com; s=20230601; b=x\nDKIM-Signature: v=1; d=acme.example.com; s=google; b=y\nFrom: ada@acme.example.com\n\n", "", "acme.example.com", []string{"gmail.com/20230601", "acme.example.com/google"}, 0},
		{"unsigned, no From", "Subject: x\r\n\r\n", "ada@acme.example.com", "acme.example.com", nil, 0},
		{"role address, bare", "From: sales@acme.example.com\r\n\r\n", "", "acme.example.com", nil, 0},
		{"unparsable From", "From: <<<\r\n\r\n", "ada@acme.example.com", "acme.example.com", nil, 0},
		{"broken signature", "From: ada@acme.example.com\r\nDKIM-Signature: v=1; s=x\r\n\r\n", "", "acme.example.com", nil, 1},
	} {
		c := SentCopyOf([]byte(tc.block), "m1@acme.example.com", tc.fallback, now)
		var ds []string
		for _, s := range c.Signatures {
			ds = append(ds, s.D+"/"+s.S)
		}
		if c.FromDomain != tc.domain || strings.Join(ds, ",") != strings.Join(tc.ds, ",") || c.Unreadable != tc.unreadable || c.MessageID != "m1@acme.example.com" || !c.SeenAt.Equal(now) {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
	if id := SentMessageID([]byte("Message-ID:\r\n <abc@acme.example.com>\r\n\r\n")); id != "abc@acme.example.com" {
		t.Errorf("SentMessageID = %q", id)
	}
	if id := SentMessageID([]byte("Subject: none\r\n\r\n")); id != "" {
		t.Errorf("SentMessageID without the field = %q", id)
	}
}

// SentCopyOf never panics and never returns more signatures than the
// block has DKIM-Signature lines.
func FuzzSentCopyOf(f *testing.F) {
	for _, s := range []string{
		"From: a@b.example\r\nDKIM-Signature: v=1; d=b.example; s=s\r\n\r\n", "DKIM-Signature: d=\r\n", "\n\n\t x", "From: <>\r\nDKIM-Signature:\r\n\td=a.b; s=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := SentCopyOf([]byte(s), "id", "x@fallback.example", time.Time{})
		if n := strings.Count(strings.ToLower(s), "dkim-signature"); len(c.Signatures)+c.Unreadable > n {
			t.Fatalf("%d signatures from %d fields", len(c.Signatures)+c.Unreadable, n)
		}
		_ = SentMessageID([]byte(s))
	})
}
