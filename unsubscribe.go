package dripdrop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/google/uuid"
)

// UnsubscribeToken signs (tenant, enrollment) for a one-click unsubscribe
// link (RFC 8058): base64url(tenant|enrollment) "." base64url(HMAC-SHA256)[:16].
func UnsubscribeToken(key []byte, tenant string, enrollment uuid.UUID) string {
	payload := tenant + "|" + enrollment.String()
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(unsubMAC(key, payload))
}

func unsubMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("unsubscribe/v1|" + payload))
	return m.Sum(nil)[:16]
}

// ParseUnsubscribeToken verifies a token and returns what it names.
func ParseUnsubscribeToken(key []byte, token string) (string, uuid.UUID, error) {
	bad := Errorf(ECodeNotFound, "", "unknown or invalid unsubscribe link")
	p, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 512 {
		return "", uuid.Nil, bad
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, unsubMAC(key, string(payload))) {
		return "", uuid.Nil, bad
	}
	tenant, id, ok := strings.Cut(string(payload), "|")
	u, err := uuid.Parse(id)
	if !ok || err != nil {
		return "", uuid.Nil, bad
	}
	return tenant, u, nil
}
