package dripdrop

import (
	"testing"

	"github.com/google/uuid"
)

func TestUnsubscribeToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	id := uuid.New()
	tok := UnsubscribeToken(key, "acme", id)
	tenant, got, err := ParseUnsubscribeToken(key, tok)
	if err != nil || tenant != "acme" || got != id {
		t.Fatalf("round trip: %s %s %v", tenant, got, err)
	}
	for _, bad := range []string{"", "x", tok + "x", tok[:len(tok)-2], UnsubscribeToken([]byte("other key other key other key!!!"), "acme", id)} {
		if _, _, err := ParseUnsubscribeToken(key, bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// A token for another tenant cannot be forged from this one.
	other := UnsubscribeToken(key, "evil", id)
	if _, _, err := ParseUnsubscribeToken(key, other[:len(other)-5]+tok[len(tok)-5:]); err == nil {
		t.Error("spliced signature accepted")
	}
}
