package smtpreply

import "testing"

// Replies written for these tests in the styles of common servers; every
// address and host is made up.
func TestWhoseRealisticReplies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		stage    Stage
		code     int
		enhanced [3]int
		text     string
		reason   string // "" = the recipient's
	}{
		// Postfix: sender, client and HELO restrictions answered at RCPT (smtpd_delay_reject=yes).
		{"postfix not owned", StageRcpt, 553, [3]int{5, 7, 1}, "<other@example.com>: Sender address rejected: not owned by user bob", ReasonSenderRejected},
		{"postfix sender access", StageRcpt, 554, [3]int{5, 7, 1}, "<blocked@example.net>: Sender address rejected: Access denied", ReasonSenderRejected},
		{"postfix unknown sender domain", StageRcpt, 450, [3]int{4, 1, 8}, "<ada@nowhere.example>: Sender address rejected: Domain not found", ReasonSenderRejected},
		{"postfix unlisted sender 5.1.0", StageRcpt, 550, [3]int{5, 1, 0}, "<ada@example.org>: Sender address rejected: User unknown in local recipient table", ReasonSenderRejected},
		{"postfix client rbl", StageRcpt, 554, [3]int{5, 7, 1}, "Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.7", ReasonPolicy},
		{"postfix client hostname", StageRcpt, 450, [3]int{4, 7, 25}, "Client host rejected: cannot find your hostname, [192.0.2.7]", ReasonPolicy},
		{"postfix helo fqdn", StageRcpt, 504, [3]int{5, 5, 2}, "<localhost>: Helo command rejected: need fully-qualified hostname", ReasonPolicy},
		{"postfix helo invalid", StageRcpt, 501, [3]int{5, 5, 2}, "<bad_name>: Helo command rejected: Invalid name", ReasonPolicy},
		{"postfix relay", StageRcpt, 554, [3]int{5, 7, 1}, "<bob@elsewhere.example>: Relay access denied", ReasonPolicy},
		{"postfix user unknown", StageRcpt, 550, [3]int{5, 1, 1}, "<gone@example.com>: Recipient address rejected: User unknown in virtual mailbox table", ""},
		{"postfix recipient access", StageRcpt, 554, [3]int{5, 7, 1}, "<bob@example.com>: Recipient address rejected: Access denied", ""},
		{"postfix greylist", StageRcpt, 450, [3]int{4, 2, 0}, "<bob@example.com>: Recipient address rejected: Greylisted, see http://postgrey.example/", ""},
		{"postfix dmarc milter", StageAfterData, 550, [3]int{5, 7, 1}, "Email rejected per DMARC policy for acme.example", ReasonPolicy},
		// Exim.
		{"exim relay", StageRcpt, 550, [3]int{}, "relay not permitted", ReasonPolicy},
		{"exim sender verify", StageRcpt, 550, [3]int{}, "Verification failed for <ada@acme.example>\nSender verify failed", ReasonSenderRejected},
		{"exim black list", StageRcpt, 550, [3]int{5, 7, 1}, "rejected because 192.0.2.7 is in a black list at dnsbl.example.org", ReasonPolicy},
		{"exim unrouteable", StageRcpt, 550, [3]int{}, "Unrouteable address", ""},
		{"exim spf", StageRcpt, 550, [3]int{5, 7, 1}, "SPF check failed: acme.example does not designate 192.0.2.7 as permitted sender", ReasonPolicy},
		// Exchange Online.
		{"exchange send as", StageRcpt, 550, [3]int{5, 7, 60}, "SMTP; Client does not have permissions to send as this sender", ReasonSenderRejected},
		{"exchange SendAsDenied", StageAfterData, 554, [3]int{5, 2, 0}, "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception", ReasonSenderRejected},
		{"exchange SendAsDenied 5.7", StageAfterData, 550, [3]int{5, 7, 60}, "SendAsDenied; ada@acme.example not allowed to send as other@acme.example", ReasonSenderRejected},
		{"exchange not authenticated", StageRcpt, 530, [3]int{5, 7, 57}, "Client not authenticated to send mail. [AM0PR00MB0000.eurprd00.prod.example]", ReasonAuth},
		{"exchange relay", StageRcpt, 550, [3]int{5, 7, 64}, "TenantAttribution; Relay Access Denied [AM0PR00MB0000.eurprd00.prod.example]", ReasonPolicy},
		{"exchange banned ip", StageRcpt, 550, [3]int{5, 7, 606}, "Access denied, banned sending IP [192.0.2.7]", ReasonPolicy},
		{"exchange unknown recipient", StageRcpt, 550, [3]int{5, 1, 10}, "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", ""},
		{"exchange quota", StageAfterData, 552, [3]int{5, 2, 2}, "STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded", ""},
		// Gmail: the recipient's rate and quota are not the sender's.
		{"gmail rate", StageRcpt, 450, [3]int{4, 2, 1}, "The user you are trying to contact is receiving mail at a rate that\nprevents additional messages from being delivered. Please resend your\nmessage at a later time.", ""},
		{"gmail rate 4.7", StageRcpt, 450, [3]int{4, 7, 1}, "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", ""},
		{"gmail over quota", StageRcpt, 452, [3]int{4, 2, 2}, "The email account that you tried to reach is over quota.", ""},
		{"gmail no such user", StageRcpt, 550, [3]int{5, 1, 1}, "The email account that you tried to reach does not exist. Please try\ndouble-checking the recipient's email address for typos", ""},
		{"gmail disabled", StageRcpt, 550, [3]int{5, 2, 1}, "The email account that you tried to reach is disabled.", ""},
		{"gmail dmarc", StageAfterData, 550, [3]int{5, 7, 26}, "Unauthenticated email from acme.example is not accepted due to domain's\nDMARC policy.", ReasonPolicy},
		{"gmail unauthenticated", StageAfterData, 550, [3]int{5, 7, 26}, "This mail has been blocked because the sender is unauthenticated.", ReasonPolicy},
		{"gmail unsolicited rate", StageRcpt, 421, [3]int{4, 7, 28}, "Our system has detected an unusual rate of unsolicited mail originating from your IP address.", ReasonServerUnavailable},
		// Sendmail.
		{"sendmail relaying", StageRcpt, 550, [3]int{5, 7, 1}, "<bob@elsewhere.example>... Relaying denied", ReasonPolicy},
		{"sendmail user unknown", StageRcpt, 550, [3]int{5, 1, 1}, "<gone@example.com>... User unknown", ""},
		{"sendmail sender domain", StageRcpt, 553, [3]int{5, 1, 8}, "<ada@nowhere.example>... Domain of sender address ada@nowhere.example does not exist", ReasonSenderRejected},
		{"sendmail mailbox full", StageRcpt, 452, [3]int{4, 2, 2}, "<bob@example.com>... Mailbox full", ""},
		// qmail: the status is at the end of the text.
		{"qmail rcpthosts", StageRcpt, 553, [3]int{}, "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", ReasonPolicy},
		{"qmail no mailbox", StageRcpt, 550, [3]int{}, "sorry, no mailbox here by that name. (#5.1.1)", ""},
		// A word inside another does not count.
		{"spf inside a word", StageRcpt, 550, [3]int{5, 7, 1}, "<bob@example.com>: message refused by dspfilter", ""},
		// Before RCPT: always the adapter's.
		{"mail from policy", StageMail, 550, [3]int{5, 7, 1}, "Sender rejected", ReasonPolicy},
		{"mail from address", StageMail, 553, [3]int{5, 1, 7}, "Bad sender address syntax", ReasonSenderRejected},
		{"auth", StageAuth, 535, [3]int{5, 7, 8}, "Authentication credentials invalid", ReasonAuth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.enhanced
			if e == ([3]int{}) {
				e, _ = EnhancedInText(c.text)
			}
			reason, adapter := Whose(Reply{Stage: c.stage, Code: c.code, Enhanced: e, Text: c.text})
			if reason != c.reason || adapter != (c.reason != "") {
				t.Errorf("Whose(%s %d %v %q) = %q %v, want %q", c.stage, c.code, e, c.text, reason, adapter, c.reason)
			}
		})
	}
}

// The structural rule, at its boundaries: every stage, with and without a
// reply, timed out or not.
func TestWhoseStages(t *testing.T) {
	t.Parallel()
	cases := []struct {
		stage    Stage
		code     int
		enhanced [3]int
		timedOut bool
		reason   string
	}{
		{StageConnect, 0, [3]int{}, false, ReasonConnection},
		{StageConnect, 0, [3]int{}, true, ReasonConnection},
		{StageTLS, 454, [3]int{4, 7, 0}, false, ReasonTLS},
		{StageTLS, 0, [3]int{}, false, ReasonTLS},
		{StageHello, 554, [3]int{5, 7, 1}, false, ReasonConnection},
		{StageAuth, 535, [3]int{5, 7, 8}, false, ReasonAuth},
		{StageAuth, 530, [3]int{5, 7, 0}, false, ReasonAuth},
		{StageAuth, 534, [3]int{5, 7, 9}, false, ReasonAuth},
		{StageMail, 421, [3]int{4, 7, 0}, false, ReasonServerUnavailable},
		{StageMail, 550, [3]int{5, 7, 1}, false, ReasonPolicy},
		{StageMail, 451, [3]int{4, 7, 1}, false, ReasonPolicy},
		{StageMail, 553, [3]int{5, 1, 8}, false, ReasonSenderRejected},
		{StageMail, 0, [3]int{}, true, ReasonStalled},
		{StageMail, 0, [3]int{}, false, ReasonConnection},
		{StageRcpt, 550, [3]int{5, 1, 1}, false, ""},
		{StageRcpt, 550, [3]int{5, 2, 1}, false, ""},
		{StageRcpt, 452, [3]int{4, 2, 2}, false, ""},
		{StageRcpt, 550, [3]int{5, 7, 1}, false, ""},
		{StageRcpt, 553, [3]int{5, 1, 6}, false, ""}, // X.1.6 is the recipient's: moved
		{StageRcpt, 553, [3]int{5, 1, 7}, false, ReasonSenderRejected},
		{StageRcpt, 553, [3]int{5, 1, 8}, false, ReasonSenderRejected},
		{StageRcpt, 553, [3]int{5, 1, 9}, false, ""},
		{StageRcpt, 420, [3]int{4, 4, 2}, false, ""},
		{StageRcpt, 421, [3]int{4, 4, 2}, false, ReasonServerUnavailable},
		{StageRcpt, 422, [3]int{4, 4, 2}, false, ""},
		{StageRcpt, 0, [3]int{}, true, ReasonStalled},
		{StageRcpt, 0, [3]int{}, false, ReasonConnection},
		{StageData, 554, [3]int{5, 6, 0}, false, ""},
		{StageData, 0, [3]int{}, false, ReasonConnection},
		{StageAfterData, 550, [3]int{5, 1, 1}, false, ""},
		{StageAfterData, 0, [3]int{}, true, ""}, // may have arrived: a normal retry, same Message-ID
		{StageAfterData, 0, [3]int{}, false, ""},
		{StageAfterData, 421, [3]int{4, 3, 0}, false, ReasonServerUnavailable},
	}
	for _, c := range cases {
		reason, adapter := Whose(Reply{Stage: c.stage, Code: c.code, Enhanced: c.enhanced, TimedOut: c.timedOut})
		if reason != c.reason || adapter != (c.reason != "") {
			t.Errorf("Whose(%s, %d, %v, %v) = %q %v, want %q", c.stage, c.code, c.enhanced, c.timedOut, reason, adapter, c.reason)
		}
	}
}

// A sender phrase counts only for policy (X.7), protocol (X.5), unspecified
// (X.0) or missing statuses; Postfix's party labels count for any status.
func TestSenderSideStatusBoundaries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		enhanced [3]int
		text     string
		reason   string
	}{
		{[3]int{5, 7, 1}, "Relay access denied", ReasonPolicy},
		{[3]int{5, 5, 1}, "Relay access denied", ReasonPolicy},
		{[3]int{5, 0, 0}, "Relay access denied", ReasonPolicy},
		{[3]int{}, "Relay access denied", ReasonPolicy},
		{[3]int{5, 1, 1}, "Relay access denied", ""},
		{[3]int{5, 2, 1}, "Relay access denied", ""},
		{[3]int{5, 6, 1}, "Relay access denied", ""},
		{[3]int{5, 2, 1}, "Sender address rejected: x", ReasonSenderRejected},
		{[3]int{4, 1, 8}, "whatever", ReasonSenderRejected},
		{[3]int{4, 1, 6}, "whatever", ""},
		{[3]int{5, 7, 1}, "", ""},
		{[3]int{5, 7, 1}, "SPF", ReasonPolicy},
		{[3]int{5, 7, 1}, "spf-fail", ReasonPolicy},
		{[3]int{5, 7, 1}, "nospf", ""},
		{[3]int{5, 7, 1}, "spf2", ""},
		{[3]int{5, 7, 1}, "RELAY\r\n  ACCESS   DENIED", ReasonPolicy},
	}
	for _, c := range cases {
		reason, ok := SenderSide(c.enhanced, c.text)
		if reason != c.reason || ok != (c.reason != "") {
			t.Errorf("SenderSide(%v, %q) = %q %v, want %q", c.enhanced, c.text, reason, ok, c.reason)
		}
	}
}

func TestEnhancedInText(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want [3]int
		ok   bool
	}{
		{"sorry, no mailbox here by that name. (#5.1.1)", [3]int{5, 1, 1}, true},
		{"5.7.1 at the start", [3]int{5, 7, 1}, true},
		{"code 4.2.2.", [3]int{4, 2, 2}, true},
		{"max 5.999.999", [3]int{5, 999, 999}, true},
		{"too long 5.1000.1", [3]int{}, false},
		{"class 3.1.1 is no class", [3]int{}, false},
		{"an ip 192.0.2.7", [3]int{}, false},
		{"version 15.1.1", [3]int{}, false},
		{"5.1.1.4 is four parts", [3]int{}, false},
		{"5.1", [3]int{}, false},
		{"", [3]int{}, false},
	}
	for _, c := range cases {
		got, ok := EnhancedInText(c.text)
		if got != c.want || ok != c.ok {
			t.Errorf("EnhancedInText(%q) = %v %v, want %v %v", c.text, got, ok, c.want, c.ok)
		}
	}
}

// Delivery statuses with diagnostic text as DSNs carry them.
func TestClassifyStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		enhanced [3]int
		text     string
		want     Status
	}{
		{"success", [3]int{2, 0, 0}, "250 2.0.0 Ok: queued as 4ABC", Status{}},
		{"user unknown", [3]int{5, 1, 1}, "smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown", Status{Hard, FaultRecipient, ReasonBadMailbox}},
		{"bad domain", [3]int{5, 1, 2}, "Host or domain name not found", Status{Hard, FaultRecipient, ReasonBadMailbox}},
		{"disabled", [3]int{5, 2, 1}, "The email account that you tried to reach is disabled.", Status{Hard, FaultRecipient, ReasonMailboxUnavailable}},
		{"over quota 5.2.2", [3]int{5, 2, 2}, "smtp; 552 5.2.2 Mailbox full: quota exceeded", Status{Soft, FaultRecipient, ReasonMailboxFull}},
		{"5.2.2 without quota text", [3]int{5, 2, 2}, "smtp; 552 5.2.2 rejected", Status{Hard, FaultRecipient, ReasonMailboxUnavailable}},
		{"over quota 4.2.2", [3]int{4, 2, 2}, "The email account that you tried to reach is over quota.", Status{Soft, FaultRecipient, ReasonMailboxFull}},
		{"5.2.1 quota text stays hard", [3]int{5, 2, 1}, "mailbox full", Status{Hard, FaultRecipient, ReasonMailboxUnavailable}},
		{"gmail rate", [3]int{4, 2, 1}, "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", Status{Soft, FaultRecipient, ReasonMailboxUnavailable}},
		{"dmarc", [3]int{5, 7, 26}, "Unauthenticated email from acme.example is not accepted due to domain's DMARC policy.", Status{Hard, FaultSender, ReasonAuthRejected}},
		{"spf", [3]int{5, 7, 23}, "The message was rejected because of Sender Policy Framework violation", Status{Hard, FaultSender, ReasonAuthRejected}},
		{"dkim", [3]int{5, 7, 1}, "DKIM signature verification failed", Status{Hard, FaultSender, ReasonAuthRejected}},
		{"smtp auth", [3]int{5, 7, 8}, "535 5.7.8 Error: authentication failed", Status{Hard, FaultSender, ReasonAuthRejected}},
		{"exchange not authenticated", [3]int{5, 7, 57}, "Client not authenticated to send mail", Status{Hard, FaultSender, ReasonAuthRejected}},
		{"blocked ip", [3]int{5, 7, 1}, "Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"spam content", [3]int{5, 7, 1}, "Our system has detected that this message is likely unsolicited mail.", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"not authorized", [3]int{5, 7, 1}, "Delivery not authorized, message refused", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"4.7 soft policy", [3]int{4, 7, 0}, "Temporary rejection: try again later", Status{Soft, FaultSender, ReasonPolicyRejected}},
		{"routing", [3]int{5, 4, 4}, "Unable to route", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"loop", [3]int{5, 4, 6}, "mail forwarding loop", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"system", [3]int{4, 3, 0}, "Other or undefined mail system status", Status{Soft, FaultSender, ReasonPolicyRejected}},
		{"media", [3]int{5, 6, 0}, "Message content rejected", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"5.0.0 reputation", [3]int{5, 0, 0}, "Mail rejected due to poor sender reputation", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"5.0.0 plain", [3]int{5, 0, 0}, "<gone@example.com>: unknown user", Status{Hard, FaultRecipient, ReasonRecipientRejected}},
		{"5.5.x recipient", [3]int{5, 5, 4}, "Invalid recipient address syntax", Status{Hard, FaultRecipient, ReasonRecipientRejected}},
		{"5.5.x helo", [3]int{5, 5, 2}, "<localhost>: Helo command rejected: need fully-qualified hostname", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"5.1.0 sender label", [3]int{5, 1, 0}, "<ada@example.org>: Sender address rejected: User unknown in local recipient table", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"5.1.8 sender domain", [3]int{5, 1, 8}, "Domain of sender address does not exist", Status{Hard, FaultSender, ReasonPolicyRejected}},
		{"qmail status in text", [3]int{}, "sorry, no mailbox here by that name. (#5.1.1)", Status{Hard, FaultRecipient, ReasonBadMailbox}},
		{"nothing known", [3]int{}, "it failed", Status{"", FaultRecipient, ReasonRecipientRejected}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ClassifyStatus(c.enhanced, c.text); got != c.want {
				t.Errorf("ClassifyStatus(%v, %q) = %+v, want %+v", c.enhanced, c.text, got, c.want)
			}
		})
	}
}
