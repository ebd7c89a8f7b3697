package ingest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/ingest"
)

const plainMsg = "From: Ann <ann@northwind.example>\r\nTo: ada@acme.example.com\r\nSubject: Hello\r\nMessage-ID: <m1@northwind.example>\r\n\r\nThanks, let's talk.\r\n"

func TestParseRawAsItArrives(t *testing.T) {
	t.Parallel()
	lf := strings.ReplaceAll(plainMsg, "\r\n", "\n")
	cr := strings.ReplaceAll(plainMsg, "\r\n", "\r")
	mbox := "From ann@northwind.example  Tue Nov 24 09:12:01 2026\n"
	for name, raw := range map[string]string{
		"crlf":            plainMsg,
		"lf":              lf,
		"cr":              cr,
		"mbox lf":         mbox + lf,
		"mbox crlf":       strings.TrimSuffix(mbox, "\n") + "\r\n" + plainMsg,
		"mbox cr":         strings.TrimSuffix(mbox, "\n") + "\r" + cr,
		"blank lines":     "\r\n\n  \r\n" + plainMsg,
		"mbox then blank": mbox + "\n" + lf,
		"mixed endings":   strings.Replace(lf, "\n", "\r\n", 2),
	} {
		m, err := ingest.ParseRaw([]byte(raw), time.Time{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if m.From != "ann@northwind.example" || m.Subject != "Hello" || m.MessageID != "m1@northwind.example" || strings.TrimSpace(m.BodyText) != "Thanks, let's talk." {
			t.Errorf("%s: from %q subject %q id %q body %q", name, m.From, m.Subject, m.MessageID, m.BodyText)
		}
	}
	// The envelope line alone is not a message.
	if _, err := ingest.ParseRaw([]byte(mbox), time.Time{}); err == nil {
		t.Error("an mbox line alone parsed")
	}
}

func TestNormalizeRaw(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"a\r\nb", "a\r\nb"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\rb\r", "a\r\nb\r\n"},
		{"a\r\n\rb", "a\r\n\r\nb"},
		{"\n\nFrom x\nA: b\n", "A: b\r\n"},
		{"From x\rA: b", "A: b"},
		{"From: x\n", "From: x\r\n"}, // a header, not an envelope line
		{"From : x\n", "From : x\r\n"},
		{"From x", ""},
	} {
		if got := string(ingest.NormalizeRaw([]byte(c.in))); got != c.want {
			t.Errorf("NormalizeRaw(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAddrSpec(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ann@northwind.example":             "ann@northwind.example",
		"<ann@northwind.example>":           "ann@northwind.example",
		"mailto:ann@northwind.example":      "ann@northwind.example",
		"<mailto:ann@northwind.example>":    "ann@northwind.example",
		"MAILTO:ann@northwind.example?x=1":  "ann@northwind.example",
		"|/usr/bin/procmail -f-":            "",
		"\"|/usr/local/bin/ticket\"":        "",
		"/var/mail/ann":                     "",
		"@northwind.example":                "",
		"ann@":                              "",
		"ann":                               "",
		"ann@northwind":                     "",
		"ann@localhost":                     "ann@localhost",
		"":                                  "",
		"two words@northwind.example":       "",
		"first.last+tag@sub.northwind.test": "first.last+tag@sub.northwind.test",
	} {
		if got := ingest.AddrSpec(in); got != want {
			t.Errorf("AddrSpec(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOriginalIDFromAnyEnclosure(t *testing.T) {
	t.Parallel()
	head := "From: MAILER-DAEMON@mx.northwind.example\r\nTo: ada@acme.example.com\r\nSubject: Undeliverable: Quick question\r\nMessage-ID: <b1@mx.northwind.example>\r\n"
	rfc822 := head + "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nDelivery has failed to these recipients or groups:\r\n\r\nann@northwind.example\r\nThe e-mail address you entered couldn't be found. 550 5.1.1\r\n\r\n--zz\r\nContent-Type: message/rfc822\r\n\r\nFrom: ada@acme.example.com\r\nTo: Ann <ann@northwind.example>\r\nMessage-ID: <orig-1@acme.example.com>\r\nSubject: Quick question\r\n\r\nHi\r\n--zz--\r\n"
	headers := strings.Replace(rfc822, "message/rfc822", "text/rfc822-headers", 1)
	pasted := head + "\r\nThe following address failed:\r\n\r\n  ann@northwind.example\r\n  550 5.1.1 user unknown\r\n\r\n----- Original message -----\r\n> From: ada@acme.example.com\r\n> Message-ID: orig-1@acme.example.com\r\n> Subject: Quick question\r\n"
	for name, raw := range map[string]string{"rfc822": rfc822, "rfc822-headers": headers, "pasted": pasted} {
		m, err := ingest.ParseRaw([]byte(raw), ref)
		if err != nil {
			t.Fatal(err)
		}
		c := ingest.Classify(m)
		if c.Intent != ingest.Bounce || c.OriginalMessageID != "orig-1@acme.example.com" || c.Recipient != "ann@northwind.example" {
			t.Errorf("%s: %+v", name, c)
		}
	}
}

func TestBouncedRecipientValidated(t *testing.T) {
	t.Parallel()
	dsn := func(final, orig string) string {
		return "From: MAILER-DAEMON@mx.acme.example.com\r\nTo: ada@acme.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: " + final + "\r\n" + orig + "Action: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: ann@northwind.example\r\nMessage-ID: <o@acme.example.com>\r\n\r\n--b--\r\n"
	}
	for _, c := range []struct{ final, orig, want string }{
		{"rfc822; ann@northwind.example", "", "ann@northwind.example"},
		{"rfc822; mailto:ann@northwind.example", "", "ann@northwind.example"},
		{"rfc822; |/usr/bin/procmail", "Original-Recipient: rfc822; ann@northwind.example\r\n", "ann@northwind.example"},
		{"rfc822; @northwind.example", "", "ann@northwind.example"}, // the enclosed original's To
		{"x-local; ann", "", "ann@northwind.example"},
	} {
		m, err := ingest.ParseRaw([]byte(dsn(c.final, c.orig)), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := ingest.Classify(m).Recipient; got != c.want {
			t.Errorf("Final-Recipient %q: recipient %q, want %q", c.final, got, c.want)
		}
	}
	text := func(line string) string {
		return "From: MAILER-DAEMON@mail.acme.example.com\r\nTo: ada@acme.example.com\r\nSubject: failure notice\r\n\r\nI wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up.\r\n\r\n" + line + "\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
	}
	for line, want := range map[string]string{
		"<ann@northwind.example>:":        "ann@northwind.example",
		"<mailto:ann@northwind.example>:": "ann@northwind.example",
		"<|/usr/bin/vacation ann>:":       "",
		"<@northwind.example>:":           "",
	} {
		m, _ := ingest.ParseRaw([]byte(text(line)), ref)
		if got := ingest.Classify(m).Recipient; got != want {
			t.Errorf("%q: recipient %q, want %q", line, got, want)
		}
	}
}

// TestHugeSubject classifies a 1 MiB subject: it is capped before any
// pattern runs, so it costs what a subject at the cap costs. The two are
// timed in the same run (best of five each, alternating), so a busy machine
// or -race slows both alike; an uncapped scan would be hundreds of times
// slower than the capped one.
func TestHugeSubject(t *testing.T) {
	t.Parallel()
	subject := "Out of office until 3 December: " + strings.Repeat("quick question about your Q1 plans ", (1<<20)/35)
	raw := "From: ann@northwind.example\r\nSubject: " + subject + "\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n"
	m, err := ingest.ParseRaw([]byte(raw), ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Subject) > ingest.MaxSubject {
		t.Errorf("subject kept at %d bytes", len(m.Subject))
	}
	headers := map[string][]string{"Auto-Submitted": {"auto-replied"}}
	direct := &ingest.Message{Subject: subject, BodyText: "I am away.", ReceivedAt: ref, Headers: headers}
	atCap := &ingest.Message{Subject: subject[:ingest.MaxSubject], BodyText: "I am away.", ReceivedAt: ref, Headers: headers}
	best := map[string]time.Duration{}
	for range 5 {
		for name, msg := range map[string]*ingest.Message{"raw": m, "json": direct, "at cap": atCap} {
			start := time.Now()
			c := ingest.Classify(msg)
			d := time.Since(start)
			if old, ok := best[name]; !ok || d < old {
				best[name] = d
			}
			if c.Intent != ingest.OOO {
				t.Errorf("%s: intent %s", name, c.Intent)
			}
		}
	}
	t.Logf("best of five: %v", best)
	base := max(best["at cap"], time.Millisecond) // a floor, so timer granularity cannot fail it
	for _, name := range []string{"raw", "json"} {
		if best[name] > 8*base {
			t.Errorf("%s: 1 MiB subject classified in %v, %.1f× a subject at the cap (%v)", name, best[name], float64(best[name])/float64(base), best["at cap"])
		}
	}
	start := time.Now()
	if c := ingest.Complete(direct, ingest.OOO); c.Intent != ingest.OOO {
		t.Errorf("given intent: %s", c.Intent)
	}
	if d := time.Since(start); d > 8*max(base, best["json"]) {
		t.Errorf("given intent took %v", d)
	}
}

func BenchmarkHugeSubject(b *testing.B) {
	for name, subject := range map[string]string{
		"words": "Automatic reply: " + strings.Repeat("quick question about your Q1 plans ", (1<<20)/35),
		"dates": strings.Repeat("Automatic reply: out of office 3.12.2026 ", (1<<20)/41), // worst case: every word a cue or a date
	} {
		m := &ingest.Message{Subject: subject, BodyText: "I am away.", ReceivedAt: ref}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ingest.Classify(m)
			}
		})
	}
}

func TestUnsubscribeBeforeAutoSubmitted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		subject, body string
		want          ingest.Intent
	}{
		{"Unsubscribe", "", ingest.Unsubscribe},
		{"Automatic reply: Quick question", "Please remove me from your mailing list.", ingest.Unsubscribe},
		{"Automatic reply: Quick question", "I am out of the office until 3 December. To opt out of our newsletter, click here.", ingest.OOO},
		{"Automatic reply: Quick question", "Your ticket #4411 was received.", ingest.AutoReply},
	} {
		m := &ingest.Message{Subject: c.subject, BodyText: c.body, ReceivedAt: ref, Headers: map[string][]string{"Auto-Submitted": {"auto-generated"}}}
		if got := ingest.Classify(m).Intent; got != c.want {
			t.Errorf("%q / %q: %s, want %s", c.subject, c.body, got, c.want)
		}
	}
}

func TestReturnDateOrderAndRanges(t *testing.T) {
	t.Parallel()
	at := func(s string) ingest.Date { d, _ := ingest.ParseDate(s); return d }
	for _, c := range []struct{ text, want string }{
		// numeric order: language, a day > 12 elsewhere, spelling, named dates
		{"I am on annual leave until 05/12/2026.", "2026-12-05"},                  // British signal
		{"I'm out until 05/12/2027. Call my cell: (555) 010-2233.", "2027-05-12"}, // American signal
		{"I am out from 24/11/2026 and back 05/12/2026.", "2026-12-05"},           // a day > 12 settles it
		{"I am out from 11/24/2026 and back 12/05/2026.", "2026-12-05"},           // month-first, said by 11/24
		{"I am out of the office until 12/4/2026.", "2026-12-04"},                 // English default: month-first
		{"I am out from 12/13/2026, back 01/04/2027.", "2027-01-04"},              // 13 in second place: month-first
		{"I am out 13/12/2026, back 12/01/2027.", "2027-01-12"},                   // 13 in first place: day-first
		{"I am out 12/12/2026 and back 01/12/2027.", "2027-01-12"},                // 12 settles nothing: month-first
		{"Ich bin bis 12/01/2027 im Urlaub.", "2027-01-12"},                       // German: day-first at 12
		{"Out on 30 November, back in the office 05/12/2026.", "2026-12-05"},      // named dates day-first
		{"Ich bin bis 05/12/2026 nicht im Büro.", "2026-12-05"},                   // German: day-first
		{"Je suis absent jusqu'au 05/12/2026.", "2026-12-05"},                     // French
		{"Estoy fuera de la oficina hasta el 05/12/2026.", "2026-12-05"},          // Spanish
		{"Ik ben afwezig tot 05/12/2026.", "2026-12-05"},                          // Dutch
		{"Jag är frånvarande till 05/12/2026.", "2026-12-05"},                     // Swedish
		{"Estou fora do escritório até 05/12/2026.", "2026-12-05"},                // Portuguese
		{"I am away December 10-31.", "2026-12-31"},                               // range: its end
		{"I am away December 10 – 31, 2026.", "2026-12-31"},                       // en dash, year
		{"I am away December 10 through 31.", "2027-01-01"},                       // through: the day after
		{"Ich bin vom 10.-31. Dezember im Urlaub.", "2026-12-31"},                 // German range
		{"I am away from 10 to 31 December.", "2026-12-31"},                       // from … to
		{"Je suis absent du 10 au 31 décembre.", "2026-12-31"},                    // French range
		{"Estaré de vacaciones del 10 al 31 de diciembre.", "2026-12-31"},         // Spanish range
		{"Ik ben afwezig van 10 t/m 31 december.", "2027-01-01"},                  // Dutch inclusive
		{"Jag är ledig 10 till och med 31 december.", "2027-01-01"},               // Swedish inclusive
		{"Away December 10-31, back in the office on 4 January.", "2027-01-04"},   // a stated return wins
		{"I am away November 26-30 and December 1-2.", "2026-12-02"},              // the later range
		{"Out December 1-32.", ""},                                                // no such day
		{"Meeting 9 to 5 Monday, out of office until 3 December.", "2026-12-03"},  // not a range
	} {
		got, ok := ingest.ReturnDate(c.text, ref)
		if c.want == "" {
			if ok {
				t.Errorf("%q: %s, want none", c.text, got)
			}
			continue
		}
		if !ok || got != at(c.want) {
			t.Errorf("%q: %s (%v), want %s", c.text, got, ok, c.want)
		}
	}
	// Content-Language settles English numbers when the text does not.
	for lang, want := range map[string]string{"en-GB": "2026-12-05", "en-US": "2027-05-12", "": "2027-05-12"} {
		m := &ingest.Message{Subject: "Automatic reply", BodyText: "I am out of the office until 05/12/2027.", ReceivedAt: ref,
			Headers: map[string][]string{"Auto-Submitted": {"auto-replied"}, "Content-Language": {lang}}}
		if lang == "en-GB" {
			m.BodyText = "I am out of the office until 05/12/2026."
		}
		c := ingest.Classify(m)
		if !c.HasReturnDate || c.ReturnDate.String() != want {
			t.Errorf("Content-Language %q: %s, want %s", lang, c.ReturnDate, want)
		}
	}
}

func TestNonARFComplaints(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, from, subject, body string
		headers                   map[string][]string
		want                      ingest.Intent
		rcpt                      string
	}{
		{"jmrp header", "staff@hotmail.com", "complaint about message from 203.0.113.20", "A user marked the message as junk.", map[string][]string{"X-Hmxmroriginalrecipient": {"<ann@hotmail.com>"}}, ingest.Complaint, "ann@hotmail.com"},
		{"jmrp pasted", "staff@hotmail.com", "FW: Quick question", "X-HmXmrOriginalRecipient: ann@outlook.com\nSubject: Quick question", nil, ingest.Complaint, "ann@outlook.com"},
		{"ses complaint", "no-reply@sns.amazonaws.com", "AWS Notification Message", `{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"ann@northwind.example"}]},"mail":{"commonHeaders":{"messageId":"<o@acme.example.com>"}}}`, nil, ingest.Complaint, "ann@northwind.example"},
		{"ses bounce is not a complaint", "no-reply@sns.amazonaws.com", "AWS Notification Message", `{"notificationType":"Delivery","mail":{}}`, nil, ingest.Reply, ""},
		{"icloud opt-out", "noreply@icloud.com", "A recipient has opted out of mail from acme.example.com", "Recipient: ann@icloud.com", nil, ingest.Complaint, "ann@icloud.com"},
		{"a person at hotmail", "ann@hotmail.com", "Re: Quick question", "Please don't worry, I haven't reported it as spam. Let's talk Tuesday.", nil, ingest.Reply, ""},
		{"a person at yahoo asking to stop", "ann@yahoo.com", "Re: Quick question", "Please remove me from your list.", nil, ingest.Unsubscribe, ""},
	} {
		m := &ingest.Message{From: c.from, Subject: c.subject, BodyText: c.body, Headers: c.headers, ReceivedAt: ref}
		got := ingest.Classify(m)
		if got.Intent != c.want || got.Recipient != c.rcpt {
			t.Errorf("%s: %s %q, want %s %q", c.name, got.Intent, got.Recipient, c.want, c.rcpt)
		}
		if c.name == "ses complaint" && got.OriginalMessageID != "o@acme.example.com" {
			t.Errorf("%s: original id %q", c.name, got.OriginalMessageID)
		}
	}
}

func TestComplaintNoticeNeedsAFeedbackSender(t *testing.T) {
	t.Parallel()
	// Outlook.com stamps every delivered message: a bridged reply carries it.
	m := &ingest.Message{From: "ann@northwind.example", Subject: "Re: Quick question", BodyText: "Sounds good, call me Tuesday.", ReceivedAt: ref,
		Headers: map[string][]string{"X-Hmxmroriginalrecipient": {"ada@outlook.com"}}}
	if got := ingest.Classify(m).Intent; got != ingest.Reply {
		t.Errorf("bridged reply: %s", got)
	}
	// An auto-reply whose footer offers an unsubscribe link is not a request.
	m = &ingest.Message{From: "help@northwind.example", Subject: "[Ticket #4411] Re: Quick question", BodyText: "We received your request.\n\nTo unsubscribe from these notifications, click here: https://help.northwind.example/u", ReceivedAt: ref,
		Headers: map[string][]string{"Auto-Submitted": {"auto-replied"}}}
	if got := ingest.Classify(m).Intent; got != ingest.AutoReply {
		t.Errorf("footer link: %s", got)
	}
}

func TestPostfixTextRecipient(t *testing.T) {
	t.Parallel()
	raw := "From: MAILER-DAEMON@mail.acme.example.com\r\nTo: ada@acme.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n<|/usr/bin/procmail>: permission denied\r\n<ann@northwind.example>: host mx.northwind.example said: 550 5.1.1 User unknown\r\n"
	m, _ := ingest.ParseRaw([]byte(raw), ref)
	if got := ingest.Classify(m).Recipient; got != "ann@northwind.example" {
		t.Errorf("recipient %q", got)
	}
}
