package dripdrop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestSMTPCredentialsTLSTrust(t *testing.T) {
	t.Parallel()
	ca := testCAPEM(t)
	cases := []struct {
		name  string
		pem   string
		helo  string
		field string // "" = valid
	}{
		{"no bundle", "", "", ""},
		{"one CA", ca, "", ""},
		{"two CAs", ca + "\n" + ca, "", ""},
		{"not PEM", "hello", "", "credentials.tls_ca_pem"},
		{"a key, not a certificate", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "", "credentials.tls_ca_pem"},
		{"a broken certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "", "credentials.tls_ca_pem"},
		{"trailing junk", ca + "junk", "", "credentials.tls_ca_pem"},
		{"too long", ca + strings.Repeat(" ", maxCAPEM), "", "credentials.tls_ca_pem"},
		{"helo with a space", "", "mta.example.com x", "credentials.helo"},
	}
	for _, c := range cases {
		cr := SMTPCredentials{Host: "smtp.example.com", Port: 587, TLSCAPEM: c.pem, HELO: c.helo, TLSInsecureSkipVerify: true}
		err := cr.Validate()
		var e *Error
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.field != "" && (!errors.As(err, &e) || e.Field != c.field):
			t.Errorf("%s: %v, want an error on %s", c.name, err, c.field)
		}
	}
}
