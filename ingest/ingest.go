// Package ingest is the pure half of dripdrop's inbound pipeline (docs/ingest.md):
// parsing raw mail (RFC 5322 / MIME with emersion/go-message), extracting
// the ids that correlate a message with what we sent, classifying it
// (bounce, complaint, ooo, auto_reply, unsubscribe, reply), stripping
// quoted history and reading an out-of-office return date. It does no I/O;
// the transactional effects live in package db.
package ingest

import (
	"strings"
	"time"
)

// Intent is what an inbound message means for the enrollment it answers.
type Intent string

// Intents (docs/ingest.md#what-each-intent-does).
const (
	Reply       Intent = "reply"
	OOO         Intent = "ooo"
	AutoReply   Intent = "auto_reply"
	Bounce      Intent = "bounce"
	Complaint   Intent = "complaint"
	Unsubscribe Intent = "unsubscribe"
)

// Intents lists every intent.
var Intents = []Intent{Reply, OOO, AutoReply, Bounce, Complaint, Unsubscribe}

// Valid reports whether i is a known intent.
func (i Intent) Valid() bool {
	for _, k := range Intents {
		if i == k {
			return true
		}
	}
	return false
}

// Limits on what is kept and read.
const (
	// MaxRawSize is the largest raw message accepted (10 MiB).
	MaxRawSize = 10 << 20
	// MaxTextRead is how much decoded text of a message classification reads.
	MaxTextRead = 256 << 10
	// MaxStoredBody is how much body text is stored with an inbound message.
	MaxStoredBody = 64 << 10
	// maxParts bounds how many MIME parts of one message are visited.
	maxParts = 200
	// maxDepth bounds MIME nesting.
	maxDepth = 8
	// MaxSubject is how much of a subject is kept (bytes).
	MaxSubject = 1 << 10
	// maxSubjectRead is how much of a subject classification reads: no
	// pattern ever runs over more, whatever the input (a 1 MiB subject is
	// classified in well under 5 ms).
	maxSubjectRead = 512
	// maxHeaderRead is how much of one header value classification reads.
	maxHeaderRead = 4 << 10
)

// Message is a normalized inbound message, whichever input it came from.
type Message struct {
	MessageID         string   // normalized (no angle brackets)
	InReplyTo         string   // normalized
	References        []string // normalized, in header order (oldest first)
	ProviderMessageID string   // X-Provider-Message-ID, normalized
	From              string
	To                string
	Subject           string
	BodyText          string
	BodyHTML          string
	Headers           map[string][]string // canonical MIME header keys
	ReceivedAt        time.Time
	// Report holds a parsed DSN (RFC 3464) or ARF (RFC 5965) report.
	Report *Report
	// EnclosedMessageID is the Message-ID of the first message enclosed
	// as message/rfc822 or text/rfc822-headers in any multipart (a
	// bounced or reported original), normalized; EnclosedRecipient is
	// that original's single To address, when it has one.
	EnclosedMessageID string
	EnclosedRecipient string
	// EnclosedJMRP says the enclosed original carries Hotmail/Outlook's
	// X-HmXmrOriginalRecipient complaint marker (EnclosedRecipient is then
	// the complaining address).
	EnclosedJMRP bool
}

// Header returns the first value of a header (case-insensitive name).
func (m *Message) Header(name string) string {
	if v := m.Headers[canonicalKey(name)]; len(v) > 0 {
		return strings.TrimSpace(truncate(v[0], maxHeaderRead))
	}
	return ""
}

// Report is a machine-readable delivery or feedback report.
type Report struct {
	// Type is "delivery-status" or "feedback-report".
	Type string
	// Recipients are the per-recipient fields of a DSN.
	Recipients []RecipientStatus
	// OriginalMessageID is the Message-ID of the message the report is
	// about (from the enclosed message or headers), normalized.
	OriginalMessageID string
	// FeedbackType is the ARF Feedback-Type (abuse, fraud, …).
	FeedbackType string
	// OriginalRecipient is the ARF Original-Rcpt-To.
	OriginalRecipient string
}

// RecipientStatus is one per-recipient block of a DSN.
type RecipientStatus struct {
	Recipient      string // Final-Recipient address (without the "rfc822;" type)
	Action         string // failed, delayed, delivered, relayed, expanded
	Status         string // enhanced status code, e.g. 5.1.1
	DiagnosticCode string // e.g. "smtp; 550 5.1.1 user unknown"
}

// NormalizeID trims an RFC 5322 message id and removes its angle brackets.
func NormalizeID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

// SplitIDs reads a References / In-Reply-To header value: ids in angle
// brackets separated by whitespace or commas (bare ids are accepted too).
func SplitIDs(s string) []string {
	var out []string
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t\r\n,")
		if s == "" {
			break
		}
		if s[0] == '<' {
			end := strings.IndexByte(s, '>')
			if end < 0 {
				end = len(s) - 1
			}
			if id := NormalizeID(s[:end+1]); id != "" {
				out = append(out, id)
			}
			s = s[end+1:]
			continue
		}
		end := strings.IndexAny(s, " \t\r\n,<")
		if end < 0 {
			end = len(s)
		}
		if end == 0 {
			s = s[1:]
			continue
		}
		if id := NormalizeID(s[:end]); id != "" && !strings.HasPrefix(id, "(") {
			out = append(out, id)
		}
		s = s[end:]
	}
	return out
}

// Correlation says how an inbound message was matched to a sent one.
type Correlation string

// Correlation results, in the order they are tried (docs/ingest.md#correlation).
const (
	ViaInReplyTo         Correlation = "in_reply_to"
	ViaReferences        Correlation = "references"
	ViaProviderMessageID Correlation = "provider_message_id"
	ViaReport            Correlation = "dsn"
	Unmatched            Correlation = "unmatched"
)

// Candidate is one id to look up, with how it was found.
type Candidate struct {
	ID  string
	Via Correlation
}

// Candidates lists the ids to look up, in this order: In-Reply-To, each
// References id newest-first, X-Provider-Message-ID, then the original
// Message-ID inside a bounce or complaint report. Duplicates are dropped.
func (m *Message) Candidates() []Candidate {
	var out []Candidate
	seen := map[string]bool{}
	add := func(id string, via Correlation) {
		id = NormalizeID(id)
		if id == "" || seen[id] || len(id) > 998 {
			return
		}
		seen[id] = true
		out = append(out, Candidate{id, via})
	}
	add(m.InReplyTo, ViaInReplyTo)
	for i := len(m.References) - 1; i >= 0; i-- {
		add(m.References[i], ViaReferences)
	}
	add(m.ProviderMessageID, ViaProviderMessageID)
	if m.Report != nil {
		add(m.Report.OriginalMessageID, ViaReport)
	}
	return out
}

// canonicalKey is the MIME canonical form of a header name.
func canonicalKey(name string) string {
	b := []byte(strings.ToLower(strings.TrimSpace(name)))
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

// CanonicalHeaders returns h with canonical keys, merging keys that differ
// only in case.
func CanonicalHeaders(h map[string][]string) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, v := range h {
		ck := canonicalKey(k)
		out[ck] = append(out[ck], v...)
	}
	return out
}

// truncate cuts s to at most n bytes on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Truncate cuts s to at most n bytes on a UTF-8 boundary.
func Truncate(s string, n int) string { return truncate(s, n) }
