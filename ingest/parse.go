package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // ISO-8859-x, Windows-125x, KOI8, Shift-JIS, … bodies and headers
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// ErrTooLarge is returned for raw messages above MaxRawSize.
var ErrTooLarge = errors.New("ingest: message larger than 10 MiB")

// ErrMalformed is returned when the input is not a readable message.
var ErrMalformed = errors.New("ingest: not a readable RFC 5322 message")

// wordDecoder decodes RFC 2047 encoded words in any charset go-message knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: message.CharsetReader}

// ParseRaw reads a raw RFC 5322 message (with MIME: charsets, transfer
// encodings, nested multiparts, DSN and ARF reports). Bodies are read up to
// MaxTextRead; the rest of a part is skipped. received is used when the
// message has no readable Date header.
func ParseRaw(raw []byte, received time.Time) (*Message, error) {
	if len(raw) > MaxRawSize {
		return nil, ErrTooLarge
	}
	raw = NormalizeRaw(raw)
	e, err := message.ReadWithOptions(bytes.NewReader(raw), &message.ReadOptions{MaxHeaderBytes: MaxRawSize}) // a huge header is read, then capped
	if e == nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	h := mail.Header{Header: e.Header}
	m := &Message{Headers: map[string][]string{}, ReceivedAt: received}
	fields := e.Header.Fields()
	if fields.Len() == 0 {
		return nil, fmt.Errorf("%w: no header fields", ErrMalformed)
	}
	for fields.Next() {
		k := canonicalKey(fields.Key())
		if len(m.Headers[k]) < 50 {
			m.Headers[k] = append(m.Headers[k], truncate(decodeWords(fields.Value()), 4096))
		}
	}
	if id, err := h.MessageID(); err == nil && id != "" {
		m.MessageID = NormalizeID(id)
	} else {
		m.MessageID = NormalizeID(e.Header.Get("Message-Id"))
	}
	if m.MessageID == "" {
		// A stable id from the bytes, so a repeat is still a duplicate.
		sum := sha256.Sum256(raw)
		m.MessageID = "sha256-" + hex.EncodeToString(sum[:16]) + "@dripdrop.invalid"
	}
	if ids := SplitIDs(e.Header.Get("In-Reply-To")); len(ids) > 0 {
		m.InReplyTo = ids[0]
	}
	m.References = SplitIDs(e.Header.Get("References"))
	m.ProviderMessageID = NormalizeID(e.Header.Get("X-Provider-Message-Id"))
	if s, err := h.Subject(); err == nil {
		m.Subject = s
	} else {
		m.Subject = decodeWords(e.Header.Get("Subject"))
	}
	m.Subject = strings.ToValidUTF8(truncate(m.Subject, MaxSubject), "\uFFFD")
	m.From = firstAddress(h, "From")
	m.To = firstAddress(h, "To")
	if d, err := h.Date(); err == nil && !d.IsZero() && received.IsZero() {
		m.ReceivedAt = d
	}
	w := walker{m: m}
	w.visit(e, 0)
	m.BodyText = strings.ToValidUTF8(w.text.String(), "\uFFFD")
	m.BodyHTML = strings.ToValidUTF8(w.html.String(), "\uFFFD")
	m.EnclosedMessageID = w.enclosedID
	m.EnclosedRecipient = w.enclosedTo
	if w.jmrpTo != "" {
		m.EnclosedRecipient, m.EnclosedJMRP = w.jmrpTo, true
	}
	if w.reportType != "" || w.report != nil {
		if w.report == nil {
			w.report = &Report{}
		}
		if w.report.Type == "" {
			w.report.Type = w.reportType
		}
		if w.report.OriginalMessageID == "" {
			w.report.OriginalMessageID = w.enclosedID
		}
		fillRecipients(w.report, m)
		m.Report = w.report
	}
	return m, nil
}

func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(d, "\uFFFD")
}

func firstAddress(h mail.Header, key string) string {
	if l, err := h.AddressList(key); err == nil && len(l) > 0 {
		return l[0].Address
	}
	v := h.Get(key)
	if i, j := strings.IndexByte(v, '<'), strings.LastIndexByte(v, '>'); i >= 0 && j > i {
		return strings.TrimSpace(v[i+1 : j])
	}
	return strings.TrimSpace(v)
}

// walker visits the MIME tree once, collecting the first text and HTML
// bodies outside enclosed messages and any report parts.
type walker struct {
	m          *Message
	parts      int
	text, html strings.Builder
	reportType string
	report     *Report
	enclosedID string
	enclosedTo string
	jmrpTo     string
}

func (w *walker) visit(e *message.Entity, depth int) {
	w.parts++
	if w.parts > maxParts || depth > maxDepth {
		return
	}
	mt, params, _ := e.Header.ContentType()
	if mt == "" {
		mt = "text/plain"
	}
	if mr := e.MultipartReader(); mr != nil {
		if mt == "multipart/report" && depth == 0 {
			w.reportType = strings.ToLower(params["report-type"])
		}
		for {
			p, err := mr.NextPart()
			if p == nil || (err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err)) {
				return
			}
			w.visit(p, depth+1)
			if w.parts > maxParts {
				return
			}
		}
	}
	disp, _, _ := e.Header.ContentDisposition()
	switch {
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		w.readDSN(e.Body)
	case mt == "message/feedback-report":
		w.readARF(e.Body)
	case mt == "message/rfc822" || mt == "message/global" || mt == "text/rfc822-headers" || mt == "message/rfc822-headers":
		w.readEnclosed(e.Body)
	case mt == "text/plain" && disp != "attachment":
		if w.text.Len() == 0 {
			b, _ := io.ReadAll(io.LimitReader(e.Body, MaxTextRead))
			w.text.Write(b)
		}
	case mt == "text/html" && disp != "attachment":
		if w.html.Len() == 0 {
			b, _ := io.ReadAll(io.LimitReader(e.Body, MaxTextRead))
			w.html.Write(b)
		}
	}
}

// readEnclosed reads the headers of an enclosed (bounced or reported)
// message for its Message-ID.
func (w *walker) readEnclosed(r io.Reader) {
	br := bufio.NewReader(io.LimitReader(r, 1<<20))
	h, err := textproto.ReadHeader(br)
	if err != nil && h.Len() == 0 {
		return
	}
	if v := h.Get("X-Hmxmroriginalrecipient"); v != "" && w.jmrpTo == "" {
		// Hotmail/Outlook JMRP marks the complaining recipient in the
		// reported original (complaint.go).
		w.jmrpTo = AddrSpec(v)
	}
	if w.enclosedID == "" {
		if ids := SplitIDs(h.Get("Message-Id")); len(ids) > 0 {
			w.enclosedID = ids[0]
			// The original's single recipient: the bounced or reported
			// address when a report does not name it.
			if to := strings.Split(h.Get("To"), ","); len(to) == 1 {
				w.enclosedTo = AddrSpec(to[0])
			}
		}
	}
}

// fieldBlocks splits a report body into header blocks separated by blank
// lines, unfolding continuation lines.
func fieldBlocks(r io.Reader) []map[string]string {
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	var blocks []map[string]string
	cur := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				blocks = append(blocks, cur)
				cur = map[string]string{}
			}
			last = ""
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && last != "" {
			cur[last] += " " + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = strings.ToLower(strings.TrimSpace(k))
		if _, dup := cur[last]; !dup {
			cur[last] = strings.TrimSpace(v)
		}
		if len(blocks) > 200 {
			break
		}
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	return blocks
}

// typedValue strips an RFC 3464 address or diagnostic type ("rfc822;").
func typedValue(v string) string {
	if _, rest, ok := strings.Cut(v, ";"); ok {
		return strings.TrimSpace(rest)
	}
	return strings.TrimSpace(v)
}

func (w *walker) readDSN(r io.Reader) {
	if w.report == nil {
		w.report = &Report{Type: "delivery-status"}
	}
	w.report.Type = "delivery-status"
	for _, b := range fieldBlocks(r) {
		rcpt := AddrSpec(typedValue(b["final-recipient"]))
		if rcpt == "" {
			rcpt = AddrSpec(typedValue(b["original-recipient"]))
		}
		if rcpt == "" && b["status"] == "" && b["action"] == "" {
			continue // the per-message block
		}
		status := b["status"]
		if f := strings.Fields(status); len(f) > 0 {
			status = f[0]
		}
		w.report.Recipients = append(w.report.Recipients, RecipientStatus{
			Recipient:      rcpt,
			Action:         strings.ToLower(strings.Fields(b["action"] + " x")[0]),
			Status:         status,
			DiagnosticCode: truncate(b["diagnostic-code"], 1000),
		})
	}
}

func (w *walker) readARF(r io.Reader) {
	if w.report == nil {
		w.report = &Report{}
	}
	w.report.Type = "feedback-report"
	for _, b := range fieldBlocks(r) {
		if v := b["feedback-type"]; v != "" && w.report.FeedbackType == "" {
			w.report.FeedbackType = strings.ToLower(v)
		}
		if v := b["original-rcpt-to"]; v != "" && w.report.OriginalRecipient == "" {
			w.report.OriginalRecipient = AddrSpec(typedValue(v))
		}
	}
}
