package ingest

import (
	"regexp"
	"strings"
)

// capped returns m, or a shallow copy whose subject and addresses are cut
// to the sizes classification reads, so no pattern ever runs over a huge
// header whatever the input (docs/ingest.md#raw-input).
func capped(m *Message) *Message {
	if len(m.Subject) <= maxSubjectRead && len(m.From) <= 998 && len(m.To) <= 998 {
		return m
	}
	cp := *m
	cp.Subject = truncate(cp.Subject, maxSubjectRead)
	cp.From = truncate(cp.From, 998)
	cp.To = truncate(cp.To, 998)
	return &cp
}

var (
	// "<ann@example.com>:" on its own line (qmail, Yahoo, Postfix text).
	bracketLine = regexp.MustCompile(`(?m)^[ \t]*<([^<>\r\n]{1,320})>:?[ \t]*\r?$`)
	// "<ann@example.com>: host mx said: 550 …" (Postfix text part).
	bracketLead = regexp.MustCompile(`(?m)^[ \t]*<([^<>\r\n]{1,320})>:[ \t]+\S`)
	// Sentences that name the failed address, in the shapes MTAs write.
	namedRecipient = regexp.MustCompile(`(?i)(?:your message to|delivery to the following recipients? failed[^\n]*\n\s*|the following addresse?s? failed[^\n]*\n\s*|following recipients?:?\s*\n\s*|wasn't delivered to|was not delivered to|couldn't be delivered to|could not be delivered to|delivery has failed to these recipients or groups:\s*\n\s*|rcpt to:\s*|final-recipient:\s*(?:rfc822;)?\s*|original-recipient:\s*(?:rfc822;)?\s*|unable to deliver (?:your )?message to(?: the following address(?:es)?)?:?\s*\n?\s*)<?([^\s<>()"',;]{1,320}@[^\s<>()"',;]{1,255})`)
	// An address on a line that says why it failed ("ann@x... User unknown").
	failedNear = regexp.MustCompile(`(?im)<?([a-z0-9._%+=-]{1,64}@[a-z0-9.-]{1,253}\.[a-z]{2,63})>?[^\n]{0,80}(user unknown|unknown user|does not exist|no such (user|mailbox)|mailbox (unavailable|not found|disabled|full)|recipient (address )?rejected|invalid (recipient|mailbox|address)|not found|over quota|quota exceeded)`)
)

// textBounceRecipient is the failed address of a text bounce:
// X-Failed-Recipients (Exim, Gmail), the first "<address>:" line (qmail,
// Yahoo), a sentence naming it ("Your message to … couldn't be
// delivered", "The following address(es) failed:"), an address next to
// the failure, else the single To of the enclosed original. Only
// addr-specs count: a "mailto:" prefix is stripped; pipe commands, files
// and bare "@host" are refused (AddrSpec).
func textBounceRecipient(m *Message) string {
	for _, v := range strings.Split(m.Header("X-Failed-Recipients"), ",") {
		if a := AddrSpec(v); a != "" {
			return a
		}
	}
	text := truncate(m.BodyText, 64<<10)
	if strings.TrimSpace(text) == "" && m.BodyHTML != "" {
		text = HTMLToText(m.BodyHTML)
	}
	if loc := copyMarker.FindStringIndex(text); loc != nil {
		text = text[:loc[0]] // the returned message is not the report
	}
	own := strings.ToLower(m.To)
	ok := func(s string) string {
		a := AddrSpec(s)
		if a == "" || strings.EqualFold(a, own) || isDaemon(a) {
			return ""
		}
		return a
	}
	for _, mm := range bracketLine.FindAllStringSubmatch(text, 20) {
		if a := ok(mm[1]); a != "" {
			return a
		}
	}
	for _, re := range []*regexp.Regexp{bracketLead, namedRecipient, failedNear} {
		for _, mm := range re.FindAllStringSubmatch(text, 20) {
			if a := ok(mm[1]); a != "" {
				return a
			}
		}
	}
	return m.EnclosedRecipient
}

// isDaemon reports whether an address is a mail system's own.
func isDaemon(addr string) bool {
	local := strings.ToLower(addr)
	if i := strings.IndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	switch local {
	case "mailer-daemon", "postmaster", "mail-daemon", "mailer_daemon", "noreply", "no-reply", "root":
		return true
	}
	return false
}

// footerLink marks a line that offers a link rather than asks for
// something ("To unsubscribe, click here", "https://…/unsubscribe").
var footerLink = regexp.MustCompile(`(?i)(https?://|www\.|click|link|klicken|cliquez|clic|clique|klik|tryck|manage (your )?(preferences|subscription)|notification settings)`)

// explicitUnsubscribe reports whether an auto-submitted text asks to stop
// in its own words: a line with an unsubscribe phrase that is not a
// newsletter or ticket-system footer link.
func explicitUnsubscribe(text string) bool {
	if !unsubscribePhrases.MatchString(text) {
		return false
	}
	for _, line := range strings.Split(text, "\n") {
		if unsubscribePhrases.MatchString(line) && !footerLink.MatchString(line) {
			return true
		}
	}
	return false
}
