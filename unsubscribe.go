package dripdrop

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/google/uuid"
)

// Unsubscribe links (RFC 8058) carry a token that names a tenant and an
// enrollment. The token must reveal neither (docs/security.md#recipients), so it
// is the pair encrypted and authenticated with AES-256-GCM:
//
//	"u2" + base64url(nonce[12] || AES-GCM(tenant_key "|" enrollment_id[16]))
//
// Both keys come from the unsubscribe key (itself derived from the
// encryption key) through HKDF-SHA256 with distinct labels. The nonce is
// synthetic — HMAC-SHA256 of the plaintext under its own key, truncated —
// so the same enrollment always gets the same token and a nonce repeats only
// with its plaintext: no birthday limit on how many links one key may issue,
// as random 96-bit nonces would have, and repeated tokens say nothing beyond
// "same enrollment", which the link already implies.
//
// Why encryption rather than a random token stored with the enrollment:
// nothing to migrate or write on the send path, no lookup to authenticate a
// link, and every replica can mint and check tokens with the key it already
// has. The cost is that rotating DRIPDROP_ENCRYPTION_KEY invalidates links in
// mail already sent (see docs/security.md).
//
// The first format, base64url(tenant|enrollment) "." HMAC, was issued before;
// links in delivered mail keep working (they have no expiry, so they are
// accepted for as long as the key is unchanged), but no new ones are minted.

const unsubTokenPrefix = "u2"

// unsubKeys derives the AEAD and synthetic-nonce keys from key.
func unsubKeys(key []byte) (cipher.AEAD, []byte) {
	encKey, err1 := hkdf.Key(sha256.New, key, nil, "dripdrop/unsubscribe/v2/aead", 32)
	nonceKey, err2 := hkdf.Key(sha256.New, key, nil, "dripdrop/unsubscribe/v2/nonce", 32)
	if err1 != nil || err2 != nil {
		panic("unsubscribe: HKDF failed") // cannot happen for these lengths
	}
	block, _ := aes.NewCipher(encKey) // 32-byte key: never fails
	aead, _ := cipher.NewGCM(block)
	return aead, nonceKey
}

// UnsubscribeToken returns the opaque token of (tenant, enrollment).
func UnsubscribeToken(key []byte, tenant string, enrollment uuid.UUID) string {
	aead, nonceKey := unsubKeys(key)
	plain := append([]byte(tenant+"|"), enrollment[:]...)
	m := hmac.New(sha256.New, nonceKey)
	m.Write(plain)
	nonce := m.Sum(nil)[:aead.NonceSize()]
	sealed := aead.Seal(nonce, nonce, plain, []byte(unsubTokenPrefix))
	return unsubTokenPrefix + base64.RawURLEncoding.EncodeToString(sealed)
}

// ParseUnsubscribeToken verifies a token and returns what it names; it
// accepts both the current opaque tokens and the first, signed-only format.
func ParseUnsubscribeToken(key []byte, token string) (string, uuid.UUID, error) {
	bad := Errorf(ECodeNotFound, "", "unknown or invalid unsubscribe link")
	if len(token) > 512 || len(key) == 0 {
		return "", uuid.Nil, bad
	}
	if rest, ok := strings.CutPrefix(token, unsubTokenPrefix); ok && !strings.Contains(token, ".") {
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		aead, _ := unsubKeys(key)
		if err != nil || len(raw) < aead.NonceSize()+aead.Overhead()+2+16 {
			return "", uuid.Nil, bad
		}
		n := aead.NonceSize()
		plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(unsubTokenPrefix))
		if err != nil || plain[len(plain)-17] != '|' {
			return "", uuid.Nil, bad
		}
		tenant := string(plain[:len(plain)-17])
		id, _ := uuid.FromBytes(plain[len(plain)-16:])
		if tenant == "" {
			return "", uuid.Nil, bad
		}
		return tenant, id, nil
	}
	return parseLegacyUnsubscribeToken(key, token, bad)
}

func legacyUnsubMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("unsubscribe/v1|" + payload))
	return m.Sum(nil)[:16]
}

func parseLegacyUnsubscribeToken(key []byte, token string, bad error) (string, uuid.UUID, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return "", uuid.Nil, bad
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, legacyUnsubMAC(key, string(payload))) {
		return "", uuid.Nil, bad
	}
	tenant, id, ok := strings.Cut(string(payload), "|")
	u, err := uuid.Parse(id)
	if !ok || err != nil {
		return "", uuid.Nil, bad
	}
	return tenant, u, nil
}
