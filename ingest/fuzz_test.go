package ingest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dripdrop/dripdrop/ingest"
)

// corpusSeeds adds every corpus message (and a few broken ones) as seeds.
func corpusSeeds(f *testing.F) []string {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	var out []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, string(b))
	}
	return append(out, "", "\r\n\r\n", "From: a@b\r\n\r\nhi", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x",
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.\r\n\r\n--b--",
		// raw mail as it arrives: an mbox envelope line, blank lines, CR-only and LF endings
		"From MAILER-DAEMON  Fri Nov 27 09:12:01 2026\nFrom: a@b\nSubject: x\n\nhi\n",
		"From \r\n\r\nFrom: a@b\r\n\r\nhi",
		"From x", "\n\n\r\rFrom: a@b\r\rhi\r", "From: a@b\rSubject: out of office\rAuto-Submitted: auto-replied\r\rback 05/12/2026\r",
		// originals attached as message/rfc822 or headers, or pasted
		"From: MAILER-DAEMON@x\r\nSubject: failure notice\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\n<|/bin/x>:\r\n550 5.1.1 unknown\r\n--z\r\nContent-Type: message/rfc822\r\n\r\nTo: a@b\r\nX-HmXmrOriginalRecipient: <mailto:a@b>\r\nMessage-ID: <o@b>\r\n\r\n--z--",
		"From: MAILER-DAEMON@x\r\nSubject: Undeliverable\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <\r\n--z--",
		"From: MAILER-DAEMON@x\r\nSubject: failure notice\r\n\r\n<@host>:\r\n----- Original message -----\r\n> Message-ID: o@b\r\n",
		"From: no-reply@sns.amazonaws.com\r\n\r\n{\"Type\":\"Notification\",\"Message\":\"{\\\"notificationType\\\":\\\"Complaint\\\"}\"}")
}

func FuzzParseRaw(f *testing.F) {
	for _, s := range corpusSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ingest.ParseRaw(raw, ref)
		if err != nil {
			return
		}
		if m.MessageID == "" || !utf8.ValidString(m.BodyText) || !utf8.ValidString(m.BodyHTML) || !utf8.ValidString(m.Subject) {
			t.Fatalf("parsed message breaks an invariant: id %q", m.MessageID)
		}
		c := ingest.Classify(m)
		if !c.Intent.Valid() || (c.Intent == ingest.Bounce) != (c.Bounce == "hard" || c.Bounce == "soft") {
			t.Fatalf("classification %+v", c)
		}
		for _, cand := range m.Candidates() {
			if cand.ID == "" || strings.HasPrefix(cand.ID, "<") {
				t.Fatalf("candidate %q", cand.ID)
			}
		}
	})
}

// FuzzNormalizeRaw checks that normalized input has only CRLF line
// breaks and no leading envelope line or blank line.
func FuzzNormalizeRaw(f *testing.F) {
	for _, s := range []string{"", "From x\nA: b\n", "\r\r\nA: b\rc", "From x", "A: b\r\n", " \t\nFrom y\r\n\nA: b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := ingest.NormalizeRaw(raw)
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') || c == '\r' && (i+1 == len(out) || out[i+1] != '\n') {
				t.Fatalf("%q: lone line break at %d in %q", raw, i, out)
			}
		}
		if len(out) > 0 && (out[0] == '\r' || strings.HasPrefix(string(out), "From ") && !strings.HasPrefix(strings.TrimLeft(string(out[4:]), " \t"), ":")) {
			t.Fatalf("%q: starts with %q", raw, out[:min(len(out), 8)])
		}
	})
}

func FuzzClassify(f *testing.F) {
	f.Add("Re: hi", "Yes!\n\nOn Tue, Ada wrote:\n> hello", "", "")
	f.Add("Automatic reply: hi", "I am out of the office until 3 December", "", "auto-replied")
	f.Add("Undeliverable: hi", "550 5.1.1 user unknown", "<p>x</p>", "")
	f.Add("", "", "<blockquote><div class=gmail_quote>unsubscribe</blockquote>", "no")
	f.Fuzz(func(t *testing.T, subject, body, html, auto string) {
		m := &ingest.Message{Subject: subject, BodyText: body, BodyHTML: html, ReceivedAt: ref,
			Headers: map[string][]string{"Auto-Submitted": {auto}}}
		c := ingest.Classify(m)
		if !c.Intent.Valid() {
			t.Fatalf("intent %q", c.Intent)
		}
		if c.Intent == ingest.OOO && c.HasReturnDate && c.ReturnDate.In(ref.Location(), 23).Before(ref) {
			t.Fatalf("return date %v before the message", c.ReturnDate)
		}
		_ = ingest.StripQuoted(body)
		_ = ingest.HTMLToText(html)
	})
}

func FuzzReturnDate(f *testing.F) {
	for _, s := range []string{"until 3 December", "bis 3.12.", "t/m 3 december 2026", "12/4/2026", "2026-12-01", "1er décembre", "3 de dez. de 2026", "31/31/31", "9.9.", "0/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		d, ok := ingest.ReturnDate(text, ref)
		if !ok {
			return
		}
		at := d.In(ref.Location(), 12)
		if at.Before(ref.Add(-24*60*60*1e9)) || at.After(ref.AddDate(1, 0, 2)) {
			t.Fatalf("%q: date %s out of range", text, d)
		}
	})
}

// pathological are 10 MiB inputs built to be slow: deep nesting, many
// parts, endless quote lines, digits that look like dates, nested HTML.
func pathological() map[string][]byte {
	const size = ingest.MaxRawSize - 1024
	fill := func(head, unit string) []byte {
		var b strings.Builder
		b.WriteString(head)
		for b.Len()+len(unit) < size {
			b.WriteString(unit)
		}
		return []byte(b.String())
	}
	nested := strings.Repeat("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n", 1)
	return map[string][]byte{
		"nested":    fill("From: a@b\r\nMessage-ID: <n@b>\r\n", nested),
		"parts":     fill("From: a@b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"),
		"quotes":    fill("From: a@b\r\nSubject: Re: x\r\n\r\n", "> > > On Tue wrote:\r\n"),
		"dates":     fill("From: a@b\r\nAuto-Submitted: auto-replied\r\nSubject: out of office\r\n\r\n", "1.1.1 12/12/12 3 december "),
		"html":      fill("From: a@b\r\nContent-Type: text/html\r\n\r\n", "<div><blockquote><p>"),
		"dsnfields": fill("From: a@b\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n", "Final-Recipient: rfc822; a@b\r\nStatus: 5.1.1\r\n\r\n"),
		"base64":    fill("From: a@b\r\nContent-Transfer-Encoding: base64\r\n\r\n", "QUJD\r\n"),
	}
}

// TestLargeInputs parses and classifies 10 MiB pathological messages: it
// must finish (the package reads bounded prefixes with linear-time
// regular expressions) and not panic. Timing is in BenchmarkLargeInputs.
func TestLargeInputs(t *testing.T) {
	t.Parallel()
	for name, raw := range pathological() {
		m, err := ingest.ParseRaw(raw, ref)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = ingest.Classify(m)
	}
}

func BenchmarkLargeInputs(b *testing.B) {
	inputs := pathological()
	for i := 0; i < b.N; i++ {
		for _, raw := range inputs {
			m, err := ingest.ParseRaw(raw, ref)
			if err == nil {
				ingest.Classify(m)
			}
		}
	}
}
