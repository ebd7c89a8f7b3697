package smtpreply

import "strings"

// Fault says whose failure a delivery status is.
type Fault string

// Faults.
const (
	FaultNone      Fault = ""          // not a failure (2.x.x)
	FaultRecipient Fault = "recipient" // the prospect's address or mailbox
	FaultSender    Fault = "sender"    // the sending adapter, its domain or its IP
)

// Severities of a failed delivery.
const (
	Hard = "hard" // permanent
	Soft = "soft" // temporary: may succeed later
)

// Reasons of a status (Status.Reason).
const (
	// The sender's: SMTP AUTH or the sender domain's SPF/DKIM/DMARC failed.
	ReasonAuthRejected = "auth_rejected"
	// The sender's: any other sender-side failure — a blocked IP or domain,
	// relaying refused, "not authorized", content refused as spam, a sender
	// address refused, and routing and system errors (X.3.x, X.4.x) of the
	// sending side's relay.
	ReasonPolicyRejected = "policy_rejected"
	// The recipient's: the address does not exist or is malformed (X.1.x).
	ReasonBadMailbox = "bad_mailbox"
	// The recipient's: the mailbox is over its quota (X.2.2 with
	// over-quota text; always soft).
	ReasonMailboxFull = "mailbox_full"
	// The recipient's: the mailbox exists but refuses mail (X.2.x).
	ReasonMailboxUnavailable = "mailbox_unavailable"
	// The recipient's: any other refusal about the recipient.
	ReasonRecipientRejected = "recipient_rejected"
)

// Status is a delivery status classified.
type Status struct {
	Severity string // Hard, Soft, or "" when the status is not a failure
	Fault    Fault
	Reason   string // one of the Reason… constants above; "" when not a failure
}

// ClassifyStatus decides, for a delivery report's status (RFC 3463, e.g.
// from a DSN's Status: field) and its diagnostic text (Diagnostic-Code, or
// the human-readable part), whether the failure is hard or soft and whose
// it is. It is the DSN side of the rule Whose applies to live replies:
//
//   - 2.x.x is not a failure (FaultNone);
//   - 5.x.x is hard and 4.x.x soft, except X.2.2 with over-quota text,
//     which is soft (the mailbox may be emptied);
//   - recipient failures: X.1.x (bad address), X.2.x (mailbox), X.5.x and
//     X.0.0 about the recipient — unless the text names the sender, client
//     or HELO (SenderSide), or the subject is the sender's address (X.1.7,
//     X.1.8);
//   - sender failures: X.7.x (authentication, SPF/DKIM/DMARC → auth_rejected;
//     blocked IP or domain, spam content, "not authorized" → policy_rejected),
//     X.3.x and X.4.x (the sending side's routing and system errors), X.6.x
//     (the message's content or format), and X.0.0 or X.5.x with text naming
//     the sender's side or its reputation.
//
// A zero status (none given) is classified from the text's status when it
// carries one (EnhancedInText), and otherwise as a recipient failure of
// unknown severity: the caller decides it from its own evidence.
func ClassifyStatus(enhanced [3]int, diagnostic string) Status {
	if enhanced[0] == 0 {
		if e, ok := EnhancedInText(diagnostic); ok {
			enhanced = e
		}
	}
	class, subject, detail := enhanced[0], enhanced[1], enhanced[2]
	var severity string
	switch class {
	case 2:
		return Status{}
	case 4:
		severity = Soft
	case 5:
		severity = Hard
	}
	t := normalize(diagnostic)
	sender := func() Status {
		if subject == 7 && (detail == 0 || detail == 8 || detail == 57) && mentionsAuth(t) || authPolicy(t) {
			return Status{Severity: severity, Fault: FaultSender, Reason: ReasonAuthRejected}
		}
		return Status{Severity: severity, Fault: FaultSender, Reason: ReasonPolicyRejected}
	}
	if _, ok := SenderSide(enhanced, diagnostic); ok {
		return sender()
	}
	switch subject {
	case 7, 3, 4, 6:
		return sender()
	case 1:
		return Status{Severity: severity, Fault: FaultRecipient, Reason: ReasonBadMailbox}
	case 2:
		if detail == 2 && overQuota(t) {
			return Status{Severity: Soft, Fault: FaultRecipient, Reason: ReasonMailboxFull}
		}
		return Status{Severity: severity, Fault: FaultRecipient, Reason: ReasonMailboxUnavailable}
	case 0:
		if reputation(t) {
			return sender()
		}
	}
	return Status{Severity: severity, Fault: FaultRecipient, Reason: ReasonRecipientRejected}
}

func containsAny(t string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

// mentionsAuth: SMTP authentication of the client.
func mentionsAuth(t string) bool {
	return containsAny(t, "authenticat", "credentials")
}

// authPolicy: the sender domain's authentication (SPF, DKIM, DMARC).
func authPolicy(t string) bool {
	return containsWord(t, "spf") || containsWord(t, "dkim") || containsWord(t, "dmarc") ||
		containsAny(t, "sender policy framework", "sender is unauthenticated", "unauthenticated email")
}

// overQuota: X.2.2 text saying the mailbox is full.
func overQuota(t string) bool {
	return containsAny(t, "quota", "mailbox full", "mailbox is full", "mailbox has exceeded", "storage", "insufficient space", "out of space", "too much mail")
}

// reputation: X.0.0 text blaming the sender's reputation.
func reputation(t string) bool {
	return containsAny(t, "reputation", "spam", "blocked", "blacklist", "blocklist", "block list", "black list", "spamhaus", "your ip", "not authorized", "policy")
}
