package dripdrop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// IMAPSettings are an adapter's mailbox-sync settings: where the engine
// reads the sending mailbox for replies, out-of-office notes and bounces
// (docs/ingest.md#mailbox-sync). The login is the adapter's own: its
// credentials' username and password (or its OAuth2 token).
type IMAPSettings struct {
	// Preset fills host, port and TLS for a provider: "google"
	// (imap.gmail.com:993) or "microsoft" (outlook.office365.com:993).
	Preset string `json:"preset,omitempty"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	// TLS is "tls" (implicit TLS, the default), "starttls" or "none" (a
	// loopback or lab server only: the password crosses in clear).
	TLS string `json:"tls"`
	// Username overrides the login name; default the credentials'
	// username, else the from address.
	Username string `json:"username,omitempty"`
	// Folders to read; an entry starting with a backslash names a
	// special-use folder (`\Junk`), which is skipped when the server has
	// none. Default ["INBOX", "\\Junk"].
	Folders []string `json:"folders"`
	// IntervalSeconds between syncs (±10 % jitter); default 60, 10…86400.
	IntervalSeconds int `json:"interval_seconds"`
	// Enabled turns the sync on (default true).
	Enabled *bool `json:"enabled"`
	// TLSCAPEM, when set, is the only CA bundle the server certificate is
	// checked against (a private CA).
	TLSCAPEM string `json:"tls_ca_pem,omitempty"`
}

// DefaultIMAPFolders are read when an adapter names none.
var DefaultIMAPFolders = []string{"INBOX", `\Junk`}

// IMAP presets (host, port; implicit TLS).
var imapPresets = map[string]struct {
	host string
	port int
}{
	"google":    {"imap.gmail.com", 993},
	"microsoft": {"outlook.office365.com", 993},
}

// UnmarshalJSON rejects unknown keys, like the rest of the API.
func (s *IMAPSettings) UnmarshalJSON(b []byte) error {
	type plain IMAPSettings
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return Errorf(ECodeInvalidValue, "imap", "imap: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	*s = IMAPSettings(p)
	return nil
}

// Normalize validates the settings and fills the defaults.
func (s IMAPSettings) Normalize() (IMAPSettings, error) {
	out := s
	if s.Preset != "" {
		p, ok := imapPresets[s.Preset]
		if !ok {
			return out, Errorf(ECodeInvalidValue, "imap.preset", "imap.preset must be \"google\" or \"microsoft\"")
		}
		if out.Host == "" {
			out.Host = p.host
		}
		if out.Port == 0 {
			out.Port = p.port
		}
	}
	out.Host = strings.TrimSpace(strings.TrimSuffix(out.Host, "."))
	if out.Host == "" {
		return out, Errorf(ECodeRequired, "imap.host", "imap.host is required (or a preset)")
	}
	if len(out.Host) > 253 || strings.ContainsAny(out.Host, " /:@\t\r\n") && net.ParseIP(out.Host) == nil {
		return out, Errorf(ECodeInvalidValue, "imap.host", "imap.host must be a host name or IP address")
	}
	if out.TLS == "" {
		out.TLS = "tls"
	}
	switch out.TLS {
	case "tls", "starttls", "none":
	default:
		return out, Errorf(ECodeInvalidValue, "imap.tls", "imap.tls must be \"tls\", \"starttls\" or \"none\"")
	}
	if out.Port == 0 {
		out.Port = 993
		if out.TLS != "tls" {
			out.Port = 143
		}
	}
	if err := checkRange("imap.port", out.Port, 1, 65535); err != nil {
		return out, err
	}
	if out.IntervalSeconds == 0 {
		out.IntervalSeconds = 60
	}
	if err := checkRange("imap.interval_seconds", out.IntervalSeconds, 10, 86400); err != nil {
		return out, err
	}
	if len(out.Username) > 320 {
		return out, Errorf(ECodeInvalidValue, "imap.username", "imap.username is at most 320 characters")
	}
	if len(out.Folders) == 0 {
		out.Folders = append([]string(nil), DefaultIMAPFolders...)
	}
	out.Folders = append([]string(nil), out.Folders...)
	if len(out.Folders) > 20 {
		return out, Errorf(ECodeInvalidValue, "imap.folders", "imap.folders holds at most 20 folders")
	}
	seen := map[string]bool{}
	for i, f := range out.Folders {
		f = strings.TrimSpace(f)
		if f == "" || len(f) > 255 || !utf8.ValidString(f) || strings.ContainsAny(f, "\r\n\x00*%") {
			return out, Errorf(ECodeInvalidValue, "imap.folders", "imap.folders[%d] is not a folder name", i)
		}
		if strings.HasPrefix(f, `\`) {
			switch strings.ToLower(f) {
			case `\junk`, `\all`, `\archive`, `\flagged`, `\important`:
			default:
				return out, Errorf(ECodeInvalidValue, "imap.folders", "imap.folders[%d]: a special-use name must be \\Junk, \\All, \\Archive, \\Flagged or \\Important", i)
			}
		}
		if strings.EqualFold(f, "inbox") {
			f = "INBOX"
		}
		if seen[strings.ToLower(f)] {
			return out, Errorf(ECodeInvalidValue, "imap.folders", "imap.folders names %q twice", f)
		}
		seen[strings.ToLower(f)] = true
		out.Folders[i] = f
	}
	if out.Enabled == nil {
		t := true
		out.Enabled = &t
	}
	if len(out.TLSCAPEM) > 64<<10 {
		return out, Errorf(ECodeInvalidValue, "imap.tls_ca_pem", "imap.tls_ca_pem is at most 64 KiB")
	}
	return out, nil
}

// Addr is host:port.
func (s IMAPSettings) Addr() string { return net.JoinHostPort(s.Host, fmt.Sprint(s.Port)) }

// FolderCursor is where one folder's sync stands: the UIDVALIDITY it was
// read under, the highest UID considered, and HIGHESTMODSEQ when the
// server offers CONDSTORE (0 otherwise).
type FolderCursor struct {
	UIDValidity   uint32 `json:"uidvalidity"`
	LastUID       uint32 `json:"last_uid"`
	HighestModSeq uint64 `json:"highest_modseq,omitempty"`
}

// Mailbox sync states.
const (
	SyncPending   = "pending"   // never synced yet
	SyncOK        = "ok"        // the last sync succeeded
	SyncFailing   = "failing"   // the last sync failed; retried with backoff
	SyncThrottled = "throttled" // the provider throttled us; retried with backoff
	SyncDisabled  = "disabled"  // imap.enabled is false
)

// MailboxSync is the sync state of one adapter's mailbox
// (GET /v1/adapters/{id}/sync).
type MailboxSync struct {
	AdapterID       uuid.UUID     `json:"adapter_id"`
	State           string        `json:"state"`
	Enabled         bool          `json:"enabled"`
	IntervalSeconds int           `json:"interval_seconds"`
	NextSyncAt      time.Time     `json:"next_sync_at"`
	SyncRequestedAt *time.Time    `json:"sync_requested_at"`
	LastAttemptAt   *time.Time    `json:"last_attempt_at"`
	LastSuccessAt   *time.Time    `json:"last_success_at"`
	LastError       *SyncError    `json:"last_error"`
	Failures        int           `json:"consecutive_failures"`
	Folders         []FolderState `json:"folders"`
	Counts          SyncCounts    `json:"counts"`
}

// SyncError is the last failure of a mailbox sync.
type SyncError struct {
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// FolderState is one folder's cursor.
type FolderState struct {
	Name string `json:"name"`
	FolderCursor
}

// SyncCounts are running totals of a mailbox's syncs: messages whose
// envelope was read (fetched), read whole as candidates, applied by ingest
// (new inbound messages) and skipped (not candidates, or too large; never
// downloaded whole, never stored).
type SyncCounts struct {
	Fetched    int64 `json:"fetched"`
	Candidates int64 `json:"candidates"`
	Applied    int64 `json:"applied"`
	Skipped    int64 `json:"skipped"`
}
