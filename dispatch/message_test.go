package dispatch

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
)

func baseMessage() Message {
	return Message{
		MessageID: dripdrop.NewMessageID("ada@acme.example.com"), FromName: "Ada Lovelace", FromAddr: "ada@acme.example.com",
		To: "bob@example.com", Subject: "Quick question", Date: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Text: "Hi Bob,\n\nline two\n.starts with a dot\n",
	}
}

func parse(t *testing.T, raw []byte) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("unparseable message: %v\n%s", err, raw)
	}
	return m
}

func TestBuildHeadersAndBody(t *testing.T) {
	t.Parallel()
	m := baseMessage()
	m.InReplyTo = "<prev@acme.example.com>"
	m.References = []string{"<first@acme.example.com>", "<prev@acme.example.com>"}
	m.ListUnsubscribeURL = "https://dd.example.com/u/tok"
	m.ListUnsubscribeMailto = "unsub@acme.example.com"
	raw, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(raw), "\r\n") {
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i, line)
		}
		if len(line) > 998 {
			t.Fatalf("line %d longer than 998 octets", i)
		}
	}
	pm := parse(t, raw)
	h := pm.Header
	want := map[string]string{
		"Message-Id": m.MessageID, "In-Reply-To": "<prev@acme.example.com>", "References": "<first@acme.example.com> <prev@acme.example.com>",
		"Subject": "Quick question", "Mime-Version": "1.0", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Unsubscribe": "<https://dd.example.com/u/tok>, <mailto:unsub@acme.example.com>",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Address != "ada@acme.example.com" || from[0].Name != "Ada Lovelace" {
		t.Errorf("From = %v", from)
	}
	if d, err := h.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("Date = %v, %v", d, err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(pm.Body))
	if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != m.Text+"\n" {
		t.Errorf("body = %q", got)
	}
}

func TestBuildEncodesNonASCIIAndFoldsLongHeaders(t *testing.T) {
	t.Parallel()
	m := baseMessage()
	m.Subject = "Grüße aus Köln — " + strings.Repeat("sehr lange Betreffzeile ", 20)
	m.FromName = "Zoë Ünal"
	for i := 0; i < 30; i++ {
		m.References = append(m.References, fmt.Sprintf("<%02d-0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b@acme.example.com>", i))
	}
	raw, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("unfolded line of %d octets", len(line))
		}
		for _, c := range []byte(line) {
			if c >= 0x80 {
				t.Fatalf("raw 8-bit byte in %q", line)
			}
		}
	}
	h := parse(t, raw).Header
	dec := new(mime.WordDecoder)
	subj, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || subj != m.Subject {
		t.Fatalf("subject round trip: %q, %v", subj, err)
	}
	refs := strings.Fields(h.Get("References"))
	if len(refs) != MaxReferences || refs[0] != m.References[10] || refs[19] != m.References[29] {
		t.Fatalf("References kept %d ids (%v…), want the newest %d", len(refs), refs[:1], MaxReferences)
	}
}

func TestBuildRejectsHeaderInjection(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Message){
		"subject CRLF":   func(m *Message) { m.Subject = "Hi\r\nBcc: victim@example.com" },
		"subject LF":     func(m *Message) { m.Subject = "Hi\nBcc: victim@example.com" },
		"from name":      func(m *Message) { m.FromName = "Ada\r\nBcc: x@y.com" },
		"to":             func(m *Message) { m.To = "bob@example.com\r\nBcc: x@y.com" },
		"nul":            func(m *Message) { m.Subject = "a\x00b" },
		"in-reply-to":    func(m *Message) { m.InReplyTo = "<a@b>\r\nX-Evil: 1" },
		"reference":      func(m *Message) { m.References = []string{"<a@b> <c@d>\nX: y"} },
		"two recipients": func(m *Message) { m.To = "bob@example.com, eve@example.com" },
	} {
		m := baseMessage()
		mutate(&m)
		if raw, err := m.Build(); err == nil {
			t.Errorf("%s: built %q", name, raw)
		}
	}
	// Contact data that merely looks like headers stays in the body.
	m := baseMessage()
	m.Text = "Hello\r\nBcc: victim@example.com\r\n.\r\nQUIT\r\n"
	raw, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	pm := parse(t, raw)
	if pm.Header.Get("Bcc") != "" {
		t.Fatal("body text became a header")
	}
}

func TestBuildMultipartAlternative(t *testing.T) {
	t.Parallel()
	m := baseMessage()
	m.HTML = "<p>Hi <b>Bob</b></p>"
	raw, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	pm := parse(t, raw)
	mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, p.Header.Get("Content-Type"))
		b, _ := io.ReadAll(bufio.NewReader(p))
		if len(b) == 0 {
			t.Fatal("empty part")
		}
	}
	if len(types) != 2 || !strings.HasPrefix(types[0], "text/plain") || !strings.HasPrefix(types[1], "text/html") {
		t.Fatalf("parts %v", types)
	}
}

func FuzzBuildMessage(f *testing.F) {
	f.Add("Subject", "Ada", "Body\n.\nline", "<a@b>")
	f.Add("Grüße\r\nBcc: x@y", "Zoë", "\r\n.\r\n", "")
	f.Add("", "", "", "<x@y> <z@w>")
	f.Fuzz(func(t *testing.T, subject, name, body, irt string) {
		m := baseMessage()
		m.Subject, m.FromName, m.Text, m.InReplyTo = subject, name, body, irt
		raw, err := m.Build()
		if err != nil {
			return
		}
		pm, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("built an unparseable message: %v", err)
		}
		if to, err := pm.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != m.To {
			t.Fatalf("recipients changed: %v %v", to, err)
		}
		if pm.Header.Get("Bcc") != "" || pm.Header.Get("Cc") != "" {
			t.Fatal("a Bcc/Cc header appeared")
		}
		if bytes.Contains(raw, []byte("\n")) && bytes.Count(raw, []byte("\n")) != bytes.Count(raw, []byte("\r\n")) {
			t.Fatal("bare LF on the wire")
		}
	})
}

// TestBuildListUnsubscribeSettings: the headers each version setting
// writes, with and without a one-click URL (no public base URL configured).
func TestBuildListUnsubscribeSettings(t *testing.T) {
	t.Parallel()
	const url, mailto = "https://dd.example.com/u/tok", "ada@acme.example.com?subject=unsubscribe"
	both := "<" + url + ">, <mailto:" + mailto + ">"
	for _, c := range []struct {
		mode, url   string
		unsub, post string // "" = the header is absent
	}{
		{mode: "one_click", url: url, unsub: both, post: "List-Unsubscribe=One-Click"},
		{mode: "", url: url, unsub: both, post: "List-Unsubscribe=One-Click"},
		{mode: "one_click", url: "", unsub: "<mailto:" + mailto + ">"},
		{mode: "mailto", url: url, unsub: "<mailto:" + mailto + ">"},
		{mode: "mailto", url: "", unsub: "<mailto:" + mailto + ">"},
		{mode: "off", url: url},
		{mode: "off", url: ""},
	} {
		m := baseMessage()
		m.ListUnsubscribe, m.ListUnsubscribeURL, m.ListUnsubscribeMailto = c.mode, c.url, mailto
		raw, err := m.Build()
		if err != nil {
			t.Fatal(err)
		}
		h := parse(t, raw).Header
		name := c.mode + " url=" + c.url
		for header, want := range map[string]string{"List-Unsubscribe": c.unsub, "List-Unsubscribe-Post": c.post} {
			got, present := h[header]
			switch {
			case want == "" && present:
				t.Errorf("%s: %s present (%q), want absent", name, header, got)
			case want != "" && (len(got) != 1 || got[0] != want):
				t.Errorf("%s: %s = %q, want exactly %q", name, header, got, want)
			}
		}
		if !strings.Contains(string(raw), "\r\n\r\n"+"Hi Bob,") {
			t.Errorf("%s: body changed", name)
		}
	}
}

func TestListUnsubscribeHeadersRule(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ mode, url, mailto, unsub, post string }{
		{"one_click", "https://x/u/t", "a@x", "<https://x/u/t>, <mailto:a@x>", "List-Unsubscribe=One-Click"},
		{"", "https://x/u/t", "", "<https://x/u/t>", "List-Unsubscribe=One-Click"},
		{"one_click", "", "a@x", "<mailto:a@x>", ""},
		{"one_click", "", "", "", ""},
		{"mailto", "https://x/u/t", "a@x", "<mailto:a@x>", ""},
		{"mailto", "https://x/u/t", "", "", ""},
		{"off", "https://x/u/t", "a@x", "", ""},
	} {
		unsub, post := listUnsubscribeHeaders(c.mode, c.url, c.mailto)
		if unsub != c.unsub || post != c.post {
			t.Errorf("listUnsubscribeHeaders(%q, %q, %q) = %q, %q; want %q, %q", c.mode, c.url, c.mailto, unsub, post, c.unsub, c.post)
		}
	}
}
