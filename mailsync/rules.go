package mailsync

import (
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/ingest"
)

// The pure half of mailbox sync: which messages are read whole, where a
// folder's sync starts, how long to wait after a failure. No I/O; time comes
// from the caller. See docs/ingest.md#mailbox-sync.

const (
	// DefaultInterval is the time between two syncs of one mailbox.
	DefaultInterval = 60 * time.Second
	// MinInterval and MaxInterval bound the configurable interval.
	MinInterval = 10 * time.Second
	MaxInterval = 24 * time.Hour
	// Jitter spreads syncs: each wait is the interval ±10 %.
	Jitter = 0.10
	// BackfillWindow is read on a folder's first sync.
	BackfillWindow = 14 * 24 * time.Hour
	// ResyncWindow is read again when a folder's UIDVALIDITY changes.
	ResyncWindow = 7 * 24 * time.Hour
	// MaxBackoff caps the wait after repeated failures.
	MaxBackoff = 30 * time.Minute
	// MaxMessageSize is the largest message read whole (the ingest limit).
	MaxMessageSize = ingest.MaxRawSize
)

// Envelope is what the first, minimal fetch reads of a message: its
// envelope headers and the type of its body (from BODYSTRUCTURE). Nothing
// else of a message is read unless Candidate says so.
type Envelope struct {
	UID        uint32
	Size       uint32
	MessageID  string   // normalized, no angle brackets
	InReplyTo  []string // normalized ids
	References []string // normalized ids
	From       string   // addr-spec, lower case
	Sender     string   // addr-spec of Sender/Return-Path when different, lower case
	Subject    string
	// AutoSubmitted reports RFC 3834 Auto-Submitted other than "no", or one
	// of the de-facto auto-reply headers (X-Autoreply, X-Autorespond,
	// Precedence: auto_reply|bulk|junk, X-Auto-Response-Suppress is NOT one).
	AutoSubmitted bool
	// MIMEType and ReportType are the top-level body type ("multipart/report")
	// and its report-type parameter ("delivery-status", "feedback-report").
	MIMEType, ReportType string
}

// Reason says why a message is read whole.
type Reason string

const (
	ReasonReply         Reason = "reply"          // names one of the adapter's Message-IDs
	ReasonReport        Reason = "report"         // a DSN or ARF report
	ReasonMailerDaemon  Reason = "mailer_daemon"  // sent by a mailer-daemon or postmaster
	ReasonAutoSubmitted Reason = "auto_submitted" // an automatic reply from an enrolled contact
)

// Lookups answer Candidate's two questions about the tenant's data.
type Lookups struct {
	// Ours reports whether id is the Message-ID of a message this adapter
	// sent.
	Ours func(id string) bool
	// Enrolled reports whether addr is the address of one of the tenant's
	// enrolled contacts.
	Enrolled func(addr string) bool
}

// Candidate decides whether a message is read whole and handed to ingest,
// and why. Everything else is only counted: never downloaded whole, never
// stored.
func Candidate(e Envelope, l Lookups) (Reason, bool) {
	if l.Ours != nil {
		for _, id := range e.InReplyTo {
			if id != "" && l.Ours(id) {
				return ReasonReply, true
			}
		}
		for i := len(e.References) - 1; i >= 0; i-- {
			if id := e.References[i]; id != "" && l.Ours(id) {
				return ReasonReply, true
			}
		}
	}
	if strings.EqualFold(e.MIMEType, "multipart/report") {
		switch strings.ToLower(e.ReportType) {
		case "delivery-status", "feedback-report", "disposition-notification":
			return ReasonReport, true
		}
	}
	if daemon(e.From) || daemon(e.Sender) {
		return ReasonMailerDaemon, true
	}
	if (e.AutoSubmitted || ingest.AutoReplySubject(e.Subject)) && e.From != "" && l.Enrolled != nil && l.Enrolled(e.From) {
		return ReasonAutoSubmitted, true
	}
	return "", false
}

// daemon reports a mailer-daemon or postmaster address.
func daemon(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	switch local {
	case "mailer-daemon", "mailer_daemon", "mail-daemon", "postmaster", "mailerdaemon":
		return true
	}
	return false
}

// Cursor is where a folder's sync stands (see dripdrop.FolderCursor).
type Cursor = dripdrop.FolderCursor

// Status is what STATUS/EXAMINE report of a folder now.
type Status struct {
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64 // 0 without CONDSTORE
	Messages      uint32
}

// Action is what a folder's sync does.
type Action int

const (
	// Idle: nothing new; nothing is fetched and nothing is written.
	Idle Action = iota
	// FetchNew: read the envelopes of UIDs above the cursor's LastUID.
	FetchNew
	// Backfill: first sync of the folder; read messages received since
	// Plan.Since (14 days).
	Backfill
	// Resync: UIDVALIDITY changed, the old UIDs mean nothing; read messages
	// received since Plan.Since (7 days) again.
	Resync
)

func (a Action) String() string {
	return [...]string{"idle", "fetch_new", "backfill", "resync"}[a]
}

// FolderPlan is the decision for one folder.
type FolderPlan struct {
	Action  Action
	FromUID uint32    // FetchNew: first UID to read
	Since   time.Time // Backfill/Resync: INTERNALDATE lower bound (SEARCH SINCE)
}

// PlanFolder decides a folder's sync from its stored cursor (nil before
// its first sync) and its status now.
func PlanFolder(cur *Cursor, st Status, now time.Time) FolderPlan {
	switch {
	case cur == nil || cur.UIDValidity == 0:
		return FolderPlan{Action: Backfill, Since: now.Add(-BackfillWindow)}
	case st.UIDValidity != cur.UIDValidity:
		return FolderPlan{Action: Resync, Since: now.Add(-ResyncWindow)}
	case st.UIDNext != 0 && st.UIDNext <= cur.LastUID+1:
		// UIDNEXT did not move: nothing arrived (a CONDSTORE modseq change
		// alone is a flag change, which mailbox sync does not read).
		return FolderPlan{Action: Idle}
	case st.UIDNext == 0 && st.Messages == 0:
		return FolderPlan{Action: Idle}
	default:
		return FolderPlan{Action: FetchNew, FromUID: cur.LastUID + 1}
	}
}

// Advance returns the cursor after a folder's sync read every UID up to
// maxUID under st (an idle plan keeps the cursor as it is).
func Advance(cur *Cursor, st Status, plan FolderPlan, maxUID uint32) Cursor {
	next := Cursor{UIDValidity: st.UIDValidity, HighestModSeq: st.HighestModSeq}
	if cur != nil && plan.Action != Backfill && plan.Action != Resync {
		next.LastUID = cur.LastUID
	}
	if maxUID > next.LastUID {
		next.LastUID = maxUID
	}
	// Everything below UIDNEXT has been considered.
	if st.UIDNext > 1 && st.UIDNext-1 > next.LastUID {
		next.LastUID = st.UIDNext - 1
	}
	return next
}

// NextSync is when a mailbox is synced next after a success: the interval
// ±10 % jitter, r in [0, 1) from the caller.
func NextSync(now time.Time, interval time.Duration, r float64) time.Time {
	if interval <= 0 {
		interval = DefaultInterval
	}
	f := 1 - Jitter + 2*Jitter*r
	return now.Add(time.Duration(float64(interval) * f))
}

// Backoff is the wait after the n-th consecutive failure (n ≥ 1): the
// interval doubled per failure — a throttling reply starts one step higher
// — capped at 30 minutes.
func Backoff(interval time.Duration, failures int, throttled bool) time.Duration {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if failures < 1 {
		failures = 1
	}
	steps := failures - 1
	if throttled {
		steps++
	}
	d := interval
	for i := 0; i < steps && d < MaxBackoff; i++ {
		d *= 2
	}
	if d > MaxBackoff {
		d = MaxBackoff
	}
	return d
}

// Failure reasons, visible in GET /v1/adapters/{id}/sync.
const (
	ReasonThrottled  = "throttled"   // the provider asked us to slow down
	ReasonAuth       = "auth_failed" // login refused
	ReasonConnect    = "connection"  // dial, TLS or a dropped connection
	ReasonProtocol   = "protocol"    // a NO/BAD or an unreadable reply
	ReasonTimeout    = "timeout"
	ReasonTokenError = "token" // the OAuth2 token could not be obtained
	ReasonReconnect  = "reconnect_required"
	ReasonFolder     = "folder" // a configured folder does not exist
)

// throttleMarks are the words providers use when they throttle IMAP.
var throttleMarks = []string{
	"[throttled]", "too many simultaneous connections", "request is throttled", "[limit]",
	"[unavailable]", "too many connections", "rate limit", "try again later", "[overquota]",
}

// Classify says why a sync failed and whether the server throttled us,
// from the error (as go-imap and net report it).
func Classify(err error) (reason string, throttled bool) {
	if err == nil {
		return "", false
	}
	msg := strings.ToLower(err.Error())
	for _, m := range throttleMarks {
		if strings.Contains(msg, m) {
			return ReasonThrottled, true
		}
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout, false
	case strings.Contains(msg, "[authenticationfailed]"), strings.Contains(msg, "authentication failed"),
		strings.Contains(msg, "invalid credentials"), strings.Contains(msg, "[authorizationfailed]"),
		strings.Contains(msg, "login failed"), strings.Contains(msg, "authenticate failed"):
		return ReasonAuth, false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		strings.Contains(msg, "connection reset"), strings.Contains(msg, "broken pipe"),
		strings.Contains(msg, "connection refused"), strings.Contains(msg, "tls:"), strings.Contains(msg, "x509:"),
		strings.Contains(msg, "no such host"), strings.Contains(msg, "closed"), strings.Contains(msg, "dial"):
		return ReasonConnect, false
	case strings.Contains(msg, "[nonexistent]"), strings.Contains(msg, "mailbox doesn't exist"), strings.Contains(msg, "no such mailbox"):
		return ReasonFolder, false
	}
	return ReasonProtocol, false
}

// HeaderFields are the header fields the minimal fetch asks for beside the
// ENVELOPE (BODY.PEEK[HEADER.FIELDS (…)]).
var HeaderFields = []string{"References", "Auto-Submitted", "X-Autoreply", "X-Autorespond", "X-Autoresponder", "Precedence", "Return-Path"}

// maxHeaderBlock caps how much of a header block ReadHeaderFields reads.
const maxHeaderBlock = 64 << 10

// ReadHeaderFields fills e's References, AutoSubmitted and Sender from the
// header block the minimal fetch returned (folded lines, LF or CRLF; at most
// 64 KiB is read; anything unreadable is ignored).
func ReadHeaderFields(e *Envelope, block []byte) {
	if len(block) > maxHeaderBlock {
		block = block[:maxHeaderBlock]
	}
	var name, value string
	flush := func() {
		if name == "" {
			return
		}
		v := strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "references":
			for _, id := range ingest.SplitIDs(v) {
				if id = ingest.NormalizeID(id); id != "" && len(e.References) < 100 {
					e.References = append(e.References, id)
				}
			}
		case "auto-submitted":
			if lv := strings.ToLower(v); lv != "" && lv != "no" && !strings.HasPrefix(lv, "no;") && !strings.HasPrefix(lv, "no ") {
				e.AutoSubmitted = true
			}
		case "x-autoreply", "x-autorespond", "x-autoresponder":
			if v != "" {
				e.AutoSubmitted = true
			}
		case "precedence":
			switch strings.ToLower(v) {
			case "auto_reply", "bulk", "junk":
				e.AutoSubmitted = true
			}
		case "return-path":
			if a := strings.ToLower(ingest.AddrSpec(v)); a != "" && a != e.From {
				e.Sender = a
			}
		}
		name, value = "", ""
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(block), "\r\n", "\n"), "\n") {
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				value += " " + strings.TrimSpace(line)
			}
			continue
		}
		flush()
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name, value = strings.TrimSpace(k), v
	}
	flush()
}
