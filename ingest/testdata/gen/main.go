// Command gen writes the labelled classification corpus of package ingest
// (ingest/testdata/corpus): bounces in the formats of Postfix, Exim,
// Exchange/Outlook, Gmail, Yahoo and qmail, ARF complaints, out-of-office
// and auto-replies in seven languages, human replies (some quoting our mail
// or an out-of-office text) and unsubscribe requests, in plain, HTML-only,
// base64, quoted-printable and non-UTF-8 bodies. Every message is written
// by hand in a template below; the program only varies names, dates, codes
// and encodings, and records the expected label of each file.
//
//	go run ./ingest/testdata/gen
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

type label struct {
	file, intent, bounce, returnDate, origID string
	// rule is what the whose-failure rule says a DSN means (docs/ingest.md):
	// "recipient" (a hard bounce of the prospect), "soft" (the prospect's
	// address, temporarily), "sender" (a sender-side or policy failure: not
	// the prospect's), "none" (a success, relayed or delayed notice: not a
	// bounce); "-" when not a bounce report.
	rule string
	// recipient is the bounced or complaining address, when checked.
	recipient string
}

var (
	labels []label
	outDir = "ingest/testdata/corpus"
)

func write(name, intent, bounce, ret, orig, msg string) {
	name = fmt.Sprintf("%03d-%s.eml", len(labels)+1, name)
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
	if err := os.WriteFile(filepath.Join(outDir, name), []byte(msg), 0o644); err != nil {
		panic(err)
	}
	labels = append(labels, label{file: name, intent: intent, bounce: bounce, returnDate: ret, origID: orig, rule: nameRule(name, intent, bounce)})
}

// writeRaw writes bytes as they are (an mbox line, LF or CR endings).
func writeRaw(name string, l label, raw []byte) {
	l.file = fmt.Sprintf("%03d-%s.eml", len(labels)+1, name)
	if err := os.WriteFile(filepath.Join(outDir, l.file), raw, 0o644); err != nil {
		panic(err)
	}
	labels = append(labels, l)
}

// writeL writes a CRLF message with a full label.
func writeL(name string, l label, msg string) {
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, "\r\n", "\n"), "\n", "\r\n")
	writeRaw(name, l, []byte(msg))
}

// nameRule is the whose-failure label of a DSN written by its status
// ("postfix-5.7.1"), or "-".
func nameRule(name, intent, bounce string) string {
	if intent != "bounce" {
		return "-"
	}
	status := name[strings.LastIndexByte(name, '-')+1:]
	status = strings.TrimSuffix(status, ".eml")
	if len(status) < 5 || status[1] != '.' {
		return "-"
	}
	return ruleFor(status, bounce)
}

// ruleFor applies the whose-failure rule to a status: 2.x.x and 4.x.x
// delayed are not bounces; 5.1.x, 5.2.x (5.2.2 over quota is soft) and
// 5.5.x are the recipient's; 5.3.x, 5.4.x and 5.7.x the sender's.
func ruleFor(status, bounce string) string {
	switch {
	case strings.HasPrefix(status, "2."):
		return "none"
	case strings.HasPrefix(status, "4."):
		if bounce == "hard" {
			return "recipient"
		}
		return "none"
	case status == "5.2.2":
		return "soft"
	case strings.HasPrefix(status, "5.1.") || strings.HasPrefix(status, "5.2.") || strings.HasPrefix(status, "5.5."):
		return "recipient"
	case strings.HasPrefix(status, "5.3.") || strings.HasPrefix(status, "5.4.") || strings.HasPrefix(status, "5.7."):
		return "sender"
	}
	return "recipient"
}

// people and companies the corpus writes to.
var contacts = []struct{ first, last, email string }{
	{"Ann", "Baker", "ann.baker@northwind.example"},
	{"Jonas", "Müller", "j.mueller@bergbau-ag.example"},
	{"Camille", "Durand", "camille.durand@laposte-pro.example"},
	{"Lucía", "García", "lgarcia@hispamar.example"},
	{"João", "Silva", "joao.silva@brasiltec.example"},
	{"Sanne", "de Vries", "sanne@polderdata.example"},
	{"Erik", "Lindqvist", "erik.lindqvist@nordvik.example"},
	{"Priya", "Raman", "priya@fabrikam.example"},
	{"Tom", "Hughes", "tom.hughes@contoso.example"},
	{"Mia", "Schmidt", "mia.schmidt@kaufhaus.example"},
	{"Luc", "Bernard", "l.bernard@vinexport.example"},
	{"Diego", "Torres", "dtorres@andesmin.example"},
}

func contact(i int) (first, last, email, domain string) {
	c := contacts[i%len(contacts)]
	return c.first, c.last, c.email, c.email[strings.IndexByte(c.email, '@')+1:]
}

func origID(i int) string {
	return fmt.Sprintf("<0193b2c4-%04x-7d11-9c2e-5a1f3e%06x@acme.example.com>", i, i*7919%0xffffff)
}

func date(day, hour, min int) string {
	wd := []string{"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"}[(day-19+700)%7] // 19 Nov 2026 is a Thursday
	return fmt.Sprintf("%s, %d Nov 2026 %02d:%02d:%02d +0000", wd, day, hour, min, (day*7+min)%60)
}

func b64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.String()
}

func qp(s string) string {
	var buf bytes.Buffer
	w := quotedprintable.NewWriter(&buf)
	w.Write([]byte(s))
	w.Close()
	return buf.String()
}

func latin1(s string) string {
	out, err := charmap.ISO8859_1.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return out
}

func win1252(s string) string {
	out, err := charmap.Windows1252.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return out
}

func qEncode(s string) string { return mime.QEncoding.Encode("utf-8", s) }
func bEncode(s string) string { return mime.BEncoding.Encode("utf-8", s) }

// body encodes a text body in one of the transfer encodings / charsets.
func body(kind int, text string) (headers, encoded string) {
	switch kind % 5 {
	case 1:
		return "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64", b64(text)
	case 2:
		return "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable", qp(text)
	case 3:
		return "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable", qp(latin1(text))
	case 4:
		return "Content-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: 8bit", win1252(text)
	}
	return "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit", text
}

func main() {
	if len(os.Args) > 1 {
		outDir = os.Args[1]
	}
	old, _ := filepath.Glob(filepath.Join(outDir, "*.eml"))
	for _, f := range old {
		os.Remove(f)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		panic(err)
	}
	n := 0
	next := func() int { n++; return n }
	postfix(next)
	exim(next)
	exchange(next)
	gmail(next)
	yahoo(next)
	qmail(next)
	arf(next)
	ooo(next)
	autoReplies(next)
	humans(next)
	unsubscribes(next)
	enclosedBounces(next)
	complaints(next)
	notices(next)
	oooDates(next)
	asItArrives()

	var b strings.Builder
	b.WriteString("# file\tintent\tbounce\treturn_date\toriginal_message_id\trule\trecipient\n")
	b.WriteString("# intent is as detected (a delivery report is a bounce report); rule is what the whose-failure rule makes of it\n")
	for _, l := range labels {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.file, l.intent, dash(l.bounce), dash(l.returnDate), dash(strings.Trim(l.origID, "<>")), dash(l.rule), dash(l.recipient))
	}
	if err := os.WriteFile(filepath.Join(outDir, "labels.tsv"), []byte(b.String()), 0o644); err != nil {
		panic(err)
	}
	fmt.Printf("wrote %d messages to %s\n", len(labels), outDir)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---------------------------------------------------------------- bounces

var postfixCases = []struct {
	status, diag, action, bounce, subject, intro string
}{
	{"5.1.1", "smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
	{"5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
	{"5.2.1", "smtp; 550 5.2.1 <%s>: Mailbox disabled for this recipient", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
	{"5.4.4", "X-Postfix; Host or domain name not found. Name service error for name=%s type=MX: Host not found", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
	{"5.7.1", "smtp; 554 5.7.1 <%s>: Relay access denied", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
	{"5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed limit", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
	{"4.4.1", "X-Postfix; connect to mx.%s[192.0.2.25]:25: Connection timed out", "delayed", "soft", "Delayed Mail (still being retried)", "has not\nbeen delivered yet. The mail system will continue trying"},
	{"4.7.1", "smtp; 450 4.7.1 <%s>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/", "delayed", "soft", "Delayed Mail (still being retried)", "has not\nbeen delivered yet. The mail system will continue trying"},
	{"4.2.2", "smtp; 452 4.2.2 <%s>: Mailbox full", "delayed", "soft", "Delayed Mail (still being retried)", "has not\nbeen delivered yet. The mail system will continue trying"},
	{"5.2.2", "smtp; 552 5.2.2 <%s>: user is over quota", "failed", "hard", "Undelivered Mail Returned to Sender", "could not\nbe delivered to one or more recipients"},
}

func postfix(next func() int) {
	for k, c := range postfixCases {
		i := next()
		_, _, rcpt, domain := contact(i)
		diag := c.diag
		if strings.Contains(diag, "%s") {
			arg := rcpt
			if strings.Contains(diag, "name=") || strings.Contains(diag, "mx.") {
				arg = domain
			}
			diag = fmt.Sprintf(diag, arg)
		}
		qid := fmt.Sprintf("4Zk%dQ%dx2r%dWz", k, i, k+3)
		bnd := qid + ".1764000721/mail.acme.example.com"
		enclosed := "Content-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers"
		if k%2 == 1 {
			enclosed = "Content-Description: Undelivered Message\nContent-Type: message/rfc822"
		}
		msg := fmt.Sprintf(`Return-Path: <>
Delivered-To: ada@acme.example.com
Received: by mail.acme.example.com (Postfix)
	id %[1]s; %[2]s
Date: %[2]s
From: MAILER-DAEMON@mail.acme.example.com (Mail Delivery System)
Subject: %[3]s
To: ada@acme.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="%[4]s"
Content-Transfer-Encoding: 8bit
Message-Id: <20261124%[1]s@mail.acme.example.com>

This is a MIME-encapsulated message.

--%[4]s
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.acme.example.com.

I'm sorry to have to inform you that your message %[5]s.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<%[6]s>: host mx.%[7]s[192.0.2.25] said: %[8]s

--%[4]s
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.acme.example.com
X-Postfix-Queue-ID: %[1]s
X-Postfix-Sender: rfc822; ada@acme.example.com
Arrival-Date: %[2]s

Final-Recipient: rfc822; %[6]s
Original-Recipient: rfc822;%[6]s
Action: %[9]s
Status: %[10]s
Remote-MTA: dns; mx.%[7]s
Diagnostic-Code: %[11]s

--%[4]s
%[12]s

Return-Path: <ada@acme.example.com>
Received: by mail.acme.example.com (Postfix, from userid 1001)
	id 9A1B2C3D4E; %[2]s
From: Ada Lovelace <ada@acme.example.com>
To: %[6]s
Subject: Quick question about your Q1 plans
Message-ID: %[13]s
Date: %[2]s
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
%[14]s
--%[4]s--
`, qid, date(24, 9+k%8, 10+k), c.subject, bnd, c.intro, rcpt, domain, strings.TrimPrefix(strings.TrimPrefix(diag, "smtp; "), "X-Postfix; "), c.action, c.status, diag, enclosed, origID(i), map[bool]string{true: "\nHi,\n\nquick question about your plans for Q1.\n\nAda\n", false: ""}[k%2 == 1])
		write("postfix-"+c.status, "bounce", c.bounce, "", origID(i), msg)
	}
}

func exim(next func() int) {
	// Modern Exim with DSN support: multipart/report.
	modern := []struct{ status, diag, bounce, action string }{
		{"5.0.0", "smtp; 550 Unrouteable address", "hard", "failed"},
		{"5.1.1", "smtp; 550 5.1.1 <%s>... User unknown", "hard", "failed"},
		{"5.7.1", "smtp; 550 5.7.1 Message rejected due to content restrictions", "hard", "failed"},
		{"4.0.0", "smtp; 451 Temporary local problem - please try later", "soft", "delayed"},
	}
	for k, c := range modern {
		i := next()
		_, _, rcpt, domain := contact(i)
		diag := c.diag
		if strings.Contains(diag, "%s") {
			diag = fmt.Sprintf(diag, rcpt)
		}
		subject := "Mail delivery failed: returning message to sender"
		if c.action == "delayed" {
			subject = "Warning: message 1tXyZa-000" + fmt.Sprint(k) + "Ab-3c delayed 24 hours"
		}
		bnd := fmt.Sprintf("1764000%d-eximdsn-%d", k, i)
		msg := fmt.Sprintf(`Return-path: <>
Envelope-to: ada@acme.example.com
Delivery-date: %[1]s
Received: from Debian-exim by smtp.acme.example.com with local (Exim 4.96)
	id 1tXyZa-000%[2]dAb-3c
	for ada@acme.example.com;
	%[1]s
X-Failed-Recipients: %[3]s
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@smtp.acme.example.com>
To: ada@acme.example.com
Content-Type: multipart/report; report-type=delivery-status; boundary=%[4]s
MIME-Version: 1.0
Subject: %[5]s
Message-Id: <E1tXyZa-000%[2]dAb-3c@smtp.acme.example.com>
Date: %[1]s

--%[4]s
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  %[3]s
    host mx1.%[6]s [198.51.100.7]
    SMTP error from remote mail server after RCPT TO:<%[3]s>:
    %[7]s

--%[4]s
Content-type: message/delivery-status

Reporting-MTA: dns; smtp.acme.example.com

Action: %[8]s
Final-Recipient: rfc822;%[3]s
Status: %[9]s
Remote-MTA: dns; mx1.%[6]s
Diagnostic-Code: %[10]s

--%[4]s
Content-type: message/rfc822

Return-path: <ada@acme.example.com>
Received: from [203.0.113.4] (helo=acme.example.com)
	by smtp.acme.example.com with esmtpsa (Exim 4.96)
	id 1tXyZ9-0003Ab-00
	for %[3]s;
	%[1]s
From: "Ada Lovelace" <ada@acme.example.com>
To: <%[3]s>
Subject: =?utf-8?q?Kurze_Frage_zu_Ihren_Pl=C3=A4nen?=
Message-ID: %[11]s
Date: %[1]s
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo,

kurze Frage zu Ihren Pl=C3=A4nen f=C3=BCr Q1.

--%[4]s--
`, date(23, 8+k, 5*k), k, rcpt, bnd, subject, domain, strings.TrimPrefix(diag, "smtp; "), c.action, c.status, diag, origID(i))
		write("exim-report-"+c.status, "bounce", c.bounce, "", origID(i), msg)
	}
	// Classic Exim: plain text with the message copied below.
	classic := []struct{ err, bounce, subject, lead string }{
		{"SMTP error from remote mail server after RCPT TO:<%s>:\n    550 5.1.1 <%s>: Recipient address rejected: User unknown", "hard", "Mail delivery failed: returning message to sender", "This is a permanent error. The following address(es) failed:"},
		{"SMTP error from remote mail server after end of data:\n    552 5.2.2 Mailbox quota exceeded for %s (%s)", "soft", "Mail delivery failed: returning message to sender", "This is a permanent error. The following address(es) failed:"},
		{"all relevant MX records point to non-existent hosts", "hard", "Mail delivery failed: returning message to sender", "This is a permanent error. The following address(es) failed:"},
		{"retry timeout exceeded", "hard", "Mail delivery failed: returning message to sender", "This is a permanent error. The following address(es) failed:"},
		{"SMTP error from remote mail server after RCPT TO:<%s>:\n    451 4.3.0 <%s>: Temporary lookup failure", "soft", "Warning: message 1tAbCd-0001Xy-9Z delayed 48 hours", "This message was created automatically by mail delivery software.\nA message that you sent has not yet been delivered to one or more of its\nrecipients after more than 48 hours on the queue. No action is required on your part.\nDelivery attempts will continue for some time, and this warning may be\nrepeated at intervals if the message remains undelivered. The address(es) delayed:"},
		{"SMTP error from remote mail server after RCPT TO:<%s>:\n    550 Administrative prohibition (%s)", "hard", "Mail delivery failed: returning message to sender", "This is a permanent error. The following address(es) failed:"},
	}
	for k, c := range classic {
		i := next()
		_, _, rcpt, _ := contact(i)
		e := c.err
		if strings.Count(e, "%s") == 2 {
			e = fmt.Sprintf(e, rcpt, rcpt)
		}
		msg := fmt.Sprintf(`Return-path: <>
Envelope-to: ada@acme.example.com
Delivery-date: %[1]s
Received: from mail by relay.acme.example.com with local (Exim 4.94.2)
	id 1tAbCd-000%[2]dXy-9Z
	for ada@acme.example.com; %[1]s
X-Failed-Recipients: %[3]s
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@relay.acme.example.com>
To: ada@acme.example.com
Subject: %[4]s
Message-Id: <E1tAbCd-000%[2]dXy-9Z@relay.acme.example.com>
Date: %[1]s

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. %[5]s

  %[3]s
    %[6]s

------ This is a copy of the message, including all the headers. ------

Return-path: <ada@acme.example.com>
Received: from [203.0.113.9] by relay.acme.example.com with esmtpa (Exim 4.94.2)
	id 1tAbCc-0001Xx-00; %[1]s
From: Ada Lovelace <ada@acme.example.com>
To: %[3]s
Subject: Quick question
Message-ID: %[7]s
Date: %[1]s

Hi,

are you the right person to talk to about supplier onboarding?

Ada
`, date(22, 7+k, 3*k), k, rcpt, c.subject, c.lead, e, origID(i))
		write("exim-classic", "bounce", c.bounce, "", origID(i), msg)
	}
}

func exchange(next func() int) {
	cases := []struct{ status, diag, bounce, subj, human string }{
		{"5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "hard", "Undeliverable: ", "The email address you entered couldn't be found."},
		{"5.1.1", "smtp;550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", "hard", "Undeliverable: ", "The email address you entered couldn't be found."},
		{"5.4.1", "smtp;550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DM6PR10MB1234.namprd10.prod.outlook.com]", "hard", "Undeliverable: ", "Your message couldn't be delivered. The recipient's email system refused to accept it."},
		{"5.7.1", "smtp;550 5.7.1 RESOLVER.RST.AuthRequired; authentication required [Stage: CreateMessage]", "hard", "Undeliverable: ", "Your message couldn't be delivered because the recipient's email provider rejected it."},
		{"5.2.2", "smtp;554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded", "hard", "Undeliverable: ", "The recipient's mailbox is full and can't accept messages now."},
		{"5.7.708", "smtp;550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.", "hard", "Undeliverable: ", "Your message wasn't delivered because the recipient's email provider rejected it."},
		{"4.4.7", "smtp;400 4.4.7 Message delayed", "soft", "Delivery delayed:", "Delivery of your message has been delayed. The system will keep trying to deliver it."},
		{"4.4.316", "smtp;451 4.4.316 Connection refused [Message=Socket error code 10061] [LastAttemptedServerName=mx.%s]", "soft", "Delivery delayed:", "Delivery of your message has been delayed. The system will keep trying to deliver it."},
		{"5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "hard", "Unzustellbar: ", "Die eingegebene E-Mail-Adresse wurde nicht gefunden."},
		{"5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "hard", "Non remis : ", "L’adresse de messagerie que vous avez entrée est introuvable."},
	}
	for k, c := range cases {
		i := next()
		_, _, rcpt, domain := contact(i)
		diag := c.diag
		if strings.Contains(diag, "%s") {
			diag = fmt.Sprintf(diag, domain)
		}
		bnd := fmt.Sprintf("_000_%d7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2_", k)
		alt := fmt.Sprintf("_alt_%d_f0e1d2c3", k)
		html := fmt.Sprintf(`<html><head><meta http-equiv="Content-Type" content="text/html; charset=us-ascii"></head><body><p><b><font color="#000066" size="3" face="Arial">Your message to %s couldn't be delivered.</font></b></p><p><font color="#000000" size="2" face="Tahoma">%s</font></p><table><tr><td>%s</td><td>Office 365</td><td>%s</td></tr><tr><td>Sender</td><td></td><td>Action Required</td></tr></table><p>How to Fix It</p><p>Diagnostic information for administrators:</p><p>Generating server: DM6PR10MB1234.namprd10.prod.outlook.com<br>%s<br>Remote server returned '%s'</p></body></html>`, rcpt, c.human, "ada", domain, rcpt, strings.TrimPrefix(diag, "smtp;"))
		msg := fmt.Sprintf(`Received: from DM6PR10MB1234.namprd10.prod.outlook.com (2603:10b6:5:1a0::14)
 by CH2PR10MB4321.namprd10.prod.outlook.com with HTTPS; %[1]s
MIME-Version: 1.0
From: <postmaster@acme.example.com>
To: <ada@acme.example.com>
Date: %[1]s
Content-Type: multipart/report; report-type=delivery-status;
	boundary="%[2]s"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID: <3f1a%[3]d7b-%[4]d-4c1e-9d2a-0b1c2d3e4f5a@DM6PR10MB1234.namprd10.prod.outlook.com>
In-Reply-To: %[5]s
References: %[5]s
Thread-Topic: Quick question
Subject: %[6]sQuick question
Auto-Submitted: auto-replied
X-MS-PublicTrafficType: Email

--%[2]s
Content-Type: multipart/alternative; differences=Content-Type;
	boundary="%[7]s"

--%[7]s
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

%[8]s

--%[7]s
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

%[9]s

--%[7]s--

--%[2]s
Content-Type: message/delivery-status

Reporting-MTA: dns;DM6PR10MB1234.namprd10.prod.outlook.com
Received-From-MTA: dns;CH2PR10MB4321.namprd10.prod.outlook.com
Arrival-Date: %[1]s

Final-Recipient: rfc822;%[10]s
Action: %[11]s
Status: %[12]s
Diagnostic-Code: %[13]s

--%[2]s
Content-Type: message/rfc822

Received: from CH2PR10MB4321.namprd10.prod.outlook.com by DM6PR10MB1234.namprd10.prod.outlook.com; %[1]s
From: Ada Lovelace <ada@acme.example.com>
To: "%[10]s" <%[10]s>
Subject: Quick question
Thread-Topic: Quick question
Date: %[1]s
Message-ID: %[5]s
Content-Language: en-US
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

Hi, are you the right person for procurement?

--%[2]s--
`, date(25, 9+k%6, 2*k), bnd, k, i, origID(i), c.subj, alt,
			qp(fmt.Sprintf("Your message to %s couldn't be delivered.\n\n%s\n\nDiagnostic information for administrators:\n\nGenerating server: DM6PR10MB1234.namprd10.prod.outlook.com\n\n%s\nRemote server returned '%s'\n", rcpt, c.human, rcpt, strings.TrimPrefix(diag, "smtp;"))),
			qp(html), rcpt, map[string]string{"hard": "failed", "soft": "delayed"}[c.bounce], c.status, diag)
		write("exchange-"+c.status, "bounce", c.bounce, "", origID(i), msg)
	}
}

func gmail(next func() int) {
	cases := []struct{ status, diag, bounce, subject, text string }{
		{"5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try\n 550-5.1.1 double-checking the recipient's email address for typos or\n 550-5.1.1 unnecessary spaces. Learn more at\n 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser 41be03b00d2f7-abc123.12 - gsmtp", "hard", "Delivery Status Notification (Failure)", "Address not found\n\nYour message wasn't delivered to %s because the address couldn't be found, or is unable to receive mail."},
		{"5.2.1", "smtp; 550 5.2.1 The email account that you tried to reach is disabled. https://support.google.com/mail/?p=DisabledUser - gsmtp", "hard", "Delivery Status Notification (Failure)", "Message not delivered\n\nYour message couldn't be delivered to %s because the account is disabled."},
		{"5.7.26", "smtp; 550-5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. - gsmtp", "hard", "Delivery Status Notification (Failure)", "Message blocked\n\nYour message to %s has been blocked. See technical details below for more information."},
		{"4.2.2", "smtp; 452-4.2.2 The recipient's inbox is out of storage space. Please direct the\n 452 4.2.2 recipient to https://support.google.com/mail/?p=OverQuotaTemp - gsmtp", "soft", "Delivery Status Notification (Delay)", "Message not delivered yet\n\nThere was a temporary problem delivering your message to %s. Gmail will retry for 47 more hours. You'll be notified if the delivery fails permanently."},
		{"4.7.0", "smtp; 421-4.7.0 Try again later, closing connection. (EHLO) - gsmtp", "soft", "Delivery Status Notification (Delay)", "Message not delivered yet\n\nThere was a temporary problem delivering your message to %s. Gmail will retry for 44 more hours."},
		{"5.4.310", "DNS; 550 5.4.310 DNS domain does not exist", "hard", "Delivery Status Notification (Failure)", "Address not found\n\nYour message wasn't delivered to %s because the domain couldn't be found. Check for typos or unnecessary spaces and try again."},
		{"5.0.0", "smtp; 550 Requested action not taken: mailbox unavailable", "hard", "Delivery Status Notification (Failure)", "Message not delivered\n\nThere was a problem delivering your message to %s. See the technical details below, or try resending in a few minutes."},
		{"5.1.1", "smtp; 550 5.1.1 <%s>: Recipient address rejected: undeliverable address", "hard", "Delivery Status Notification (Failure)", "Address not found\n\nYour message wasn't delivered to %s because the address couldn't be found, or is unable to receive mail."},
	}
	for k, c := range cases {
		i := next()
		_, _, rcpt, domain := contact(i)
		diag := c.diag
		if strings.Contains(diag, "%s") {
			diag = fmt.Sprintf(diag, rcpt)
		}
		text := fmt.Sprintf(c.text, rcpt)
		bnd := fmt.Sprintf("000000000000%04x5e3b7d0615b2c%03d", k*911, i)
		alt := fmt.Sprintf("000000000000%04x6a9c7d0615b2c%03d", k*577, i)
		msg := fmt.Sprintf(`Delivered-To: ada.acme@gmail.com
Received: by 2002:a05:7300:8b0b:b0:12a:6d8e:abc1 with SMTP id x11csp1234567dyb;
        %[1]s
Return-Path: <>
Received: from mail-sor-f69.google.com (mail-sor-f69.google.com. [209.85.220.69])
        by mx.google.com with SMTPS id a640c23a62f3a-abc%[2]d.123.2026.11.25.10.00.00
        for <ada.acme@gmail.com>
        (Google Transport Security);
        %[1]s
Received-SPF: pass (google.com: domain of postmaster@mail-sor-f69.google.com designates 209.85.220.69 as permitted sender) client-ip=209.85.220.69;
MIME-Version: 1.0
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: ada.acme@gmail.com
Auto-Submitted: auto-replied
Subject: %[3]s
References: %[4]s
In-Reply-To: %[4]s
X-Failed-Recipients: %[5]s
Message-ID: <6745a1b2.%[2]d.abcdef.5dc4@mx.google.com>
Date: %[1]s
Content-Type: multipart/report; boundary="%[6]s"; report-type=delivery-status

--%[6]s
Content-Type: multipart/related; boundary="%[7]s"

--%[7]s
Content-Type: multipart/alternative; boundary="%[7]s-alt"

--%[7]s-alt
Content-Type: text/plain; charset="UTF-8"

** %[8]s **

The response from the remote server was:
%[9]s

--%[7]s-alt
Content-Type: text/html; charset="UTF-8"

<html><head><style>* { font-family:Roboto, "Helvetica Neue", Helvetica, Arial, sans-serif; }</style></head><body><table cellpadding="0" cellspacing="0" class="email-wrapper" style="padding-top:32px;background-color:#ffffff;"><tbody><tr><td><table cellpadding=0 cellspacing=0><tbody><tr><td style="max-width:560px;padding:24px 24px 32px;background-color:#fafafa;border:1px solid #e0e0e0;border-radius:2px"><h1 style="font-size:24px;">%[10]s</h1><p>The response from the remote server was:</p><p style="font-family:monospace">%[9]s</p></td></tr></tbody></table></td></tr></tbody></table></body></html>

--%[7]s-alt--
--%[7]s--

--%[6]s
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; ada.acme@gmail.com
Arrival-Date: %[1]s
X-Original-Message-ID: %[4]s

Final-Recipient: rfc822; %[5]s
Action: %[11]s
Status: %[12]s
Remote-MTA: dns; mx.%[13]s. (198.51.100.3, the server for the domain %[13]s.)
Diagnostic-Code: %[14]s
Last-Attempt-Date: %[1]s

--%[6]s
Content-Type: message/rfc822

DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.com; s=20230601; t=1764064800; x=1764669600; h=to:subject:message-id:date:from:mime-version; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=abcdef
MIME-Version: 1.0
From: Ada Lovelace <ada.acme@gmail.com>
Date: %[1]s
Message-ID: %[4]s
Subject: Quick question
To: %[5]s
Content-Type: multipart/alternative; boundary="00000000000099887766554433221100"

--00000000000099887766554433221100
Content-Type: text/plain; charset="UTF-8"

Hi, quick question about your Q1 plans.

--00000000000099887766554433221100--

--%[6]s--
`, date(25, 10+k%5, k), i, c.subject, origID(i), rcpt, bnd, alt, strings.SplitN(text, "\n", 2)[0], strings.ReplaceAll(diag, "\n", " "), text, map[string]string{"hard": "failed", "soft": "delayed"}[c.bounce], c.status, domain, diag)
		write("gmail-"+c.status, "bounce", c.bounce, "", origID(i), msg)
	}
}

func yahoo(next func() int) {
	cases := []struct{ err, bounce string }{
		{"554: delivery error: dd This user doesn't have a yahoo.com account (%s) [0] - mta1234.mail.gq1.yahoo.com", "hard"},
		{"554: delivery error: dd Requested mail action aborted - mta4012.mail.bf1.yahoo.com", "hard"},
		{"Remote host said: 550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table [RCPT_TO]", "hard"},
		{"Remote host said: 552 1 Requested mail action aborted, mailbox not found [RCPT_TO]", "hard"},
		{"Remote host said: 554 5.7.9 Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes [BODY]", "hard"},
		{"Remote host said: 421 4.7.0 [TSS04] Messages from 203.0.113.20 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes [RCPT_TO]", "soft"},
		{"Remote host said: 452 4.2.2 Over quota [RCPT_TO]\nThis is a temporary error; the message will be retried.", "soft"},
	}
	for k, c := range cases {
		i := next()
		_, _, rcpt, _ := contact(i)
		e := c.err
		if strings.Contains(e, "%s") {
			e = fmt.Sprintf(e, rcpt)
		}
		msg := fmt.Sprintf(`Return-Path: <>
Received: from 10.217.151.75
 by atlas320.free.mail.ne1.yahoo.com with HTTP; %[1]s
Date: %[1]s
From: MAILER-DAEMON@yahoo.com
To: ada.acme@yahoo.com
Subject: Failure Notice
Message-ID: <%[2]d.%[3]d.1764064800%[3]d@mail.yahoo.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
X-Yahoo-Newman-Property: ymail-5

Sorry, we were unable to deliver your message to the following address.

<%[4]s>:
%[5]s

--- Below this line is a copy of the message.

Received: from 10.197.32.13 (EHLO sonic.gate.mail.ne1.yahoo.com) (98.137.64.31)
  by mta1234.mail.gq1.yahoo.com with SMTP; %[1]s
Date: %[1]s
From: Ada Lovelace <ada.acme@yahoo.com>
To: %[4]s
Message-ID: %[6]s
Subject: Quick question
MIME-Version: 1.0
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 7bit

Hi, are you the right person to talk to about logistics?
`, date(26, 11+k%4, 7*k), 1764000000+i, k, rcpt, e, origID(i))
		write("yahoo", "bounce", c.bounce, "", origID(i), msg)
	}
}

func qmail(next func() int) {
	cases := []string{
		"%[1]s:\n192.0.2.44 does not like recipient.\nRemote host said: 550 5.1.1 <%[2]s>: Recipient address rejected: User unknown\nGiving up on 192.0.2.44.",
		"%[1]s:\nSorry, no mailbox here by that name. (#5.1.1)",
		"%[1]s:\nSorry, I couldn't find any host named %[3]s. (#5.1.2)",
		"%[1]s:\n198.51.100.12 failed after I sent the message.\nRemote host said: 552 Message size exceeds maximum permitted",
		"%[1]s:\nSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\nI'm not going to try again; this message has been in the queue too long.",
		"%[1]s:\nThis address no longer accepts mail.",
		"%[1]s:\n203.0.113.77 does not like recipient.\nRemote host said: 553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\nGiving up on 203.0.113.77.",
	}
	for k, c := range cases {
		i := next()
		_, _, rcpt, domain := contact(i)
		detail := fmt.Sprintf(c, "<"+rcpt+">", rcpt, domain)
		detail = strings.ReplaceAll(detail, "%!(EXTRA", "")
		msg := fmt.Sprintf(`Return-Path: <>
Delivered-To: ada@acme.example.com
Received: (qmail %[1]d invoked for bounce); %[2]s
Date: %[2]s
From: MAILER-DAEMON@mail.acme.example.com
To: ada@acme.example.com
Subject: failure notice

Hi. This is the qmail-send program at mail.acme.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

%[3]s

--- Below this line is a copy of the message.

Return-Path: <ada@acme.example.com>
Received: (qmail %[4]d invoked by uid 1001); %[2]s
Date: %[2]s
From: Ada Lovelace <ada@acme.example.com>
To: %[5]s
Subject: Quick question
Message-ID: %[6]s
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi, quick question about your Q1 plans.
`, 31337+k, date(21, 6+k, 11*k%60), detail, 31000+k, rcpt, origID(i))
		write("qmail", "bounce", "hard", "", origID(i), msg)
	}
}

// ---------------------------------------------------------------- ARF

func arf(next func() int) {
	reporters := []struct{ from, ua, ftype, enclosed string }{
		{"Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>", "Yahoo!-Mail-Feedback/2.0", "abuse", "message/rfc822"},
		{"AOL Feedback Loop <scomp@aol.net>", "AOL SComp", "abuse", "message/rfc822"},
		{"Comcast Feedback Loop <feedbackloop@comcast.net>", "Comcast FBL/1.0", "abuse", "text/rfc822-headers"},
		{"abuse@fastmail.example", "Fastmail ARF/1.1", "fraud", "message/rfc822"},
		{"fbl@mail.ru", "Mail.Ru FBL/1.0", "abuse", "text/rfc822-headers"},
		{"Feedback Loop <fbl@seznam.cz>", "Seznam FBL", "abuse", "message/rfc822"},
		{"ARF Reporter <arf@zoho.example>", "Zoho-FBL/1.0", "other", "message/rfc822"},
		{"no-reply@fbl.libero.example", "Libero FBL 2.1", "abuse", "text/rfc822-headers"},
		{"Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>", "Yahoo!-Mail-Feedback/2.0", "abuse", "message/rfc822"},
		{"feedback@fbl.gmx.example", "GMX FBL/3.0", "not-spam", "text/rfc822-headers"},
		{"AOL Feedback Loop <scomp@aol.net>", "AOL SComp", "virus", "message/rfc822"},
		{"spamreport@ovh.example", "OVH-ARF/1.0", "abuse", "message/rfc822"},
	}
	for k, r := range reporters {
		i := next()
		_, _, rcpt, _ := contact(i)
		bnd := fmt.Sprintf("----=_Part_%d_%d.1764064800000", 1000+k, 77*i)
		rcptLine := ""
		if k%3 != 2 {
			rcptLine = "Original-Rcpt-To: <" + rcpt + ">\n"
		}
		msg := fmt.Sprintf(`Return-Path: <%[1]s>
Received: from fbl-relay%[2]d.example by mail.acme.example.com with ESMTPS id fbl%[2]d; %[3]s
From: %[4]s
Date: %[3]s
Subject: FW: Quick question
To: abuse@acme.example.com
Message-ID: <arf-%[2]d.%[5]d@feedback.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="%[6]s"

--%[6]s
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 203.0.113.20 on %[3]s.
For more information about this format please see http://www.mipassoc.org/arf/.

--%[6]s
Content-Type: message/feedback-report

Feedback-Type: %[7]s
User-Agent: %[8]s
Version: 1
Original-Mail-From: <ada@acme.example.com>
%[9]sArrival-Date: %[3]s
Source-IP: 203.0.113.20
Reported-Domain: acme.example.com
Authentication-Results: mta1234.mail.example; dkim=pass header.d=acme.example.com; spf=pass smtp.mailfrom=acme.example.com

--%[6]s
Content-Type: %[10]s
Content-Disposition: inline

Received: from mail.acme.example.com (203.0.113.20) by mx.example with ESMTP; %[3]s
From: Ada Lovelace <ada@acme.example.com>
To: %[11]s
Subject: Quick question
Message-ID: %[12]s
Date: %[3]s
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
%[13]s
--%[6]s--
`, strings.Trim(r.from[strings.LastIndex(r.from, "<")+1:], "<>"), k, date(26, 8+k%9, 5+k), r.from, i, bnd, r.ftype, r.ua, rcptLine, r.enclosed, rcpt, origID(i), map[bool]string{true: "\nHi, quick question about your Q1 plans.\n", false: ""}[r.enclosed == "message/rfc822"])
		write("arf-"+r.ftype, "complaint", "", "", origID(i), msg)
	}
}
