package vault

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	good := GenerateKey()
	raw, _ := base64.StdEncoding.DecodeString(good)
	cases := []struct {
		name string
		in   string
		err  error
	}{
		{"std", good, nil},
		{"url raw", base64.RawURLEncoding.EncodeToString(raw), nil},
		{"missing", "  ", ErrMissingKey},
		{"not base64", "!!!not-base64!!!", ErrInvalidKey},
		{"short", base64.StdEncoding.EncodeToString(raw[:16]), ErrInvalidKey},
		{"long", base64.StdEncoding.EncodeToString(append(raw, 1)), ErrInvalidKey},
	}
	for _, c := range cases {
		_, err := ParseKey(c.in)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	b, err := ParseKey(GenerateKey())
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(`{"password":"hunter2"}`)
	ad := []byte("tenant-a|0197")
	sealed := b.Seal(secret, ad)
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("ciphertext contains the plaintext")
	}
	if again := b.Seal(secret, ad); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are identical: nonce reuse")
	}
	got, err := b.Open(sealed, ad)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := b.Open(sealed, []byte("tenant-b|0197")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open with other associated data: %v, want ErrDecrypt", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := b.Open(tampered, ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open tampered: %v", err)
	}
	other, _ := ParseKey(GenerateKey())
	if _, err := other.Open(sealed, ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open with another key: %v", err)
	}
	if _, err := b.Open(sealed[:10], ad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("open truncated: %v", err)
	}
}
