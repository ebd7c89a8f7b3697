package dripdrop

import (
	"time"

	"github.com/google/uuid"
)

// HealthState is an adapter's health state (docs/health.md#states).
type HealthState string

// Health states of an adapter.
const (
	HealthActive  HealthState = "active"
	HealthRamping HealthState = "ramping"
	HealthProbing HealthState = "probing"
	HealthResting HealthState = "resting"
)

// HealthStates lists every health state.
var HealthStates = []HealthState{HealthActive, HealthRamping, HealthProbing, HealthResting}

// EnrollmentState is an enrollment's state (docs/enrollments.md#states).
type EnrollmentState string

// Enrollment states.
const (
	EnrollmentActive    EnrollmentState = "active"
	EnrollmentPaused    EnrollmentState = "paused"
	EnrollmentCompleted EnrollmentState = "completed"
	EnrollmentStopped   EnrollmentState = "stopped"
	EnrollmentCancelled EnrollmentState = "cancelled"
)

// EnrollmentStates lists every enrollment state.
var EnrollmentStates = []EnrollmentState{EnrollmentActive, EnrollmentPaused, EnrollmentCompleted, EnrollmentStopped, EnrollmentCancelled}

// Stop reasons of a stopped enrollment.
const (
	StopReplied        = "replied"
	StopBounced        = "bounced"
	StopComplained     = "complained"
	StopUnsubscribed   = "unsubscribed"
	StopSuppressed     = "suppressed"
	StopCompanyReplied = "company_replied"
)

// MailboxProviders are the mailbox providers a domain's MX is classified as
// (the same list as preflight.Providers).
var MailboxProviders = []string{"google", "microsoft", "yahoo", "apple", "proofpoint", "mimecast", "barracuda", "zoho", "other"}

// Provider matching of a pool (docs/preflight.md#provider-aware-sending).
const (
	ProviderMatchingOff    = "off"
	ProviderMatchingPrefer = "prefer"
)

// Pool policies for an unavailable pin (docs/sending.md#pinning).
const (
	PinPause    = "pause"
	PinReassign = "reassign"
)

// Tenant is an isolated customer of the engine.
type Tenant struct {
	Key       string    `json:"tenant_key"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// APIKey is a tenant credential. Secret is set only in the response that
// created the key; only its SHA-256 is stored.
type APIKey struct {
	ID         uuid.UUID  `json:"id"`
	TenantKey  string     `json:"tenant_key"`
	Name       string     `json:"name"`
	Hint       string     `json:"hint"`
	Secret     string     `json:"key,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// SMTPCredentials are the write-only connection settings of an smtp or sink
// adapter. They are stored encrypted and never returned by the API.
type SMTPCredentials struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TLS is "starttls" (use STARTTLS when offered; the default),
	// "require_starttls", "tls" (implicit TLS) or "none".
	TLS string `json:"tls,omitempty"`
	// HELO is the name announced in every EHLO/HELO (before and after
	// STARTTLS); defaults to the from domain.
	HELO string `json:"helo,omitempty"`
	// TLSCAPEM is a PEM bundle of CA certificates: when set, they are the
	// only roots this adapter's server certificates are checked against
	// (a relay with a private CA).
	TLSCAPEM string `json:"tls_ca_pem,omitempty"`
	// TLSInsecureSkipVerify turns certificate checking off for this
	// adapter — for lab relays only: anyone on the path can read and
	// change the mail and the password.
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`
}

// Adapter is one sender: a mailbox or an ESP account.
type Adapter struct {
	ID             uuid.UUID `json:"id"`
	TenantKey      string    `json:"-"`
	Name           string    `json:"name"`
	Channel        string    `json:"channel"`
	Provider       string    `json:"provider"`
	FromAddress    string    `json:"from_address"`
	FromName       string    `json:"from_name"`
	CredentialsSet bool      `json:"credentials_set"`
	// Auth is how the adapter logs in: password or oauth2 (AuthPassword,
	// AuthOAuth2); an oauth2 adapter names its OAuth app.
	Auth       string     `json:"auth"`
	OAuthAppID *uuid.UUID `json:"oauth_app_id"`
	// ReconnectRequired: the adapter's OAuth grant died; it rests until
	// it is reconnected (docs/mailboxes.md).
	ReconnectRequired bool `json:"reconnect_required"`
	// OAuth is an oauth2 adapter's connection state (single reads only).
	OAuth              *OAuthStatus `json:"oauth,omitempty"`
	Active             bool         `json:"active"`
	Timezone           string       `json:"timezone"`
	HealthState        HealthState  `json:"health_state"`
	HealthScore        *float64     `json:"health_score"`
	HealthSince        time.Time    `json:"health_since"`
	RestingUntil       *time.Time   `json:"resting_until"`
	RestBackoffSeconds int          `json:"rest_backoff_seconds"`
	DailyCap           *int         `json:"daily_cap"`
	RampFloor          int          `json:"ramp_floor"`
	RampIncrement      *int         `json:"ramp_increment"`
	RampStartedAt      *time.Time   `json:"ramp_started_at"`
	MinGapSeconds      int          `json:"min_gap_seconds"`
	GapJitterSeconds   int          `json:"gap_jitter_seconds"`
	// MaxInFlight caps this adapter's concurrent sends; nil = the default
	// (4, or 1 when MinGapSeconds > 0).
	MaxInFlight     *int           `json:"max_in_flight"`
	MailboxProvider string         `json:"mailbox_provider"`
	ProviderCaps    map[string]int `json:"provider_caps"`
	LastSendAt      *time.Time     `json:"last_send_at"`
	NextSendAt      *time.Time     `json:"next_send_at"`
	// IMAP are the mailbox-sync settings; nil when the engine does not read
	// this adapter's mailbox.
	IMAP      *IMAPSettings `json:"imap"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	DeletedAt *time.Time    `json:"-"`
}

// Pool is a named set of adapters that enrollments are pinned from.
type Pool struct {
	ID               uuid.UUID `json:"id"`
	Name             string    `json:"name"`
	OnPinUnavailable string    `json:"on_pin_unavailable"`
	// ProviderMatching "prefer" pins a contact to a member whose mailbox
	// provider matches the contact's when one is eligible; "off" ignores it.
	ProviderMatching string       `json:"provider_matching"`
	Members          []PoolMember `json:"members"`
	CreatedAt        time.Time    `json:"created_at"`
	UpdatedAt        time.Time    `json:"updated_at"`
}

// PoolMember places an adapter in a pool with a WDRR weight.
type PoolMember struct {
	ID        uuid.UUID `json:"member_id"`
	PoolID    uuid.UUID `json:"pool_id"`
	AdapterID uuid.UUID `json:"adapter_id"`
	Weight    int       `json:"weight"`
	Class     string    `json:"class"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Sequence is a named outbound campaign with numbered versions.
type Sequence struct {
	ID        uuid.UUID         `json:"id"`
	Key       string            `json:"key"`
	Name      string            `json:"name"`
	Versions  []SequenceVersion `json:"versions"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// SendWindow is when a version may send, in the contact's timezone (falling
// back to Timezone, then UTC). Days are 0=Sunday..6=Saturday, the day on which
// the window opens; Start/End are "HH:MM" and may wrap midnight.
type SendWindow struct {
	Days     []int  `json:"days"`
	Start    string `json:"start"`
	End      string `json:"end"`
	Timezone string `json:"timezone"`
	// Holidays names national holiday calendars (ISO 3166-1 alpha-2
	// codes, e.g. "US", "DE") whose holidays close the window for the day
	// in the contact's zone (docs/sending.md#policies).
	Holidays []string `json:"holidays"`
}

// SequenceVersion is an immutable-once-active revision of a sequence.
type SequenceVersion struct {
	ID          uuid.UUID  `json:"id"`
	SequenceID  uuid.UUID  `json:"sequence_id"`
	Version     int        `json:"version"`
	State       string     `json:"state"`
	Mode        string     `json:"mode"`
	PoolID      uuid.UUID  `json:"pool_id"`
	SendWindow  SendWindow `json:"send_window"`
	StopOnReply bool       `json:"stop_on_reply"`
	// StopCompanyOnReply: a reply also stops the company's other enrollments.
	StopCompanyOnReply bool `json:"stop_company_on_reply"`
	// ListUnsubscribe is which List-Unsubscribe headers the version's
	// messages carry: one_click, mailto or off (docs/sending.md).
	ListUnsubscribe string `json:"list_unsubscribe"`
	// VerifyRecipients is how contacts are checked at enrollment: off,
	// syntax (the default) or mx (docs/preflight.md#recipients).
	VerifyRecipients string `json:"verify_recipients"`
	// Branches route outcomes to other sequences; ContinueThread keeps a
	// routed contact's first message in the thread it came from.
	Branches       Branches   `json:"branches"`
	ContinueThread bool       `json:"continue_thread"`
	Steps          []Step     `json:"steps"`
	Budgets        []Budget   `json:"budgets"`
	ActivatedAt    *time.Time `json:"activated_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Step is one message of a version.
type Step struct {
	ID                uuid.UUID  `json:"id"`
	Key               string     `json:"key"`
	Position          int        `json:"position"`
	DelaySeconds      int64      `json:"delay_seconds"`
	Subject           string     `json:"subject"`
	BodyText          string     `json:"body_text"`
	BodyHTML          *string    `json:"body_html"`
	Spintax           bool       `json:"spintax"`
	AdapterOverrideID *uuid.UUID `json:"adapter_override_id"`
	// Variants are the step's alternatives (none, or 2–5).
	Variants   []Variant   `json:"variants"`
	AutoWinner *AutoWinner `json:"auto_winner"`
	// Winner is the key of the promoted variant: new assignments get it.
	Winner     *string    `json:"winner"`
	PromotedAt *time.Time `json:"promoted_at,omitempty"`
}

// Variant is one alternative of a step's subject and/or body; a nil field
// is the step's own.
type Variant struct {
	Key      string  `json:"key"`
	Subject  *string `json:"subject,omitempty"`
	BodyText *string `json:"body_text,omitempty"`
	BodyHTML *string `json:"body_html,omitempty"`
	Weight   int     `json:"weight"`
}

// AutoWinner promotes a step's winning variant (docs/sequences.md#auto-winner).
type AutoWinner struct {
	Metric     string  `json:"metric"`
	MinSent    int     `json:"min_sent"`
	Confidence float64 `json:"confidence"`
}

// Budget caps an adapter's daily share for one sequence version.
type Budget struct {
	AdapterID         uuid.UUID `json:"adapter_id"`
	SequenceVersionID uuid.UUID `json:"sequence_version_id"`
	MaxSharePct       int       `json:"max_share_pct"`
	UpdatedAt         time.Time `json:"updated_at"`
}

// Suppression blocks an address or a whole domain for a tenant.
type Suppression struct {
	ID        uuid.UUID `json:"id"`
	Kind      string    `json:"kind"` // email | domain
	Value     string    `json:"value"`
	Reason    string    `json:"reason"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}
