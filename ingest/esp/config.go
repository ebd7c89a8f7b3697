package esp

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"strings"

	"github.com/dripdrop/dripdrop"
)

// Config is a tenant's verification material for one provider. Only the
// fields of that provider are accepted.
type Config struct {
	// TopicARNs are the SNS topics SES may notify from (ses).
	TopicARNs []string `json:"topic_arns,omitempty"`
	// PublicKey is the Event Webhook verification key, base64 DER as
	// SendGrid shows it (sendgrid).
	PublicKey string `json:"public_key,omitempty"`
	// Username and Password are the webhook URL's basic-auth credentials
	// (postmark).
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// SigningKey is the HTTP webhook signing key (mailgun).
	SigningKey string `json:"signing_key,omitempty"`
	// Secret is the whsec_… Standard Webhooks secret (resend).
	Secret string `json:"secret,omitempty"`
}

// Public is the part of a configuration that may be shown: never a secret.
func (c Config) Public() map[string]any {
	out := map[string]any{}
	if len(c.TopicARNs) > 0 {
		out["topic_arns"] = c.TopicARNs
	}
	if c.Username != "" {
		out["username"] = c.Username
	}
	return out
}

// Validate checks that c carries exactly what provider needs.
func (c Config) Validate(provider string) error {
	allowed := map[string][]string{SES: {"topic_arns"}, SendGrid: {"public_key"}, Postmark: {"username", "password"},
		Mailgun: {"signing_key"}, Resend: {"secret"}}[provider]
	if allowed == nil {
		return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "provider", "provider must be one of %s", strings.Join(Providers, ", "))
	}
	set := map[string]bool{"topic_arns": len(c.TopicARNs) > 0, "public_key": c.PublicKey != "", "username": c.Username != "",
		"password": c.Password != "", "signing_key": c.SigningKey != "", "secret": c.Secret != ""}
	for _, f := range []string{"topic_arns", "public_key", "username", "password", "signing_key", "secret"} {
		want := false
		for _, a := range allowed {
			want = want || a == f
		}
		if want && !set[f] {
			return dripdrop.Errorf(dripdrop.ECodeRequired, f, "%s needs %s", provider, f)
		}
		if !want && set[f] {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, f, "%s takes no %s", provider, f)
		}
	}
	for _, arn := range c.TopicARNs {
		if !strings.HasPrefix(arn, "arn:aws") || strings.Count(arn, ":") != 5 || len(arn) > 256 {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "topic_arns", "%q is not an SNS topic ARN", arn)
		}
	}
	if len(c.TopicARNs) > 20 {
		return dripdrop.Errorf(dripdrop.ECodeOutOfRange, "topic_arns", "at most 20 topic ARNs")
	}
	for f, v := range map[string]string{"username": c.Username, "password": c.Password, "signing_key": c.SigningKey, "secret": c.Secret, "public_key": c.PublicKey} {
		if len(v) > 4096 {
			return dripdrop.Errorf(dripdrop.ECodeTooLong, f, "%s is at most 4096 characters", f)
		}
	}
	if c.PublicKey != "" {
		if _, err := ParseECDSAPublicKey(c.PublicKey); err != nil {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "public_key", "public_key must be a base64 DER (PKIX) ECDSA public key")
		}
	}
	if c.Secret != "" {
		if _, err := standardSecret(c.Secret); err != nil {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "secret", "secret must be whsec_ followed by base64")
		}
	}
	return nil
}

// ParseECDSAPublicKey reads a base64 DER (PKIX) ECDSA public key.
func ParseECDSAPublicKey(b64 string) (*ecdsa.PublicKey, error) {
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, sigErr("not an ECDSA key")
	}
	return ek, nil
}

func standardSecret(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "whsec_"))
}
