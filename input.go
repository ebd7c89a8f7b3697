package dripdrop

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones are validated identically on every machine
	"unicode/utf8"

	"github.com/google/uuid"
)

// Nullable is a field that distinguishes "absent" (keep the stored value),
// "null" (clear it) and a value, for PATCH requests on nullable columns.
type Nullable[T any] struct {
	Set   bool // the field was present
	Valid bool // present and not null
	Value T
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		n.Valid = false
		return nil
	}
	n.Valid = true
	return json.Unmarshal(b, &n.Value)
}

// Ptr returns the value as a pointer (nil when null or absent).
func (n Nullable[T]) Ptr() *T {
	if !n.Valid {
		return nil
	}
	v := n.Value
	return &v
}

// apply returns the new value of a nullable column given its current value.
func (n Nullable[T]) apply(cur *T) *T {
	if !n.Set {
		return cur
	}
	return n.Ptr()
}

// ValidTimezone reports whether name is an IANA zone ("UTC" included).
func ValidTimezone(name string) bool {
	if name == "" || name == "Local" || len(name) > 64 {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// checkText rejects text that PostgreSQL or a mail header could not carry.
func checkText(field, s string, max int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return Errorf(ECodeRequired, field, "%s is required", field)
	}
	if !utf8.ValidString(s) {
		return Errorf(ECodeInvalidUTF8, field, "%s is not valid UTF-8", field)
	}
	if strings.ContainsRune(s, 0) {
		return Errorf(ECodeInvalidCharacter, field, "%s contains a NUL character", field)
	}
	if len(s) > max {
		return Errorf(ECodeTooLong, field, "%s is longer than %d bytes", field, max)
	}
	return nil
}

// checkHeaderText additionally rejects line breaks: the value goes into a
// mail header.
func checkHeaderText(field, s string, max int, required bool) error {
	if err := checkText(field, s, max, required); err != nil {
		return err
	}
	if strings.ContainsAny(s, "\r\n") {
		return Errorf(ECodeInvalidCharacter, field, "%s must not contain line breaks", field)
	}
	return nil
}

func checkRange(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return Errorf(ECodeOutOfRange, field, "%s must be between %d and %d", field, lo, hi)
	}
	return nil
}

func withField(err error, field string) error {
	if e, ok := err.(*Error); ok && e.Field == "" {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

// AdapterInput creates or patches an adapter. Absent fields keep their value
// (on create: the default).
type AdapterInput struct {
	Name             *string             `json:"name"`
	Channel          *string             `json:"channel"`
	Provider         *string             `json:"provider"`
	FromAddress      *string             `json:"from_address"`
	FromName         *string             `json:"from_name"`
	Credentials      *SMTPCredentials    `json:"credentials"`
	Auth             *string             `json:"auth"`
	OAuthAppID       *uuid.UUID          `json:"oauth_app_id"`
	Active           *bool               `json:"active"`
	Timezone         *string             `json:"timezone"`
	DailyCap         Nullable[int]       `json:"daily_cap"`
	RampFloor        *int                `json:"ramp_floor"`
	RampIncrement    Nullable[int]       `json:"ramp_increment"`
	RampStartedAt    Nullable[time.Time] `json:"ramp_started_at"`
	MinGapSeconds    *int                `json:"min_gap_seconds"`
	GapJitterSeconds *int                `json:"gap_jitter_seconds"`
	MaxInFlight      Nullable[int]       `json:"max_in_flight"`
	// IMAP sets the mailbox-sync settings (replacing them whole); null
	// turns mailbox sync off and forgets its state.
	IMAP Nullable[IMAPSettings] `json:"imap"`
	// MailboxProvider names the adapter's own mailbox provider for
	// provider-aware pinning (google, microsoft, …, other); "" = from the
	// SMTP host (smtp.gmail.com, smtp.office365.com).
	MailboxProvider *string `json:"mailbox_provider"`
	// ProviderCaps caps this adapter's sends per local day to recipients
	// of a provider ({"microsoft": 20}); {} removes every cap.
	ProviderCaps map[string]int `json:"provider_caps"`
}

// Limits on adapter settings.
const (
	maxDailyCap = 1_000_000
	maxGap      = 7 * 24 * 3600
	maxInFlight = 1000
)

// Apply validates the input against the adapter's current state (nil on
// create) and returns the resulting adapter. The health state of a new
// adapter is ramping when it has ramp settings, else active (see
// docs/health.md#states).
func (in AdapterInput) Apply(cur *Adapter, now time.Time) (Adapter, error) {
	creating := cur == nil
	a := Adapter{Channel: "email", Active: true, Timezone: "UTC", HealthState: HealthActive, RestBackoffSeconds: 86400}
	if !creating {
		a = *cur
	} else {
		if in.Name == nil {
			return a, Errorf(ECodeRequired, "name", "name is required")
		}
		if in.Provider == nil {
			return a, Errorf(ECodeRequired, "provider", "provider is required")
		}
		if in.FromAddress == nil {
			return a, Errorf(ECodeRequired, "from_address", "from_address is required")
		}
	}
	if in.Channel != nil && !creating && *in.Channel != a.Channel {
		return a, Errorf(ECodeInvalidValue, "channel", "the channel of an adapter cannot change")
	}
	if in.Provider != nil && !creating && *in.Provider != a.Provider {
		return a, Errorf(ECodeInvalidValue, "provider", "the provider of an adapter cannot change")
	}
	if in.Name != nil {
		if err := checkHeaderText("name", *in.Name, 200, true); err != nil {
			return a, err
		}
		a.Name = strings.TrimSpace(*in.Name)
	}
	if in.Channel != nil {
		if *in.Channel != "email" {
			return a, Errorf(ECodeInvalidValue, "channel", "channel must be \"email\"")
		}
		a.Channel = *in.Channel
	}
	if in.Provider != nil {
		switch *in.Provider {
		case "smtp", "sink":
			a.Provider = *in.Provider
		default:
			return a, Errorf(ECodeInvalidValue, "provider", "provider must be \"smtp\" or \"sink\"")
		}
	}
	if in.FromAddress != nil {
		addr, err := ParseEmail(*in.FromAddress)
		if err != nil {
			return a, withField(err, "from_address")
		}
		a.FromAddress = addr
	}
	if in.FromName != nil {
		if err := checkHeaderText("from_name", *in.FromName, 200, false); err != nil {
			return a, err
		}
		a.FromName = strings.TrimSpace(*in.FromName)
	}
	if in.Credentials != nil {
		if err := in.Credentials.Validate(); err != nil {
			return a, err
		}
		a.CredentialsSet = true
	}
	if creating {
		a.Auth = AuthPassword
	}
	if in.Auth != nil {
		switch *in.Auth {
		case AuthPassword, AuthOAuth2:
		default:
			return a, Errorf(ECodeInvalidValue, "auth", "auth must be password or oauth2")
		}
		if *in.Auth == AuthOAuth2 && a.Provider != "smtp" {
			return a, Errorf(ECodeInvalidValue, "auth", "only smtp adapters authenticate by oauth2")
		}
		a.Auth = *in.Auth
	}
	if in.OAuthAppID != nil {
		if a.Auth != AuthOAuth2 {
			return a, Errorf(ECodeInvalidValue, "oauth_app_id", "oauth_app_id applies to auth oauth2 only")
		}
		id := *in.OAuthAppID
		a.OAuthAppID = &id
	}
	if a.Auth == AuthPassword {
		a.OAuthAppID = nil
	}
	if a.Auth == AuthOAuth2 {
		if a.OAuthAppID == nil {
			return a, Errorf(ECodeRequired, "oauth_app_id", "an oauth2 adapter needs oauth_app_id (POST /v1/oauth/apps)")
		}
		if in.Credentials != nil && in.Credentials.Password != "" {
			return a, Errorf(ECodeInvalidValue, "credentials.password", "an oauth2 adapter logs in with its token, not a password")
		}
	}
	if a.Provider == "smtp" && creating && in.Credentials == nil && a.Auth != AuthOAuth2 {
		return a, Errorf(ECodeRequired, "credentials", "an smtp adapter needs credentials (host and port)")
	}
	if in.Active != nil {
		a.Active = *in.Active
	}
	if in.Timezone != nil {
		if !ValidTimezone(*in.Timezone) {
			return a, Errorf(ECodeInvalidTimezone, "timezone", "timezone must be an IANA zone name such as Europe/Berlin")
		}
		a.Timezone = *in.Timezone
	}
	if in.DailyCap.Set && in.DailyCap.Valid {
		if err := checkRange("daily_cap", in.DailyCap.Value, 1, maxDailyCap); err != nil {
			return a, err
		}
	}
	a.DailyCap = in.DailyCap.apply(a.DailyCap)
	if in.RampFloor != nil {
		if err := checkRange("ramp_floor", *in.RampFloor, 0, maxDailyCap); err != nil {
			return a, err
		}
		a.RampFloor = *in.RampFloor
	}
	if in.RampIncrement.Set && in.RampIncrement.Valid {
		if err := checkRange("ramp_increment", in.RampIncrement.Value, 1, maxDailyCap); err != nil {
			return a, err
		}
	}
	a.RampIncrement = in.RampIncrement.apply(a.RampIncrement)
	if in.RampStartedAt.Set && in.RampStartedAt.Valid {
		t := in.RampStartedAt.Value
		if t.Year() < 2000 || t.After(now.Add(366*24*time.Hour)) {
			return a, Errorf(ECodeOutOfRange, "ramp_started_at", "ramp_started_at must be a plausible time")
		}
	}
	a.RampStartedAt = in.RampStartedAt.apply(a.RampStartedAt)
	if in.MinGapSeconds != nil {
		if err := checkRange("min_gap_seconds", *in.MinGapSeconds, 0, maxGap); err != nil {
			return a, err
		}
		a.MinGapSeconds = *in.MinGapSeconds
	}
	if in.GapJitterSeconds != nil {
		if err := checkRange("gap_jitter_seconds", *in.GapJitterSeconds, 0, maxGap); err != nil {
			return a, err
		}
		a.GapJitterSeconds = *in.GapJitterSeconds
	}
	if in.MaxInFlight.Set && in.MaxInFlight.Valid {
		if err := checkRange("max_in_flight", in.MaxInFlight.Value, 1, maxInFlight); err != nil {
			return a, err
		}
	}
	a.MaxInFlight = in.MaxInFlight.apply(a.MaxInFlight)
	if in.IMAP.Set {
		a.IMAP = nil
		if in.IMAP.Valid {
			st, err := in.IMAP.Value.Normalize()
			if err != nil {
				return a, err
			}
			a.IMAP = &st
		}
	}
	if in.ProviderCaps != nil {
		caps := map[string]int{}
		for p, n := range in.ProviderCaps {
			if !slices.Contains(MailboxProviders, p) {
				return a, Errorf(ECodeInvalidValue, "provider_caps", "provider_caps keys must be among %s", strings.Join(MailboxProviders, ", "))
			}
			if err := checkRange("provider_caps."+p, n, 1, 1_000_000); err != nil {
				return a, err
			}
			caps[p] = n
		}
		a.ProviderCaps = caps
	}
	if a.ProviderCaps == nil {
		a.ProviderCaps = map[string]int{}
	}
	if in.MailboxProvider != nil {
		if *in.MailboxProvider != "" && !slices.Contains(MailboxProviders, *in.MailboxProvider) {
			return a, Errorf(ECodeInvalidValue, "mailbox_provider", "mailbox_provider must be one of %s, or empty", strings.Join(MailboxProviders, ", "))
		}
		a.MailboxProvider = *in.MailboxProvider
	}
	if a.RampIncrement != nil && a.DailyCap == nil {
		return a, Errorf(ECodeRequired, "daily_cap", "a ramp (ramp_increment) needs a daily_cap to ramp up to")
	}
	if creating {
		if a.RampIncrement != nil {
			a.HealthState = HealthRamping
			if a.RampStartedAt == nil {
				t := now
				a.RampStartedAt = &t
			}
		}
		a.HealthSince = now
	}
	return a, nil
}

// Validate checks SMTP connection settings.
func (c *SMTPCredentials) Validate() error {
	if err := checkHeaderText("credentials.host", c.Host, 253, true); err != nil {
		return err
	}
	if strings.ContainsAny(c.Host, " /@") {
		return Errorf(ECodeInvalidValue, "credentials.host", "host must be a host name or IP address")
	}
	if err := checkRange("credentials.port", c.Port, 1, 65535); err != nil {
		return err
	}
	if err := checkHeaderText("credentials.username", c.Username, 320, false); err != nil {
		return err
	}
	if err := checkHeaderText("credentials.password", c.Password, 1024, false); err != nil {
		return err
	}
	switch c.TLS {
	case "", "starttls", "require_starttls", "tls", "none":
	default:
		return Errorf(ECodeInvalidValue, "credentials.tls", "tls must be starttls, require_starttls, tls or none")
	}
	if err := checkHeaderText("credentials.helo", c.HELO, 253, false); err != nil {
		return err
	}
	if strings.ContainsAny(c.HELO, " \t") {
		return Errorf(ECodeInvalidValue, "credentials.helo", "helo must be one host name, without spaces")
	}
	if c.TLSCAPEM != "" {
		if len(c.TLSCAPEM) > maxCAPEM {
			return Errorf(ECodeTooLong, "credentials.tls_ca_pem", "tls_ca_pem is longer than 256 KiB")
		}
		if err := checkCAPEM(c.TLSCAPEM); err != nil {
			return Errorf(ECodeInvalidValue, "credentials.tls_ca_pem", "tls_ca_pem: %s", err.Error())
		}
	}
	return nil
}

// maxCAPEM caps a CA bundle: a few dozen certificates are well under it.
const maxCAPEM = 256 << 10

// checkCAPEM accepts a bundle of one or more PEM CERTIFICATE blocks, each
// a parseable X.509 certificate, and nothing else but white space.
func checkCAPEM(s string) error {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("block %d is a %q, not a CERTIFICATE", n+1, b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("it holds text that is not a PEM block")
	}
	if n == 0 {
		return errors.New("it holds no PEM certificate")
	}
	return nil
}

// PoolInput creates or patches a pool.
type PoolInput struct {
	Name             *string       `json:"name"`
	OnPinUnavailable *string       `json:"on_pin_unavailable"`
	ProviderMatching *string       `json:"provider_matching"`
	Members          []MemberInput `json:"members"`
}

// Apply validates the pool fields (members are validated separately).
func (in PoolInput) Apply(cur *Pool) (Pool, error) {
	p := Pool{OnPinUnavailable: PinPause, ProviderMatching: ProviderMatchingOff}
	if cur != nil {
		p = *cur
	} else if in.Name == nil {
		return p, Errorf(ECodeRequired, "name", "name is required")
	}
	if cur != nil && in.Members != nil {
		return p, Errorf(ECodeUnknownField, "members", "members are managed with /v1/pools/{id}/members")
	}
	if in.Name != nil {
		if err := checkText("name", *in.Name, 200, true); err != nil {
			return p, err
		}
		p.Name = strings.TrimSpace(*in.Name)
	}
	if in.OnPinUnavailable != nil {
		switch *in.OnPinUnavailable {
		case PinPause, PinReassign:
			p.OnPinUnavailable = *in.OnPinUnavailable
		default:
			return p, Errorf(ECodeInvalidValue, "on_pin_unavailable", "on_pin_unavailable must be \"pause\" or \"reassign\"")
		}
	}
	if in.ProviderMatching != nil {
		switch *in.ProviderMatching {
		case ProviderMatchingOff, ProviderMatchingPrefer:
			p.ProviderMatching = *in.ProviderMatching
		default:
			return p, Errorf(ECodeInvalidValue, "provider_matching", "provider_matching must be \"off\" or \"prefer\"")
		}
	}
	return p, nil
}

// MemberInput adds or patches a pool member.
type MemberInput struct {
	AdapterID *uuid.UUID `json:"adapter_id"`
	Weight    *int       `json:"weight"`
	Class     *string    `json:"class"`
	Active    *bool      `json:"active"`
}

// Apply validates the member fields against the current member (nil on add).
func (in MemberInput) Apply(cur *PoolMember, field string) (PoolMember, error) {
	m := PoolMember{Weight: 1, Class: "mailbox", Active: true}
	if cur != nil {
		m = *cur
		if in.AdapterID != nil && *in.AdapterID != cur.AdapterID {
			return m, Errorf(ECodeInvalidValue, field+"adapter_id", "the adapter of a member cannot change")
		}
	} else {
		if in.AdapterID == nil {
			return m, Errorf(ECodeRequired, field+"adapter_id", "adapter_id is required")
		}
		m.AdapterID = *in.AdapterID
	}
	if in.Weight != nil {
		if err := checkRange(field+"weight", *in.Weight, 1, 1_000_000); err != nil {
			return m, err
		}
		m.Weight = *in.Weight
	}
	if in.Class != nil {
		if *in.Class != "mailbox" && *in.Class != "esp_api" {
			return m, Errorf(ECodeInvalidValue, field+"class", "class must be \"mailbox\" or \"esp_api\"")
		}
		m.Class = *in.Class
	}
	if in.Active != nil {
		m.Active = *in.Active
	}
	return m, nil
}

// SuppressionInput adds an address or a domain to the suppression list.
type SuppressionInput struct {
	Email  *string `json:"email"`
	Domain *string `json:"domain"`
	Reason *string `json:"reason"`
	Source *string `json:"source"`
}

// Apply validates the suppression.
func (in SuppressionInput) Apply() (Suppression, error) {
	s := Suppression{Reason: "manual"}
	switch {
	case in.Email != nil && in.Domain != nil:
		return s, Errorf(ECodeInvalidValue, "domain", "give either email or domain, not both")
	case in.Email != nil:
		e, err := ParseEmail(*in.Email)
		if err != nil {
			return s, withField(err, "email")
		}
		s.Kind, s.Value = "email", strings.ToLower(e)
	case in.Domain != nil:
		d, err := ParseDomain(*in.Domain)
		if err != nil {
			return s, withField(err, "domain")
		}
		s.Kind, s.Value = "domain", d
	default:
		return s, Errorf(ECodeRequired, "email", "email or domain is required")
	}
	if in.Reason != nil {
		switch *in.Reason {
		case "bounce", "complaint", "unsubscribe", "manual":
			s.Reason = *in.Reason
		default:
			return s, Errorf(ECodeInvalidValue, "reason", "reason must be bounce, complaint, unsubscribe or manual")
		}
	}
	if in.Source != nil {
		if err := checkText("source", *in.Source, 200, false); err != nil {
			return s, err
		}
		s.Source = *in.Source
	}
	return s, nil
}

// MaxSharePctInput sets a budget.
type BudgetInput struct {
	MaxSharePct *int `json:"max_share_pct"`
}

// Validate checks the budget.
func (in BudgetInput) Validate() error {
	if in.MaxSharePct == nil {
		return Errorf(ECodeRequired, "max_share_pct", "max_share_pct is required")
	}
	return checkRange("max_share_pct", *in.MaxSharePct, 1, 100)
}
