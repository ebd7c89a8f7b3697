package ingest_test

import (
	"testing"

	"github.com/dripdrop/dripdrop/ingest"
)

// dsn is a delivery report about one recipient.
func dsn(action, status, diagnostic string) *ingest.Message {
	return &ingest.Message{MessageID: "dsn-1@mx.example.net", From: "mailer-daemon@mx.example.net", Subject: "Delivery Status Notification",
		Report: &ingest.Report{Type: "delivery-status", Recipients: []ingest.RecipientStatus{
			{Recipient: "bob@example.com", Action: action, Status: status, DiagnosticCode: diagnostic}}}}
}

// Whose failure a DSN reports, with the status codes and wording of real
// MTAs: the prospect's hard bounce only for failures of the address; the
// sender's for authentication, DMARC/SPF/DKIM, blocked IPs, content,
// reputation and routing; success, relayed and delayed reports and
// challenge-response notices are no bounce.
func TestDSNWhoseFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		source, action, status, diag string
		intent                       ingest.Intent
		bounce, fault                string
	}{
		// The address's failures.
		{"postfix", "failed", "5.1.1", "smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"exchange", "failed", "5.1.10", "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"gmail", "failed", "5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"exim", "failed", "5.2.1", "smtp; 550 5.2.1 Mailbox disabled for this recipient", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"yahoo", "failed", "5.0.0", "smtp; 554 delivery error: dd This user doesn't have a yahoo.com account", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"qmail", "failed", "5.1.1", "smtp; 550 5.1.1 sorry, no mailbox here by that name (#5.1.1)", ingest.Bounce, "hard", ingest.FaultRecipient},
		// A full mailbox: the recipient's, soft.
		{"postfix quota", "failed", "5.2.2", "smtp; 552 5.2.2 <bob@example.com>: user is over quota", ingest.Bounce, "soft", ingest.FaultRecipient},
		{"exchange quota", "failed", "5.2.2", "smtp;554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException", ingest.Bounce, "soft", ingest.FaultRecipient},
		{"gmail quota", "failed", "4.2.2", "smtp; 452-4.2.2 The email account that you tried to reach is over quota.", ingest.Bounce, "soft", ingest.FaultRecipient},
		// The sender's failures.
		{"gmail dmarc", "failed", "5.7.26", "smtp; 550-5.7.26 Unauthenticated email from acme.example is not accepted due to domain's DMARC policy.", ingest.Bounce, "hard", ingest.FaultSender},
		{"gmail spf", "failed", "5.7.1", "smtp; 550-5.7.1 The SPF check did not pass for the sending domain acme.example", ingest.Bounce, "hard", ingest.FaultSender},
		{"outlook auth", "failed", "5.7.515", "smtp;550 5.7.515 Access denied, sending domain acme.example doesn't meet the required authentication level", ingest.Bounce, "hard", ingest.FaultSender},
		{"spamhaus", "failed", "5.7.1", "smtp; 554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org", ingest.Bounce, "hard", ingest.FaultSender},
		{"proofpoint", "failed", "5.7.1", "smtp; 554 5.7.1 Message blocked due to spam content in the message", ingest.Bounce, "hard", ingest.FaultSender},
		{"mimecast", "failed", "5.7.1", "smtp; 550 5.7.1 Rejected by header based Anti-Spoofing policy", ingest.Bounce, "hard", ingest.FaultSender},
		{"barracuda", "failed", "5.7.1", "smtp; 554 5.7.1 Message rejected because of unacceptable content. Barracuda reputation", ingest.Bounce, "hard", ingest.FaultSender},
		{"routing", "failed", "5.4.4", "smtp; 550 5.4.4 Unable to route: no mail hosts for domain", ingest.Bounce, "hard", ingest.FaultSender},
		{"system", "failed", "5.3.0", "smtp; 554 5.3.0 Other mail system problem", ingest.Bounce, "hard", ingest.FaultSender},
		{"reputation 5.0.0", "failed", "5.0.0", "smtp; 550 Your IP has poor reputation and was blocked", ingest.Bounce, "hard", ingest.FaultSender},
		{"temporary policy", "failed", "4.7.0", "smtp; 421 4.7.0 Try again later, closing connection (rate limited by policy)", ingest.Bounce, "soft", ingest.FaultSender},
		// More MTAs and providers, each in its own words.
		{"sendmail", "failed", "5.1.1", "SMTP; 550 5.1.1 <bob@example.com>... User unknown", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"courier", "failed", "5.0.0", "smtp; 550 User unknown", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"domino", "failed", "5.1.1", "smtp; 550 5.1.1 User not listed in public Name & Address Book", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"exchange onprem", "failed", "5.4.1", "smtp;550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", ingest.Bounce, "hard", ingest.FaultSender},
		{"office365 ip", "failed", "5.7.606", "smtp;550 5.7.606 Access denied, banned sending IP [192.0.2.10]", ingest.Bounce, "hard", ingest.FaultSender},
		{"yahoo policy", "failed", "5.7.9", "smtp; 554 5.7.9 Message not accepted for policy reasons", ingest.Bounce, "hard", ingest.FaultSender},
		{"icloud", "failed", "5.7.1", "smtp; 554 5.7.1 [CS01] Message rejected due to local policy", ingest.Bounce, "hard", ingest.FaultSender},
		{"ses relayed", "failed", "5.1.1", "smtp; 550 5.1.1 user unknown", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"sendgrid dropped", "failed", "5.7.1", "smtp; 550 5.7.1 Sender domain is not verified", ingest.Bounce, "hard", ingest.FaultSender},
		{"mailgun", "failed", "5.7.1", "smtp; 550 5.7.1 Relaying denied", ingest.Bounce, "hard", ingest.FaultSender},
		{"zoho", "failed", "5.4.6", "smtp; 554 5.4.6 Mail loop detected", ingest.Bounce, "hard", ingest.FaultSender},
		{"gmx", "failed", "5.1.1", "smtp; 550 Requested action not taken: mailbox unavailable", ingest.Bounce, "hard", ingest.FaultRecipient},
		{"web.de dkim", "failed", "5.7.1", "smtp; 554 5.7.1 DKIM signature of the sending domain failed validation", ingest.Bounce, "hard", ingest.FaultSender},
		{"comcast", "failed", "5.5.0", "smtp; 550 5.5.0 Mailbox unavailable or not local", ingest.Bounce, "hard", ingest.FaultRecipient},
		// No bounce at all.
		{"success", "delivered", "2.0.0", "smtp; 250 2.0.0 OK", ingest.AutoReply, "", ""},
		{"relayed", "relayed", "2.1.5", "smtp; 250 2.1.5 relayed to a non-DSN host", ingest.AutoReply, "", ""},
		{"expanded", "expanded", "2.0.0", "", ingest.AutoReply, "", ""},
		{"delayed", "delayed", "4.4.7", "smtp; 451 4.4.7 Message delayed", ingest.AutoReply, "", ""},
	}
	for _, c := range cases {
		got := ingest.Classify(dsn(c.action, c.status, c.diag))
		if got.Intent != c.intent || got.Bounce != c.bounce || got.Fault != c.fault {
			t.Errorf("%s (%s %s %q): %s/%s/%s, want %s/%s/%s", c.source, c.action, c.status, c.diag, got.Intent, got.Bounce, got.Fault, c.intent, c.bounce, c.fault)
		}
	}
	// A challenge-response notice in a failed DSN is no bounce.
	m := dsn("failed", "4.7.0", "smtp; 450 4.7.0 Sender verification required: please confirm you are a human to complete delivery")
	if got := ingest.Classify(m); got.Intent != ingest.AutoReply {
		t.Errorf("challenge-response: %s (%s), want auto_reply", got.Intent, got.Signal)
	}
	// A text bounce follows the same rule.
	text := &ingest.Message{MessageID: "b-1@mx.example.net", From: "MAILER-DAEMON@mx.example.net", Subject: "Undelivered Mail Returned to Sender",
		BodyText: "I'm sorry to have to inform you that your message could not be delivered.\n\n<bob@example.com>: host mx.example.com said: 550 5.7.26 Unauthenticated email is not accepted due to DMARC policy\n"}
	if got := ingest.Classify(text); got.Intent != ingest.Bounce || got.Fault != ingest.FaultSender {
		t.Errorf("text DMARC bounce: %s/%s, want bounce/sender", got.Intent, got.Fault)
	}
}
