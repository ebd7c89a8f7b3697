package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Raw mail as it really arrives (docs/ingest.md#raw-input): bounces that
// attach the original as message/rfc822 or paste its headers, non-ARF
// complaints, success/relayed/delayed delivery reports, challenge-response
// notices, out-of-office dates written day- or month-first and as ranges,
// and copies of earlier messages with an mbox "From " line, LF-only or
// CR-only line endings. Every text is written for this corpus.

// enclosedBounces are text bounces (no multipart/report) that attach the
// original message, or paste a copy of its headers into the text.
func enclosedBounces(next func() int) {
	cases := []struct {
		status, line, bounce, shape string
	}{
		{"5.1.1", "550 5.1.1 <%s>: Recipient address rejected: User unknown in local recipient table", "hard", "rfc822"},
		{"5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "hard", "rfc822"},
		{"5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", "hard", "headers"},
		{"5.7.1", "550 5.7.1 Unauthenticated email from acme.example.com is not accepted due to domain's DMARC policy", "hard", "rfc822"},
		{"5.7.26", "550 5.7.26 This message does not pass authentication checks (SPF and DKIM both do not pass)", "hard", "headers"},
		{"5.4.1", "550 5.4.1 Recipient address rejected: Access denied", "hard", "rfc822"},
		{"5.2.2", "552 5.2.2 Mailbox full: quota exceeded for this recipient", "hard", "rfc822"}, // a 5.x.x today; the rule makes it soft
		{"5.1.1", "550 5.1.1 No such user here", "hard", "pasted"},
		{"5.1.1", "550 5.1.1 Mailbox does not exist", "hard", "quoted"},
		{"5.5.0", "550 5.5.0 Requested action not taken: mailbox unavailable", "hard", "pasted"},
		{"5.7.1", "554 5.7.1 Service unavailable; Client host [203.0.113.20] blocked using zen.spamhaus.org", "hard", "quoted"},
		{"5.1.1", "550 5.1.1 User unknown", "hard", "mailto"},
		{"5.1.1", "550 5.1.1 unknown or illegal alias", "hard", "pipe"},
		{"5.1.2", "550 5.1.2 Host unknown (Name server: host not found)", "hard", "barehost"},
	}
	for k, c := range cases {
		i := next()
		_, _, rcpt, domain := contact(i)
		line := c.line
		if strings.Contains(line, "%s") {
			line = fmt.Sprintf(line, rcpt)
		}
		bnd := fmt.Sprintf("=_mixed_%d_%d", k, i)
		head := fmt.Sprintf(`Return-Path: <>
Received: from mx%[1]d.%[2]s by mail.acme.example.com; %[3]s
Date: %[3]s
From: Mail Delivery Subsystem <MAILER-DAEMON@mx%[1]d.%[2]s>
To: ada@acme.example.com
Subject: Undelivered Mail: Quick question
Message-ID: <ndr-%[1]d-%[4]d@mx%[1]d.%[2]s>
MIME-Version: 1.0
`, k, domain, date(27, 8+k%9, 3*k%60), i)
		original := fmt.Sprintf(`Return-Path: <ada@acme.example.com>
From: Ada Lovelace <ada@acme.example.com>
To: %[1]s
Subject: Quick question
Date: %[2]s
Message-ID: %[3]s
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
`, rcpt, date(27, 7, 1), origID(i))
		report := fmt.Sprintf("The following message could not be delivered to all recipients.\n\n<%s>:\n    %s\n", rcpt, line)
		var msg string
		switch c.shape {
		case "rfc822", "headers":
			ct := "message/rfc822"
			rest := "\nHi, are you the right person for logistics?\n"
			if c.shape == "headers" {
				ct, rest = "text/rfc822-headers", ""
				report = fmt.Sprintf("Delivery to the following recipient failed permanently:\n\n     %s\n\nTechnical details of permanent failure:\n%s\n", rcpt, line)
			}
			msg = head + fmt.Sprintf(`Content-Type: multipart/mixed; boundary="%[1]s"

--%[1]s
Content-Type: text/plain; charset=us-ascii

%[2]s
--%[1]s
Content-Type: %[3]s
Content-Description: Undelivered Message

%[4]s%[5]s
--%[1]s--
`, bnd, report, ct, original, rest)
		case "pasted":
			msg = head + "Content-Type: text/plain; charset=us-ascii\n\n" + report + "\n----- Original message -----\n\n" + original + "\nHi, are you the right person for logistics?\n"
		case "quoted":
			msg = head + "Content-Type: text/plain; charset=us-ascii\n\n" + report + "\n-----Original Message-----\n" + quoteLines(original) + "\n"
		case "mailto", "pipe", "barehost":
			bad := map[string]string{"mailto": "mailto:" + rcpt, "pipe": "|/usr/bin/procmail -a ticket", "barehost": "@" + domain}[c.shape]
			report = fmt.Sprintf("I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n<%s>: %s\n", bad, line)
			if c.shape == "mailto" {
				report = fmt.Sprintf("This is a permanent error.\n\n<%s>:\n    %s\n", bad, line)
			}
			msg = head + fmt.Sprintf(`Content-Type: multipart/mixed; boundary="%[1]s"

--%[1]s
Content-Type: text/plain; charset=us-ascii

%[2]s
--%[1]s
Content-Type: message/rfc822

%[3]s
Hi, are you the right person for logistics?
--%[1]s--
`, bnd, report, original)
		}
		writeL("enclosed-"+c.shape+"-"+c.status, label{intent: "bounce", bounce: c.bounce, origID: origID(i), rule: ruleFor(c.status, ""), recipient: rcpt}, msg)
	}
}

// complaints are complaint formats that are not ARF.
func complaints(next func() int) {
	type tmpl struct{ name, text string }
	list := []tmpl{
		{"jmrp-rfc822", `Return-Path: <staff@hotmail.com>
From: staff@hotmail.com
To: fbl@acme.example.com
Subject: complaint about message from 203.0.113.20
Date: %[1]s
Message-ID: <jmrp-%[2]d@hotmail.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="jmrp%[2]d"

--jmrp%[2]d
Content-Type: text/plain; charset=us-ascii

This is a Junk Mail Reporting Program notification. A user marked the attached message as junk.

--jmrp%[2]d
Content-Type: message/rfc822
Content-Disposition: attachment

X-HmXmrOriginalRecipient: <%[3]s>
X-Message-Delivery: Vj0xLjE7dXM9MDtsPTA7YT0wO0Q9MjtHRD0yO1NDTD02
Received: from mail.acme.example.com ([203.0.113.20]) by BAY004-MC1F12.hotmail.com; %[1]s
From: Ada Lovelace <ada@acme.example.com>
To: %[3]s
Subject: Quick question
Message-ID: %[4]s
Date: %[1]s

Hi, quick question about your Q1 plans.
--jmrp%[2]d--
`},
		{"jmrp-inline", `From: Outlook.com JMRP <staff@hotmail.com>
To: fbl@acme.example.com
Subject: Complaint about message from acme.example.com
Date: %[1]s
Message-ID: <jmrp-inline-%[2]d@outlook.com>
Content-Type: text/plain; charset=us-ascii

A recipient of your mail reported it as spam.

X-HmXmrOriginalRecipient: %[3]s
From: Ada Lovelace <ada@acme.example.com>
Subject: Quick question
Message-ID: %[4]s
`},
		{"jmrp-header", `From: Junk Mail Reporting <jmrp@microsoft.com>
To: fbl@acme.example.com
Subject: FW: Quick question
Date: %[1]s
Message-ID: <jmrp-h-%[2]d@microsoft.com>
X-HmXmrOriginalRecipient: %[3]s
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="h%[2]d"

--h%[2]d
Content-Type: text/plain

This message was reported as junk by an Outlook.com user.
--h%[2]d
Content-Type: text/rfc822-headers

From: Ada Lovelace <ada@acme.example.com>
To: %[3]s
Message-ID: %[4]s
Subject: Quick question

--h%[2]d--
`},
		{"yahoo-cfl", `From: Yahoo Mail Complaint Feedback Loop <feedback@cfl.mail.yahoo.com>
To: fbl@acme.example.com
Subject: Yahoo! Mail complaint: a user marked your message as spam
Date: %[1]s
Message-ID: <cfl-%[2]d@cfl.mail.yahoo.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="cfl%[2]d"

--cfl%[2]d
Content-Type: text/plain; charset=utf-8

A Yahoo Mail user reported the attached message as spam through the Complaint Feedback Loop.

--cfl%[2]d
Content-Type: message/rfc822

From: Ada Lovelace <ada@acme.example.com>
To: %[3]s
Subject: Quick question
Message-ID: %[4]s
Date: %[1]s

Hi, quick question about your Q1 plans.
--cfl%[2]d--
`},
		{"yahoo-cfl-text", `From: feedback@arf.mail.yahoo.com
To: fbl@acme.example.com
Subject: Complaint report
Date: %[1]s
Message-ID: <cfl-t-%[2]d@arf.mail.yahoo.com>
Content-Type: text/plain; charset=us-ascii

Feedback loop report: the recipient below reported this message as spam.

Recipient: %[3]s
Source-IP: 203.0.113.20

----- Original message -----
From: Ada Lovelace <ada@acme.example.com>
To: %[3]s
Message-ID: %[4]s
Subject: Quick question
`},
		{"icloud-optout", `From: iCloud Mail <noreply@icloud.com>
To: postmaster@acme.example.com
Subject: A recipient has opted out of mail from acme.example.com
Date: %[1]s
Message-ID: <icloud-%[2]d@icloud.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="ic%[2]d"

--ic%[2]d
Content-Type: text/plain; charset=utf-8

An iCloud Mail user has opted out of receiving mail from acme.example.com and reported the message below as junk.

--ic%[2]d
Content-Type: text/rfc822-headers

From: Ada Lovelace <ada@acme.example.com>
To: %[3]s
Message-ID: %[4]s
Subject: Quick question

--ic%[2]d--
`},
		{"apple-junk", `From: Apple Mail Feedback <feedback@mail.apple.com>
To: postmaster@acme.example.com
Subject: Junk mail report
Date: %[1]s
Message-ID: <apple-%[2]d@mail.apple.com>
Content-Type: text/plain; charset=utf-8

A user marked your message as junk. They no longer wish to receive messages from you.

Recipient: %[3]s
> Message-ID: %[4]s
`},
		{"ses-sns", `From: AWS Notifications <no-reply@sns.amazonaws.com>
To: ops@acme.example.com
Subject: AWS Notification Message
Date: %[1]s
Message-ID: <0100019%[2]d-sns@email.amazonses.com>
Content-Type: text/plain; charset=UTF-8

{"notificationType":"Complaint","complaint":{"feedbackId":"0100019%[2]d-feedback","complaintSubType":null,"complainedRecipients":[{"emailAddress":"%[3]s"}],"timestamp":"2026-11-27T10:00:00.000Z","userAgent":"Yahoo!-Mail-Feedback/2.0","complaintFeedbackType":"abuse"},"mail":{"timestamp":"2026-11-26T09:00:00.000Z","source":"ada@acme.example.com","messageId":"0100019%[2]d-ses","destination":["%[3]s"],"headers":[{"name":"From","value":"Ada Lovelace <ada@acme.example.com>"},{"name":"Message-ID","value":"%[4]s"}],"commonHeaders":{"from":["ada@acme.example.com"],"messageId":"%[4]s","subject":"Quick question"}}}

--
If you wish to stop receiving notifications from this topic, please click or visit the link below to unsubscribe:
https://sns.eu-west-1.amazonaws.com/unsubscribe.html?SubscriptionArn=arn:aws:sns:eu-west-1:000000000000:ses-complaints
`},
		{"ses-envelope", `From: AWS Notifications <no-reply@sns.amazonaws.com>
To: ops@acme.example.com
Subject: AWS Notification Message
Date: %[1]s
Message-ID: <0100019%[2]d-env@email.amazonses.com>
Content-Type: text/plain; charset=UTF-8

{"Type":"Notification","MessageId":"9a1b-%[2]d","TopicArn":"arn:aws:sns:us-east-1:000000000000:ses-feedback","Message":"{\"notificationType\":\"Complaint\",\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":\"%[3]s\"}],\"complaintFeedbackType\":\"abuse\"},\"mail\":{\"messageId\":\"0100019%[2]d-ses\",\"commonHeaders\":{\"messageId\":\"%[4]s\"}}}","Timestamp":"2026-11-27T10:00:00.000Z"}
`},
	}
	for round := 0; round < 2; round++ {
		for _, c := range list {
			i := next()
			_, _, rcpt, _ := contact(i)
			msg := fmt.Sprintf(c.text, date(27, 9+round, i%60), i, rcpt, origID(i))
			writeL("complaint-"+c.name, label{intent: "complaint", origID: origID(i), rule: "-", recipient: rcpt}, msg)
		}
	}
}

// notices are delivery reports that are not failures (success, relayed,
// expanded, delayed) and challenge-response notices.
func notices(next func() int) {
	dsns := []struct{ action, status, diag, subject, bounce string }{
		{"delivered", "2.0.0", "smtp; 250 2.0.0 OK 1764230400 a1-20020a05", "Delivery Status Notification (Success)", "-"},
		{"relayed", "2.0.0", "smtp; 250 2.0.0 Ok: queued as 4Zk9Q", "Delivery Status Notification (Relay)", "-"},
		{"expanded", "2.1.5", "smtp; 250 2.1.5 Recipient ok, expanded to 3 addresses", "Delivery Status Notification (Expanded)", "-"},
		{"delivered", "2.1.5", "smtp; 250 2.1.5 Ok", "Successful Mail Delivery Report", "-"},
		{"delayed", "4.4.7", "smtp; 451 4.4.7 Message delayed: retry timeout not yet reached", "Delivery Status Notification (Delay)", "soft"},
		{"delayed", "4.4.1", "X-Postfix; connect to mx.%s[198.51.100.9]:25: Connection refused", "Delayed Mail (still being retried)", "soft"},
		{"delayed", "4.7.0", "smtp; 421 4.7.0 Try again later, closing connection", "Warning: message delayed 4 hours", "soft"},
	}
	for k, c := range dsns {
		i := next()
		_, _, rcpt, domain := contact(i)
		diag := c.diag
		if strings.Contains(diag, "%s") {
			diag = fmt.Sprintf(diag, domain)
		}
		intro := "Your message was successfully delivered to the destination(s) listed below."
		if c.action == "delayed" {
			intro = "Your message has not been delivered yet. The mail system will keep trying for up to 5 days."
		}
		msg := fmt.Sprintf(`Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mail.acme.example.com>
To: ada@acme.example.com
Subject: %[1]s
Date: %[2]s
Message-ID: <dsn-%[3]d@mail.acme.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="n%[3]d"

--n%[3]d
Content-Type: text/plain; charset=us-ascii

%[4]s

<%[5]s>: %[6]s

--n%[3]d
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.acme.example.com

Final-Recipient: rfc822; %[5]s
Original-Recipient: rfc822;%[5]s
Action: %[7]s
Status: %[8]s
Diagnostic-Code: %[9]s

--n%[3]d
Content-Type: text/rfc822-headers

From: Ada Lovelace <ada@acme.example.com>
To: %[5]s
Subject: Quick question
Message-ID: %[10]s

--n%[3]d--
`, c.subject, date(26, 10+k, k), i, intro, rcpt, strings.TrimPrefix(diag, "smtp; "), c.action, c.status, diag, origID(i))
		writeL("dsn-"+c.action+"-"+c.status, label{intent: "bounce", bounce: c.bounce, origID: origID(i), rule: "none", recipient: rcpt}, msg)
	}
	challenges := []struct{ subject, headers, text string }{
		{"Please confirm your message", "Auto-Submitted: auto-replied\nX-Boxbe-Screening: yes", "Hello,\n\nI use a sender-verification service to keep my inbox free of spam. Please click the link below once to confirm you are a person, and your message will be delivered.\n\nhttps://verify.mailguard.example/c/8a1f\n\nThank you."},
		{"Re: Quick question [verification required]", "Precedence: bulk\nX-Challenge: 5521", "Your message is being held until you verify your address. Reply to this message without changing the subject, or visit https://cr.example/verify."},
		{"Bestätigung erforderlich: Kurze Frage", "Auto-Submitted: auto-generated", "Ihre Nachricht wurde zurückgehalten. Bitte bestätigen Sie einmalig, dass Sie kein Roboter sind: https://verify.mailguard.example/d/77"},
		{"Vérification de l'expéditeur", "X-Autoreply: yes", "Votre message est en attente. Merci de confirmer votre adresse en cliquant sur le lien : https://verify.mailguard.example/f/12"},
	}
	for k, c := range challenges {
		i := next()
		first, last, from, domain := contact(i)
		msg := fmt.Sprintf(`From: %[1]s %[2]s <%[3]s>
To: ada@acme.example.com
Subject: %[4]s
Date: %[5]s
Message-ID: <cr-%[6]d@%[7]s>
In-Reply-To: %[8]s
%[9]s
Content-Type: text/plain; charset=utf-8

%[10]s
`, first, last, from, encodeSubject(c.subject, i), date(26, 9+k, k), i, domain, origID(i), c.headers, c.text)
		writeL("challenge", label{intent: "auto_reply", origID: origID(i), rule: "-"}, msg)
	}
}

// oooDates are out-of-office replies whose return day depends on reading
// numbers day- or month-first, or on a range written with one month.
func oooDates(next func() int) {
	cases := []struct{ lang, contentLang, text, ret string }{
		{"en", "en-GB", "Thank you for your email. I am on annual leave until 07/12/2026 with no access to email. Kind regards, Tom", "2026-12-07"},
		{"en", "", "I am on annual leave and back in the office on 04/12/2026. For anything urgent please call the London office on +44 20 7946 0000.", "2026-12-04"},
		{"en", "en-US", "I'm out of the office until 12/07/2026. For urgent requests call my cell: (555) 010-4477.", "2026-12-07"},
		{"en", "", "I'm out of the office from 11/30/2026 and back 12/03/2026.", "2026-12-03"},
		{"en", "", "I'm away from the office 30/11/2026 and return 03/12/2026.", "2026-12-03"},
		{"en", "", "I am on vacation December 1-4 and will reply when I return.", "2026-12-04"},
		{"en", "", "I'm out of the office November 30 through December 3 with limited access to email.", "2026-12-04"},
		{"en", "en-GB", "I am away from the office from 30 November to 4 December.", "2026-12-04"},
		{"de", "de-DE", "Ich bin vom 30.11.-04.12. nicht im Büro. Ab dem 07.12.2026 bin ich wieder erreichbar.", "2026-12-07"},
		{"de", "", "Ich bin vom 1.-4. Dezember im Urlaub und lese meine E-Mails nicht.", "2026-12-04"},
		{"de", "", "Ich bin bis 04/12/2026 nicht im Büro.", "2026-12-04"},
		{"fr", "fr-FR", "Je suis absent du 30 novembre au 4 décembre inclus. Je vous répondrai à mon retour.", "2026-12-05"},
		{"fr", "", "Je suis en congés du 1 au 4 décembre.", "2026-12-04"},
		{"fr", "", "Je suis absente jusqu'au 03/12/2026.", "2026-12-03"},
		{"es", "es-ES", "Estaré fuera de la oficina del 1 al 4 de diciembre, sin acceso al correo.", "2026-12-04"},
		{"es", "", "Estoy de vacaciones hasta el 07/12/2026.", "2026-12-07"},
		{"pt", "pt-BR", "Estarei de férias de 1 a 4 de dezembro. Retornarei no dia 07/12/2026.", "2026-12-07"},
		{"pt", "", "Estou fora do escritório até 03/12/2026.", "2026-12-03"},
		{"nl", "nl-NL", "Ik ben afwezig van 1 t/m 4 december.", "2026-12-05"},
		{"nl", "", "Ik ben met vakantie tot 07/12/2026.", "2026-12-07"},
		{"sv", "sv-SE", "Jag är på semester 1 till och med 4 december.", "2026-12-05"},
		{"sv", "", "Jag är ledig till 03/12/2026.", "2026-12-03"},
	}
	for k, c := range cases {
		i := next()
		first, last, from, domain := contact(i)
		cl := ""
		if c.contentLang != "" {
			cl = "Content-Language: " + c.contentLang + "\n"
		}
		ct, enc := body(i, c.text)
		msg := fmt.Sprintf(`From: %[1]s %[2]s <%[3]s>
To: ada@acme.example.com
Subject: %[4]s
Date: %[5]s
Message-ID: <ooo-d-%[6]d@%[7]s>
In-Reply-To: %[8]s
Auto-Submitted: auto-replied
%[9]sMIME-Version: 1.0
%[10]s

%[11]s
`, first, last, from, encodeSubject(autoPrefix[c.lang]+ourSubject[c.lang], i), date(24+k%3, 9+k%8, k), i, domain, origID(i), cl, ct, enc)
		writeL("ooo-dates-"+c.lang, label{intent: "ooo", returnDate: c.ret, origID: origID(i), rule: "-"}, msg)
	}
}

// asItArrives copies earlier messages as they reach a mailbox: with an
// mbox "From " envelope line (procmail, a Postfix pipe with the F flag,
// mbox exports) and sometimes a blank line, with LF-only endings
// (Unix tools) or CR-only endings (old Mac exports).
func asItArrives() {
	base := append([]label(nil), labels...)
	for k, l := range base {
		raw, err := os.ReadFile(filepath.Join(outDir, l.file))
		if err != nil {
			panic(err)
		}
		stem := strings.TrimSuffix(l.file[4:], ".eml")
		lf := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
		envelope := fmt.Sprintf("From MAILER-DAEMON  Fri Nov 27 0%d:12:%02d 2026\n", k%10, k%60)
		if k%2 == 0 && !strings.Contains(stem, "mbox") {
			switch k % 6 {
			case 0:
				writeRaw("mbox-"+stem, l, append([]byte(envelope), lf...))
			case 2:
				writeRaw("mbox-crlf-"+stem, l, append([]byte(strings.TrimSuffix(envelope, "\n")+"\r\n"), raw...))
			case 4:
				writeRaw("mbox-blank-"+stem, l, append([]byte(envelope+"\n"), lf...))
			}
		}
		if k%4 == 1 {
			writeRaw("cr-"+stem, l, bytes.ReplaceAll(lf, []byte("\n"), []byte("\r")))
		}
		if k%8 == 3 {
			writeRaw("lf-"+stem, l, lf)
		}
	}
}
