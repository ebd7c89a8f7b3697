package dripdrop

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// legacyUnsubscribeToken mints the first, signed-only format, as issued
// before opaque tokens.
func legacyUnsubscribeToken(key []byte, tenant string, enrollment uuid.UUID) string {
	payload := tenant + "|" + enrollment.String()
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(legacyUnsubMAC(key, payload))
}

func TestUnsubscribeToken(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	id := uuid.New()
	tok := UnsubscribeToken(key, "acme", id)
	tenant, got, err := ParseUnsubscribeToken(key, tok)
	if err != nil || tenant != "acme" || got != id {
		t.Fatalf("round trip: %s %s %v", tenant, got, err)
	}
	if UnsubscribeToken(key, "acme", id) != tok {
		t.Error("the token of one enrollment is not stable")
	}
	if UnsubscribeToken(key, "acme", uuid.New()) == tok || UnsubscribeToken(key, "acmf", id) == tok {
		t.Error("different enrollments share a token")
	}
	for _, bad := range []string{"", "x", "u2", tok + "x", tok[:len(tok)-2], UnsubscribeToken([]byte("other key other key other key!!!"), "acme", id), strings.Repeat("u", 600)} {
		if _, _, err := ParseUnsubscribeToken(key, bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// Every single-byte change of the sealed bytes is rejected.
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "u2"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		mut := bytes.Clone(raw)
		mut[i] ^= 0x01
		if _, _, err := ParseUnsubscribeToken(key, "u2"+base64.RawURLEncoding.EncodeToString(mut)); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
}

// The token reveals neither the tenant nor the enrollment, in any encoding.
func TestUnsubscribeTokenIsOpaque(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	id := uuid.MustParse("0190a4e2-1234-7000-8000-00000000abcd")
	tok := UnsubscribeToken(key, "acme-corporation", id)
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, "u2"))
	for _, hay := range [][]byte{[]byte(tok), []byte(strings.ToLower(tok)), raw} {
		for _, needle := range [][]byte{[]byte("acme"), []byte(id.String()), []byte("0190a4e2"), id[:4], id[12:]} {
			if bytes.Contains(hay, needle) {
				t.Errorf("token %s contains %q", tok, needle)
			}
		}
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(tok); err == nil && (bytes.Contains(b, []byte("acme")) || bytes.Contains(b, []byte(id.String()))) {
			t.Errorf("decoding the whole token reveals its content")
		}
	}
}

// Links minted in the first format keep working; forged ones do not.
func TestLegacyUnsubscribeTokensStillWork(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	id := uuid.New()
	old := legacyUnsubscribeToken(key, "acme", id)
	tenant, got, err := ParseUnsubscribeToken(key, old)
	if err != nil || tenant != "acme" || got != id {
		t.Fatalf("legacy token: %s %s %v", tenant, got, err)
	}
	other := legacyUnsubscribeToken(key, "evil", id)
	if _, _, err := ParseUnsubscribeToken(key, other[:len(other)-5]+old[len(old)-5:]); err == nil {
		t.Error("spliced signature accepted")
	}
	if _, _, err := ParseUnsubscribeToken([]byte("other key other key other key!!!"), old); err == nil {
		t.Error("legacy token accepted under another key")
	}
}

func FuzzParseUnsubscribeToken(f *testing.F) {
	key := []byte("0123456789abcdef0123456789abcdef")
	id := uuid.MustParse("0190a4e2-1234-7000-8000-00000000abcd")
	for _, s := range []string{UnsubscribeToken(key, "acme", id), legacyUnsubscribeToken(key, "acme", id), "", "u2", "u2AAAA", "a.b", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		tenant, got, err := ParseUnsubscribeToken(key, tok)
		if err != nil {
			return
		}
		// Whatever parses names what a genuine token for it names.
		if tenant == "" && !strings.Contains(tok, ".") {
			t.Fatalf("empty tenant from %q", tok)
		}
		if again, id2, err := ParseUnsubscribeToken(key, UnsubscribeToken(key, tenant, got)); err != nil || again != tenant || id2 != got {
			t.Fatalf("re-minted token for %q/%s does not parse", tenant, got)
		}
	})
}
