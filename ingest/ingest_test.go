package ingest_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/ingest"
)

var ref = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC) // a Wednesday

func TestReturnDate(t *testing.T) {
	t.Parallel()
	cases := []struct{ text, want string }{
		{"I am out of the office until 3 December.", "2026-12-03"},
		{"back on December 3rd, 2026", "2026-12-03"},
		{"I will be out through 12/4/2026", "2026-12-05"}, // English slash: month first; inclusive
		{"away 24/11/2026 to 02/12/2026", "2026-12-02"},   // a day above 12 makes the text day-first
		{"Ich bin bis zum 3. Dezember nicht im Büro", "2026-12-03"},
		{"Ich bin bis einschließlich 15.01.2027 in Elternzeit", "2027-01-16"},
		{"ab dem 1.12. wieder erreichbar", "2026-12-01"},
		{"Je suis absent jusqu'au 3 décembre inclus", "2026-12-04"},
		{"de retour le 1er décembre", "2026-12-01"},
		{"Estoy fuera hasta el 3 de diciembre de 2026", "2026-12-03"},
		{"Estou fora até 5 de dez. de 2026", "2026-12-05"},
		{"Ik ben afwezig t/m 3 december", "2026-12-04"},
		{"Jag är ledig till och med den 4 december", "2026-12-05"},
		{"Jag är tillbaka 9/12.", "2026-12-09"},
		{"Out until 2026-12-10.", "2026-12-10"},
		{"back on 25 November", "2026-11-25"}, // the day received
		{"back on 24 November", ""},           // yesterday: stale
		{"back on 5 January", "2027-01-05"},   // no year, next January
		{"until 31 November", ""},             // no such day
		{"back on 2027-11-26", ""},            // more than a year out
		{"back at 10.30 tomorrow", ""},        // a time, not a date
		{"out from 26 November to 3 December", "2026-12-03"},
		{"I'm out until Nov 30. Back Dec 1.", "2026-12-01"},
		{"no date here", ""},
	}
	for _, c := range cases {
		d, ok := ingest.ReturnDate(c.text, ref)
		got := ""
		if ok {
			got = d.String()
		}
		if got != c.want {
			t.Errorf("%q: got %q, want %q", c.text, got, c.want)
		}
	}
}

func TestReturnAt(t *testing.T) {
	t.Parallel()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC) // already 26 Nov in Berlin
	cases := []struct {
		d    string
		loc  *time.Location
		want time.Time
	}{
		{"2026-12-03", berlin, time.Date(2026, 12, 3, 9, 0, 0, 0, berlin)},
		{"", berlin, time.Date(2026, 12, 3, 9, 0, 0, 0, berlin)},                // default: +7 days from the local day
		{"", time.UTC, time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)},            // the UTC day is still the 25th
		{"2026-12-25", time.UTC, time.Date(2026, 12, 25, 9, 0, 0, 0, time.UTC)}, // 29 days 10.5 h: within 30 days
		{"2026-12-26", time.UTC, now.AddDate(0, 0, 30)},                         // beyond 30 days: capped
		{"2027-03-01", time.UTC, now.AddDate(0, 0, 30)},
	}
	for _, c := range cases {
		d, ok := ingest.ParseDate(c.d)
		if got := ingest.ReturnAt(d, ok, c.loc, now); !got.Equal(c.want) {
			t.Errorf("%q in %v: got %v, want %v", c.d, c.loc, got, c.want)
		}
	}
}

func TestSplitIDs(t *testing.T) {
	t.Parallel()
	got := ingest.SplitIDs(" <a@x>\r\n\t<b@y>,<c@z> d@w (comment) <e@v")
	want := []string{"a@x", "b@y", "c@z", "d@w", "e@v"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	m := &ingest.Message{InReplyTo: "a", References: []string{"r1", "r2", "a"}, ProviderMessageID: "p"}
	m.Report = &ingest.Report{OriginalMessageID: "o"}
	var order []string
	for _, c := range m.Candidates() {
		order = append(order, c.ID+":"+string(c.Via))
	}
	if strings.Join(order, " ") != "a:in_reply_to r2:references r1:references p:provider_message_id o:dsn" {
		t.Fatalf("candidates %v", order)
	}
}

func TestStripQuoted(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"Yes!\n\nOn Tue, Nov 24, 2026 at 10:00 AM Ada <ada@x> wrote:\n> I am out of the office", "Yes!"},
		{"Ja.\n\nAm Di., 24. Nov. 2026 um 10:00 Uhr schrieb Ada <\nada@x>:\n> Hallo", "Ja."},
		{"Oui.\nLe mar. 24 nov. 2026 à 10:00, Ada <ada@x> a écrit :\n> Bonjour", "Oui."},
		{"Sí.\n\nEl mar, 24 nov 2026 a las 10:00, Ada (<ada@x>)\nescribió:\n> Hola", "Sí."},
		{"Ok\n\n-----Ursprüngliche Nachricht-----\nVon: Ada", "Ok"},
		{"Ok\n\nFrån: Ada <ada@x>\nSkickat: den 24 november 2026\nTill: Erik", "Ok"},
		{"Ok\n________________________________\nFrom: Ada", "Ok"},
		{"line one\n> quoted\nline two", "line one\nline two"},
	}
	for _, c := range cases {
		if got := ingest.StripQuoted(c.in); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
	if got := ingest.HTMLToText(`<div>New <b>text</b></div><blockquote>I am out of the office</blockquote><div class="gmail_quote">old</div><script>x</script>`); got != "New text" {
		t.Errorf("HTMLToText: %q", got)
	}
}

// TestClassifySignals covers each classification rule at its edge.
func TestClassifySignals(t *testing.T) {
	t.Parallel()
	msg := func(subject, body string, headers map[string][]string) *ingest.Message {
		return &ingest.Message{Subject: subject, BodyText: body, From: "x@client.example", Headers: ingest.CanonicalHeaders(headers), ReceivedAt: ref}
	}
	cases := []struct {
		m    *ingest.Message
		want ingest.Intent
	}{
		{msg("Re: hi", "Sounds good", nil), ingest.Reply},
		{msg("Re: hi", "I was out of the office until today, let's talk.", nil), ingest.Reply}, // a human's words
		{msg("Re: hi", "I am out of the office until 3 December.", map[string][]string{"auto-submitted": {"auto-replied"}}), ingest.OOO},
		{msg("Re: hi", "I am out of the office.", map[string][]string{"Auto-Submitted": {"no"}}), ingest.Reply},
		{msg("Re: hi", "Ticket 42 received.", map[string][]string{"X-Autoreply": {"yes"}}), ingest.AutoReply},
		{msg("Re: hi", "Ticket 42 received.", map[string][]string{"Precedence": {"bulk"}}), ingest.AutoReply},
		{msg("Re: hi", "Ticket 42 received.", map[string][]string{"Precedence": {"list"}}), ingest.Reply},
		{msg("Out of Office: hi", "I will reply later.", nil), ingest.OOO},
		{msg("Re: Out of office policy", "Please send it.", nil), ingest.Reply},
		{msg("Re: hi", "Please remove me from your list.", nil), ingest.Unsubscribe},
		{msg("Re: hi", "Thanks!\n\nOn Tue, Ada wrote:\n> To unsubscribe click here", nil), ingest.Reply},
		{msg("Re: hi", "see below", map[string][]string{"Content-Type": {"multipart/report; report-type=delivery-status; boundary=x"}}), ingest.Bounce},
		{msg("Re: hi", "see below", map[string][]string{"Content-Type": {`multipart/report; report-type="feedback-report"`}}), ingest.Complaint},
	}
	for i, c := range cases {
		if got := ingest.Classify(c.m); got.Intent != c.want {
			t.Errorf("case %d (%q): %s (%s), want %s", i, c.m.Subject, got.Intent, got.Signal, c.want)
		}
	}
	// Given intents are completed from the message.
	c := ingest.Complete(msg("Re: hi", "550 5.1.1 user unknown", nil), ingest.Bounce)
	if c.Intent != ingest.Bounce || c.Bounce != "hard" || c.Status != "5.1.1" {
		t.Fatalf("completed bounce: %+v", c)
	}
	c = ingest.Complete(msg("Re: hi", "back on 3 December", nil), ingest.OOO)
	if !c.HasReturnDate || c.ReturnDate.String() != "2026-12-03" {
		t.Fatalf("completed ooo: %+v", c)
	}
}

func TestParseRawCharsets(t *testing.T) {
	t.Parallel()
	raw := "From: =?iso-8859-1?q?J=FCrgen?= <j@x.example>\r\nSubject: =?utf-8?b?QWJ3ZXNlbmhlaXRzbm90aXo=?=\r\nMessage-ID: <m1@x.example>\r\nIn-Reply-To: <a@acme>\r\nReferences: <r@acme>\r\n <a@acme>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe =80\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+SGk8L2I+\r\n--b--\r\n"
	m, err := ingest.ParseRaw([]byte(raw), ref)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Abwesenheitsnotiz" || m.From != "j@x.example" || m.MessageID != "m1@x.example" || m.InReplyTo != "a@acme" ||
		!reflect.DeepEqual(m.References, []string{"r@acme", "a@acme"}) || strings.TrimSpace(m.BodyText) != "Grüße €" || m.BodyHTML != "<b>Hi</b>" {
		t.Fatalf("parsed %+v", m)
	}
	// No Message-ID: a stable one from the bytes.
	a, _ := ingest.ParseRaw([]byte("From: a@b\r\n\r\nhi"), ref)
	b, _ := ingest.ParseRaw([]byte("From: a@b\r\n\r\nhi"), ref)
	if a.MessageID == "" || a.MessageID != b.MessageID {
		t.Fatalf("synthesized ids %q %q", a.MessageID, b.MessageID)
	}
	if _, err := ingest.ParseRaw(make([]byte, ingest.MaxRawSize+1), ref); err != ingest.ErrTooLarge {
		t.Fatalf("oversized: %v", err)
	}
}
