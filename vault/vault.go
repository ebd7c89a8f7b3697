// Package vault encrypts secrets at rest with AES-256-GCM.
//
// The key is 32 bytes, given base64-encoded (standard or URL alphabet, padded
// or not) in DRIPDROP_ENCRYPTION_KEY. Every sealed value is
// version(1) || nonce(12) || ciphertext+tag, with caller-supplied associated
// data binding it to its row (for adapters: tenant_key|adapter_id), so a
// ciphertext copied to another row or tenant fails to open.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

const version1 = 1

var (
	// ErrMissingKey means no key was configured.
	ErrMissingKey = errors.New("vault: DRIPDROP_ENCRYPTION_KEY is not set")
	// ErrInvalidKey means the key is not base64 of exactly 32 bytes.
	ErrInvalidKey = errors.New("vault: DRIPDROP_ENCRYPTION_KEY must be base64 of exactly 32 random bytes")
	// ErrDecrypt means a ciphertext was tampered with, truncated, sealed
	// under another key, or moved to another row.
	ErrDecrypt = errors.New("vault: cannot decrypt value")
)

// Box seals and opens values under one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	raw  []byte
}

// ParseKey builds a Box from a base64-encoded 32-byte key.
func ParseKey(encoded string) (*Box, error) {
	encoded = strings.TrimSpace(encoded)
	if encoded == "" {
		return nil, ErrMissingKey
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(encoded); err == nil {
			raw = b
			break
		}
	}
	if len(raw) != 32 {
		return nil, ErrInvalidKey
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, ErrInvalidKey
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, raw: raw}, nil
}

// GenerateKey returns a new random key, base64-encoded.
func GenerateKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("vault: random source failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Seal encrypts plaintext bound to associatedData.
func (b *Box) Seal(plaintext, associatedData []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("vault: random source failed: " + err.Error())
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version1)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, associatedData)
}

// Open decrypts a value produced by Seal with the same associated data.
func (b *Box) Open(sealed, associatedData []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version1 {
		return nil, ErrDecrypt
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], associatedData)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// DeriveKey returns a 32-byte key for another purpose (for example signing
// unsubscribe links), derived from the encryption key with HMAC-SHA256 over
// the label, so one configured secret serves both without reuse.
func (b *Box) DeriveKey(label string) []byte {
	m := hmac.New(sha256.New, b.raw)
	m.Write([]byte("dripdrop/derive/v1/" + label))
	return m.Sum(nil)
}
