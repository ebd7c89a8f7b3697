// Package smtpreply decides whose failure an SMTP reply or a delivery status
// is: the recipient's (a bad or full mailbox — the prospect's) or the
// sender's (the adapter: its connection, TLS, authentication, its address,
// its client host or HELO, its domain's SPF/DKIM/DMARC, a blocklisted IP).
//
// It is pure — no I/O, standard library only — so the two places that meet
// such failures share one rule: package dispatch for the replies of a live
// SMTP conversation (Whose), and the inbound DSN classifier for the statuses
// of delivery reports (ClassifyStatus). docs/sending.md ("Whose failure is
// it?") describes the rule for operators.
package smtpreply

import (
	"strings"
)

// Stage is the point of an SMTP conversation a failure happened at.
type Stage string

// The stages of an SMTP conversation, in order.
const (
	StageConnect   Stage = "connect"    // TCP connect (and implicit TLS)
	StageTLS       Stage = "tls"        // STARTTLS and its handshake
	StageHello     Stage = "helo"       // greeting and EHLO/HELO
	StageAuth      Stage = "auth"       // AUTH
	StageMail      Stage = "mail"       // MAIL FROM
	StageRcpt      Stage = "rcpt"       // RCPT TO
	StageData      Stage = "data"       // the DATA command, before any data
	StageAfterData Stage = "after_data" // the data and the reply to its final dot
)

// Reasons a failure is the adapter's.
const (
	ReasonConnection        = "connection"         // refused, reset, closed, no reply
	ReasonTLS               = "tls"                // STARTTLS refused, handshake or certificate failure
	ReasonAuth              = "auth"               // AUTH refused, or a reply saying the client is not authenticated
	ReasonPolicy            = "policy"             // a policy rejection of the client, HELO, relay or sender domain
	ReasonSenderRejected    = "sender_rejected"    // the envelope sender itself refused
	ReasonServerUnavailable = "server_unavailable" // 421: the server is closing the connection
	ReasonStalled           = "stalled"            // no reply before the deadline
)

// Reply is what a stage of a conversation ended with. Code and Enhanced are
// the server's reply (zero when there was none: a network error, or a
// timeout when TimedOut); Text is the reply's text.
type Reply struct {
	Stage    Stage
	Code     int
	Enhanced [3]int // RFC 3463 status; zero when absent
	Text     string
	TimedOut bool
}

// Whose decides whether a failure is the adapter's (adapter true, with a
// reason) or the recipient's (adapter false, reason "").
//
// Everything before MAIL FROM, every MAIL FROM rejection, a 421 anywhere
// and a connection lost or stalled before the data went out are the
// adapter's. Replies to RCPT and DATA are the recipient's unless their text
// names the sender, the client or the HELO (SenderSide): many relays,
// Postfix by default (smtpd_delay_reject), answer sender, client and HELO
// restrictions at RCPT. A connection lost after the data is the
// recipient's (the message may have arrived: it is retried as a normal
// attempt with the same Message-ID).
func Whose(r Reply) (reason string, adapter bool) {
	switch {
	case r.Stage == StageConnect:
		return ReasonConnection, true
	case r.Stage == StageTLS:
		return ReasonTLS, true
	case r.Stage == StageAuth:
		return ReasonAuth, true
	case r.Code == 421:
		return ReasonServerUnavailable, true
	case r.Code == 0 && r.Stage == StageAfterData:
		return "", false
	case r.Code == 0 && r.TimedOut:
		return ReasonStalled, true
	case r.Code == 0 || r.Stage == StageHello:
		return ReasonConnection, true
	case r.Stage == StageMail && r.Enhanced[1] == 7:
		return ReasonPolicy, true
	case r.Stage == StageMail:
		return ReasonSenderRejected, true
	}
	// RCPT, DATA and the reply to the data.
	if reason, ok := SenderSide(r.Enhanced, r.Text); ok {
		return reason, true
	}
	return "", false
}

// SenderSide reports whether a rejection given about a recipient (a reply
// to RCPT or DATA, or a DSN's status) is really about the sender, and why:
//
//   - a status whose subject is the sender's address (X.1.7 bad sender
//     mailbox syntax, X.1.8 bad sender system address): sender_rejected;
//   - text carrying a label that names the party — Postfix's "Sender
//     address rejected", "Client host rejected", "Helo command rejected",
//     Exchange's "SendAsDenied" — whatever the status (Postfix gives 5.1.0
//     or 4.1.8 with the sender label too, Exchange 5.2.0 with SendAsDenied):
//     sender_rejected for the sender, policy for the client and HELO;
//   - for a policy, protocol or unspecified status (X.7.x, X.5.x, X.0.x, or
//     none), text naming the sender's side in other servers' words:
//     ownership of the sender address ("not owned by user", Exchange
//     Online's "not allowed to send as"), relaying refused
//     ("Relay access denied", "Relaying denied", qmail's "allowed
//     rcpthosts"), the client not authenticated (auth), the sending IP or
//     host on a blocklist, SPF/DKIM/DMARC of the sender's domain (policy).
//
// Text about the recipient's mailbox — Gmail's "The user you are trying to
// contact is receiving mail at a rate …", "Recipient address rejected",
// "mailbox full" — never matches: a sender phrase must be present.
func SenderSide(enhanced [3]int, text string) (reason string, ok bool) {
	if enhanced[0] != 0 && enhanced[1] == 1 && (enhanced[2] == 7 || enhanced[2] == 8) {
		return ReasonSenderRejected, true
	}
	t := normalize(text)
	switch {
	case strings.Contains(t, "sender address rejected"), strings.Contains(t, "sendasdenied"):
		return ReasonSenderRejected, true
	case strings.Contains(t, "client host rejected"), strings.Contains(t, "helo command rejected"):
		return ReasonPolicy, true
	}
	if enhanced[0] != 0 && enhanced[1] != 7 && enhanced[1] != 5 && enhanced[1] != 0 {
		return "", false
	}
	for _, p := range senderPhrases {
		if p.word && containsWord(t, p.text) || !p.word && strings.Contains(t, p.text) {
			return p.reason, true
		}
	}
	return "", false
}

type phrase struct {
	text   string
	reason string
	word   bool // match as a whole word only
}

// senderPhrases are lower-case, with runs of white space as one space.
var senderPhrases = []phrase{
	// The sender address is not the client's to use.
	{text: "not owned by user", reason: ReasonSenderRejected},
	{text: "not allowed to send as", reason: ReasonSenderRejected},
	{text: "permissions to send as", reason: ReasonSenderRejected},
	{text: "sender verify failed", reason: ReasonSenderRejected},
	{text: "domain of sender address", reason: ReasonSenderRejected},
	{text: "sender not authorized", reason: ReasonSenderRejected},
	// The client must authenticate first.
	{text: "client not authenticated", reason: ReasonAuth},
	{text: "authentication required", reason: ReasonAuth},
	{text: "must be authenticated", reason: ReasonAuth},
	{text: "authentication is required", reason: ReasonAuth},
	// Relaying refused: the client may not send through this server.
	{text: "relay access denied", reason: ReasonPolicy},
	{text: "relaying denied", reason: ReasonPolicy},
	{text: "relay not permitted", reason: ReasonPolicy},
	{text: "unable to relay", reason: ReasonPolicy},
	{text: "relaying not allowed", reason: ReasonPolicy},
	{text: "allowed rcpthosts", reason: ReasonPolicy},
	// The client's IP or host is blocked.
	{text: "blocked using", reason: ReasonPolicy},
	{text: "black list", reason: ReasonPolicy},
	{text: "blacklist", reason: ReasonPolicy},
	{text: "block list", reason: ReasonPolicy},
	{text: "blocklist", reason: ReasonPolicy},
	{text: "spamhaus", reason: ReasonPolicy},
	{text: "your ip", reason: ReasonPolicy},
	{text: "sending ip", reason: ReasonPolicy},
	{text: "from this ip", reason: ReasonPolicy},
	{text: "poor reputation", reason: ReasonPolicy},
	// The sender domain's authentication failed.
	{text: "dmarc", reason: ReasonPolicy, word: true},
	{text: "spf", reason: ReasonPolicy, word: true},
	{text: "dkim", reason: ReasonPolicy, word: true},
	{text: "sender policy framework", reason: ReasonPolicy},
	{text: "sender is unauthenticated", reason: ReasonPolicy},
	{text: "unauthenticated email", reason: ReasonPolicy},
}

// normalize lower-cases text and folds runs of white space (multi-line
// replies are joined by newlines) into one space.
func normalize(text string) string {
	return strings.Join(strings.Fields(strings.ToLower(text)), " ")
}

// containsWord reports whether w occurs in t not preceded or followed by a
// letter or digit.
func containsWord(t, w string) bool {
	for i := 0; ; {
		j := strings.Index(t[i:], w)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(w)
		if (j == 0 || !alnum(t[j-1])) && (end == len(t) || !alnum(t[end])) {
			return true
		}
		i = j + 1
	}
}

func alnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9'
}

// EnhancedInText finds an RFC 3463 status in a reply's text when the reply
// did not start with one: qmail ends its replies with "(#5.1.1)", others
// put it after the code's dash ("550-5.7.1 …" continuation lines). It
// returns the first "C.S.D" with C 2, 4 or 5, S and D of 1–3 digits, at a
// word start; ok false when there is none.
func EnhancedInText(text string) (enhanced [3]int, ok bool) {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c != '2' && c != '4' && c != '5' {
			continue
		}
		if i > 0 && (alnum(text[i-1]) || text[i-1] == '.') {
			continue
		}
		if e, n := parseStatus(text[i:]); n > 0 {
			if end := i + n; end == len(text) || !(alnum(text[end]) || text[end] == '.' && end+1 < len(text) && alnum(text[end+1])) {
				return e, true
			}
		}
	}
	return [3]int{}, false
}

// parseStatus parses "C.S.D" at the start of s, returning its length.
func parseStatus(s string) ([3]int, int) {
	var e [3]int
	e[0] = int(s[0] - '0')
	i := 1
	for part := 1; part < 3; part++ {
		if i >= len(s) || s[i] != '.' {
			return [3]int{}, 0
		}
		i++
		start := i
		v := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' && i-start < 3 {
			v = v*10 + int(s[i]-'0')
			i++
		}
		if i == start || (i < len(s) && s[i] >= '0' && s[i] <= '9') {
			return [3]int{}, 0
		}
		e[part] = v
	}
	return e, i
}
