package ingest

import (
	"encoding/json"
	"regexp"
	"strings"
)

// Complaints that are not ARF reports (docs/ingest.md#complaints): the
// feedback loops and ESP notifications seen in the wild that arrive as
// ordinary mail.
//
//   - Hotmail/Outlook JMRP: the reported original carries
//     X-HmXmrOriginalRecipient (in the enclosed message/rfc822, the
//     headers or a pasted copy), or a complaint sent by staff@hotmail.com
//     or another Microsoft feedback address;
//   - Yahoo's complaint feedback loop (CFL) forwards that are not ARF;
//   - an iCloud/Apple notice that a recipient opted out or reported junk;
//   - Amazon SES complaint notifications relayed by mail through SNS (the
//     JSON body, or the SNS envelope around it, with
//     "notificationType":"Complaint").
//
// A provider's feedback address alone is not enough (people write from
// hotmail.com and yahoo.com): the notice must also read as a complaint.

// SignalComplaintNotice is the signal of a non-ARF complaint.
const SignalComplaintNotice = "complaint_notice"

var (
	complaintWords = regexp.MustCompile(`(?i)(complaint about (a |this |the )?message|complaint (report|notification|notice)|feedback loop|junk mail report|reported (this|the|a|your) (message|e-?mail) as (spam|junk)|marked (this|the|a|your) (message|e-?mail) as (spam|junk)|(reported|marked) as (spam|junk)|spam complaint|abuse report|opted out of (receiving )?(mail|e-?mails?|messages)|has (chosen|asked) (not )?to (no longer )?receive|no longer wishes to receive)`)
	hmxmrLine      = regexp.MustCompile(`(?im)^[ \t>]*x-hmxmroriginalrecipient[ \t]*:[ \t]*(\S{3,320})`)
	rcptLine       = regexp.MustCompile(`(?im)^[ \t>]*(?:original-rcpt-to|complained recipient|recipient|reported by|complainant|e-?mail address)[ \t]*:[ \t]*(\S{3,320})`)
	sesComplaint   = regexp.MustCompile(`\\?"notificationType\\?"\s*:\s*\\?"Complaint\\?"`)
)

// feedbackSender reports whether from is a provider's feedback or
// notification address (not a person at a free-mail domain).
func feedbackSender(from string) bool {
	from = strings.ToLower(strings.TrimSpace(from))
	at := strings.LastIndexByte(from, '@')
	if at < 0 {
		return false
	}
	local, domain := from[:at], from[at+1:]
	switch domain {
	case "hotmail.com", "outlook.com", "live.com", "msn.com", "microsoft.com", "yahoo.com", "yahoo-inc.com", "yahooinc.com", "icloud.com", "me.com", "mac.com", "apple.com":
		switch local {
		case "staff", "feedback", "fbl", "jmrp", "abuse", "noreply", "no-reply", "do-not-reply", "donotreply", "complaints", "junkmail", "icloud", "cfl":
			return true
		}
		return false
	}
	for _, d := range []string{".hotmail.com", ".outlook.com", ".microsoft.com", ".yahoo.com", ".yahooinc.com", ".icloud.com", ".apple.com", ".amazonses.com", "sns.amazonaws.com"} {
		if strings.HasSuffix(domain, d) {
			return true
		}
	}
	return false
}

// isComplaintNotice recognises the non-ARF complaints above. The JMRP
// marker counts only in mail from a feedback address: Outlook.com adds
// X-HmXmrOriginalRecipient to mail its mailboxes receive, so a reply
// bridged from such a mailbox carries it too.
func isComplaintNotice(m *Message) bool {
	body := truncate(m.BodyText, 64<<10)
	if strings.TrimSpace(body) == "" && m.BodyHTML != "" {
		body = HTMLToText(m.BodyHTML)
	}
	if sesComplaint.MatchString(body) {
		return true
	}
	if !feedbackSender(m.From) || bounceSubject.MatchString(m.Subject) {
		return false
	}
	if m.EnclosedJMRP || m.Header("X-Hmxmroriginalrecipient") != "" || hmxmrLine.MatchString(body) {
		return true
	}
	return complaintWords.MatchString(m.Subject) || complaintWords.MatchString(body)
}

// sesNotification is the part of an SES notification we read.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	Complaint        struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
	} `json:"complaint"`
	Mail struct {
		Destination   []string `json:"destination"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
	} `json:"mail"`
}

// sesBody reads an SES notification from a mail body: the JSON itself, or
// the SNS envelope whose "Message" holds it.
func sesBody(body string) (sesNotification, bool) {
	var n sesNotification
	start, end := strings.IndexByte(body, '{'), strings.LastIndexByte(body, '}')
	if start < 0 || end <= start {
		return n, false
	}
	js := body[start : end+1]
	var envelope struct {
		Type    string `json:"Type"`
		Message string `json:"Message"`
	}
	if json.Unmarshal([]byte(js), &envelope) == nil && envelope.Message != "" {
		js = envelope.Message
	}
	if err := json.Unmarshal([]byte(js), &n); err != nil || n.NotificationType == "" {
		return n, false
	}
	return n, true
}

// complaintRecipient is the complaining address a non-ARF complaint
// names, when it names one.
func complaintRecipient(m *Message) string {
	body := truncate(m.BodyText, 64<<10)
	if n, ok := sesBody(body); ok {
		for _, r := range n.Complaint.ComplainedRecipients {
			if a := AddrSpec(r.EmailAddress); a != "" {
				return a
			}
		}
		for _, d := range n.Mail.Destination {
			if a := AddrSpec(d); a != "" {
				return a
			}
		}
	}
	if a := AddrSpec(m.Header("X-Hmxmroriginalrecipient")); a != "" {
		return a
	}
	if m.EnclosedJMRP && m.EnclosedRecipient != "" {
		return m.EnclosedRecipient
	}
	for _, re := range []*regexp.Regexp{hmxmrLine, rcptLine} {
		for _, mm := range re.FindAllStringSubmatch(body, 5) {
			if a := AddrSpec(mm[1]); a != "" && !isDaemon(a) {
				return a
			}
		}
	}
	return m.EnclosedRecipient
}

// complaintOriginalID is the Message-ID of our message a non-ARF
// complaint is about.
func complaintOriginalID(m *Message) string {
	if n, ok := sesBody(truncate(m.BodyText, 64<<10)); ok {
		for _, h := range n.Mail.Headers {
			if strings.EqualFold(h.Name, "Message-ID") {
				if id := NormalizeID(h.Value); id != "" {
					return id
				}
			}
		}
		if id := NormalizeID(n.Mail.CommonHeaders.MessageID); id != "" {
			return id
		}
	}
	return originalMessageID(m)
}
