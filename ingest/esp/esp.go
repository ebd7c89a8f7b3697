// Package esp verifies and reads the event webhooks of e-mail service
// providers (docs/ingest.md#esp-event-webhooks): Amazon SES through SNS,
// SendGrid, Postmark, Mailgun and Resend. Everything here is pure: the
// caller fetches certificates, reads clocks and applies the events.
package esp

import (
	"errors"
	"strings"
	"time"
)

// Providers.
const (
	SES      = "ses"
	SendGrid = "sendgrid"
	Postmark = "postmark"
	Mailgun  = "mailgun"
	Resend   = "resend"
)

// Providers lists every supported provider.
var Providers = []string{SES, SendGrid, Postmark, Mailgun, Resend}

// Known reports whether p names a supported provider.
func Known(p string) bool {
	for _, k := range Providers {
		if p == k {
			return true
		}
	}
	return false
}

// Tolerance is how far a signed timestamp (Mailgun, Resend) may lie from
// now: older or newer deliveries are refused as replays.
const Tolerance = 5 * time.Minute

// ErrSignature is returned (wrapped) for every verification failure.
var ErrSignature = errors.New("esp: signature verification failed")

func sigErr(msg string) error { return &sigError{msg} }

type sigError struct{ msg string }

func (e *sigError) Error() string { return "esp: " + e.msg }
func (e *sigError) Unwrap() error { return ErrSignature }

// Kind is what an event means for the recipient.
type Kind string

// Kinds.
const (
	KindBounce      Kind = "bounce"
	KindComplaint   Kind = "complaint"
	KindUnsubscribe Kind = "unsubscribe"
	// KindIgnored events (deliveries, opens, …) are acknowledged and not stored.
	KindIgnored Kind = "ignored"
)

// Event is one provider event, normalized.
type Event struct {
	// ID is the provider's event id: the duplicate key.
	ID   string
	Kind Kind
	// Type is the provider's own name of the event (for humans).
	Type      string
	Recipient string
	// MessageID is the Message-ID header of the message the event is
	// about (ours), normalized; ProviderMessageID the provider's id of it.
	MessageID         string
	ProviderMessageID string
	// Permanent says the provider reports a permanent failure (bounces).
	Permanent bool
	// SenderSide says the provider itself names the failure the sender's
	// (blocked, policy, spam content): never the recipient's.
	SenderSide bool
	// Status is the enhanced status code the provider reported, if any;
	// Diagnostic its diagnostic text.
	Status     string
	Diagnostic string
	Time       time.Time
}

func normID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

// parseTime reads an RFC 3339 time; zero when absent or unreadable.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func within(ts, now time.Time) bool {
	d := now.Sub(ts)
	return d <= Tolerance && d >= -Tolerance
}
