package dispatch

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop"
)

// MaxReferences is how many ids the References header keeps (the newest).
const MaxReferences = 20

// ErrHeaderInjection means a header value carried a line break or NUL; the
// message is never built, so no header or recipient can be smuggled in.
var ErrHeaderInjection = errors.New("dispatch: header value contains CR, LF or NUL")

// Message is an outgoing e-mail. Build renders it as RFC 5322 bytes with
// CRLF line endings, encoded-word headers and quoted-printable bodies.
type Message struct {
	MessageID  string // with angle brackets
	FromName   string
	FromAddr   string
	To         string
	Subject    string
	Date       time.Time
	InReplyTo  string   // with angle brackets, or ""
	References []string // oldest first; trimmed to the newest MaxReferences
	Text       string
	HTML       string // optional: multipart/alternative when set

	// ListUnsubscribeURL and ListUnsubscribeMailto produce List-Unsubscribe
	// (and List-Unsubscribe-Post for one-click, RFC 8058) when set, as
	// ListUnsubscribe (the version's setting) allows: see
	// listUnsubscribeHeaders.
	ListUnsubscribeURL    string
	ListUnsubscribeMailto string
	ListUnsubscribe       string // one_click ("" too), mailto or off
}

// listUnsubscribeHeaders is the List-Unsubscribe rule: one_click (or "")
// lists the https URL and the mailto: address that are set, with
// List-Unsubscribe-Post when there is a URL; mailto lists only the mailto:
// address, without List-Unsubscribe-Post; off writes neither header.
// Empty results mean the header is not written (docs/sending.md has why a
// version would turn them off).
func listUnsubscribeHeaders(mode, url, mailto string) (unsubscribe, post string) {
	switch mode {
	case dripdrop.ListUnsubscribeOff:
		return "", ""
	case dripdrop.ListUnsubscribeMailto:
		url = ""
	}
	var parts []string
	if url != "" {
		parts = append(parts, "<"+url+">")
		post = "List-Unsubscribe=One-Click"
	}
	if mailto != "" {
		parts = append(parts, "<mailto:"+mailto+">")
	}
	return strings.Join(parts, ", "), post
}

// Domain returns the domain of an address ("" when there is none).
func Domain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

func clean(v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return ErrHeaderInjection
	}
	return nil
}

// Build renders the message.
func (m *Message) Build() ([]byte, error) {
	for _, v := range []string{m.MessageID, m.FromName, m.FromAddr, m.To, m.Subject, m.InReplyTo, m.ListUnsubscribeURL, m.ListUnsubscribeMailto} {
		if err := clean(v); err != nil {
			return nil, err
		}
	}
	refs := m.References
	if len(refs) > MaxReferences {
		refs = refs[len(refs)-MaxReferences:]
	}
	for _, r := range refs {
		if err := clean(r); err != nil || strings.ContainsAny(r, " \t") {
			return nil, ErrHeaderInjection
		}
	}
	if _, err := mail.ParseAddress(m.To); err != nil {
		return nil, fmt.Errorf("dispatch: invalid recipient: %w", err)
	}
	if _, err := mail.ParseAddress(m.FromAddr); err != nil {
		return nil, fmt.Errorf("dispatch: invalid sender: %w", err)
	}
	var b bytes.Buffer
	h := func(name, value string) { writeHeader(&b, name, value) }
	from := (&mail.Address{Name: m.FromName, Address: m.FromAddr}).String()
	h("From", from)
	h("To", (&mail.Address{Address: m.To}).String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", m.Date.Format(time.RFC1123Z))
	h("Message-ID", m.MessageID)
	if m.InReplyTo != "" {
		h("In-Reply-To", m.InReplyTo)
	}
	if len(refs) > 0 {
		h("References", strings.Join(refs, " "))
	}
	if unsub, post := listUnsubscribeHeaders(m.ListUnsubscribe, m.ListUnsubscribeURL, m.ListUnsubscribeMailto); unsub != "" {
		h("List-Unsubscribe", unsub)
		if post != "" {
			h("List-Unsubscribe-Post", post)
		}
	}
	h("MIME-Version", "1.0")
	if m.HTML == "" {
		h("Content-Type", `text/plain; charset="utf-8"`)
		h("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ ctype, text string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		ph := textproto.MIMEHeader{}
		ph.Set("Content-Type", part.ctype+`; charset="utf-8"`)
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		w, err := mw.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if err := writeQP(w, part.text); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// writeQP writes text quoted-printable with CRLF line breaks: lines stay
// under 77 octets and no bare CR or LF reaches the wire.
func writeQP(w interface{ Write([]byte) (int, error) }, text string) error {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(text)); err != nil {
		return err
	}
	if err := qp.Close(); err != nil {
		return err
	}
	_, err := w.Write([]byte("\r\n"))
	return err
}

// writeHeader writes "Name: value" folded at spaces so no line exceeds 78
// octets where a fold is possible (and never 998).
func writeHeader(b *bytes.Buffer, name, value string) {
	line := name + ":"
	words := strings.Split(value, " ")
	for i, w := range words {
		sep := " "
		if i > 0 && len(line)+1+len(w) > 78 {
			b.WriteString(line)
			b.WriteString("\r\n")
			line = ""
		}
		line += sep + w
	}
	b.WriteString(line)
	b.WriteString("\r\n")
}
