package mailauth_test

import (
	"bytes"
	"testing"

	"github.com/dripdrop/dripdrop/mailauth"
)

// FuzzParseXOAuth2: whatever a client sends, the parser either refuses it
// or returns a username and token that the client encodes back to exactly
// those bytes (no ^A smuggled into either).
func FuzzParseXOAuth2(f *testing.F) {
	for _, s := range []string{"user=ada@acme.example\x01auth=Bearer ya29.tok\x01\x01", "", "user=\x01auth=Bearer t\x01\x01",
		"user=a\x01auth=Bearer t\x01", "user=a\x01auth=Basic t\x01\x01", "user=a\x01auth=Bearer t\x01x\x01", "\x01\x01\x01"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ir []byte) {
		u, tok, err := mailauth.ParseXOAuth2(ir)
		if err != nil {
			return
		}
		_, again, err := mailauth.NewXOAuth2Client(u, tok).Start()
		if err != nil || !bytes.Equal(again, ir) {
			t.Fatalf("parsed %q into (%q, %q), which encodes to %q (%v)", ir, u, tok, again, err)
		}
	})
}

// FuzzXOAuth2Challenge: any challenge a server sends is answered with the
// empty response and recorded, never an error.
func FuzzXOAuth2Challenge(f *testing.F) {
	for _, s := range []string{`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`, "", "not json", `{"status":7}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, challenge []byte) {
		c := mailauth.NewXOAuth2Client("ada@acme.example", "tok")
		resp, err := c.Next(challenge)
		if err != nil || len(resp) != 0 || c.Failure() == nil {
			t.Fatalf("challenge %q: response %q, err %v, failure %v", challenge, resp, err, c.Failure())
		}
	})
}
