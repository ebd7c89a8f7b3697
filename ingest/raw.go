package ingest

import (
	"bytes"
	"net/mail"
	"regexp"
	"strings"
)

// NormalizeRaw makes raw mail as it arrives readable as RFC 5322
// (docs/ingest.md#raw-input): a leading mbox "From " envelope line (procmail,
// a Postfix pipe with the F flag, mbox exports) and leading blank lines are
// dropped, and LF-only or CR-only line endings become CRLF. A message that
// already uses CRLF throughout is returned as it is.
func NormalizeRaw(raw []byte) []byte {
	for {
		switch {
		case bytes.HasPrefix(raw, []byte("\r\n")):
			raw = raw[2:]
		case len(raw) > 0 && (raw[0] == '\n' || raw[0] == '\r' || raw[0] == ' ' && onlySpaceLine(raw)):
			raw = raw[1:]
		case bytes.HasPrefix(raw, []byte("From ")) && !obsFromHeader(raw):
			// The envelope line ends at the first line break of any kind.
			i := bytes.IndexAny(raw, "\r\n")
			if i < 0 {
				return nil
			}
			raw = raw[i:]
			if bytes.HasPrefix(raw, []byte("\r\n")) {
				raw = raw[2:]
			} else {
				raw = raw[1:]
			}
			continue
		default:
			return crlf(raw)
		}
	}
}

// obsFromHeader reports whether raw starts with a From header written
// with blanks before its colon ("From : a@b", obsolete RFC 5322 syntax),
// which is not an mbox envelope line.
func obsFromHeader(raw []byte) bool {
	rest := bytes.TrimLeft(raw[4:], " \t")
	return len(rest) > 0 && rest[0] == ':'
}

// onlySpaceLine reports whether the first line of b holds only blanks.
func onlySpaceLine(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t':
		case '\r', '\n':
			return true
		default:
			return false
		}
	}
	return true
}

// crlf rewrites every line break (CRLF, a lone LF or a lone CR) as CRLF.
func crlf(raw []byte) []byte {
	lone := false
	for i, c := range raw {
		if c == '\n' && (i == 0 || raw[i-1] != '\r') || c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			lone = true
			break
		}
	}
	if !lone {
		return raw
	}
	out := make([]byte, 0, len(raw)+len(raw)/32)
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// AddrSpec returns the addr-spec (local@domain) of an address as a report
// or a bounce names it, or "" when it is not one: a "mailto:" prefix and
// angle brackets are removed; a pipe command ("|/usr/bin/procmail"), a
// file, a bare "@host", an address without a local part or domain, or
// anything net/mail cannot read is refused.
func AddrSpec(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 512 {
		return ""
	}
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = strings.TrimSpace(s[7:])
	}
	s = strings.Trim(s, "<>\"' \t;,.")
	if len(s) >= 7 && strings.EqualFold(s[:7], "mailto:") {
		s = strings.TrimSpace(s[7:])
	}
	if i := strings.IndexByte(s, '?'); i >= 0 { // mailto:a@b?subject=…
		s = s[:i]
	}
	if s == "" || s[0] == '|' || s[0] == '/' || s[0] == '@' || strings.ContainsAny(s, " \t|") {
		return ""
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || !strings.Contains(s[at+1:], ".") && !strings.EqualFold(s[at+1:], "localhost") {
		return ""
	}
	a, err := mail.ParseAddress("<" + s + ">")
	if err != nil || a.Address == "" {
		return ""
	}
	return a.Address
}

// fillRecipients gives each DSN recipient block without a usable address
// the one the message names elsewhere: X-Failed-Recipients, or the single
// To of the enclosed original.
func fillRecipients(r *Report, m *Message) {
	if r.Type == "feedback-report" && r.OriginalRecipient == "" {
		r.OriginalRecipient = m.EnclosedRecipient
	}
	fallback := ""
	for _, v := range strings.Split(m.Header("X-Failed-Recipients"), ",") {
		if fallback = AddrSpec(v); fallback != "" {
			break
		}
	}
	if fallback == "" {
		fallback = m.EnclosedRecipient
	}
	if fallback == "" {
		return
	}
	for i := range r.Recipients {
		if r.Recipients[i].Recipient == "" {
			r.Recipients[i].Recipient = fallback
		}
	}
}

// pastedID finds a Message-ID in the text copy of an original message:
// "Message-ID:" lines, also quoted ("> Message-ID: …") or without angle
// brackets, below a copy marker or an "----- Original message -----"
// block. The message's own id is skipped.
var pastedID = regexp.MustCompile(`(?im)^[ \t>]*message-id[ \t]*:[ \t]*<?([^<>\s]{1,900}@[^<>\s]{1,255}?)>?[ \t\r]*$`)

// originalMessageID is the Message-ID of the original a bounce or
// complaint encloses: a message/rfc822 or text/rfc822-headers part in any
// multipart, else a pasted copy of its headers in the text.
func originalMessageID(m *Message) string {
	if m.Report != nil && m.Report.OriginalMessageID != "" {
		return m.Report.OriginalMessageID
	}
	if m.EnclosedMessageID != "" && m.EnclosedMessageID != m.MessageID {
		return m.EnclosedMessageID
	}
	text := truncate(m.BodyText, MaxTextRead)
	if strings.TrimSpace(text) == "" && m.BodyHTML != "" {
		text = HTMLToText(m.BodyHTML)
	}
	for _, mm := range pastedID.FindAllStringSubmatch(text, 5) {
		if id := NormalizeID(mm[1]); id != m.MessageID {
			return id
		}
	}
	return ""
}
