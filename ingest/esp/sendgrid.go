package esp

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// VerifySendGrid checks a SendGrid Event Webhook signature: the
// X-Twilio-Email-Event-Webhook-Signature header is a base64 ASN.1 ECDSA
// P-256 signature of SHA-256(timestamp || body), timestamp the
// X-Twilio-Email-Event-Webhook-Timestamp header, publicKey the base64 DER
// key SendGrid shows. SendGrid documents no freshness window, so the
// timestamp is only signed, not bounded: the event ids make replays
// duplicates.
func VerifySendGrid(publicKey, signature, timestamp string, body []byte) error {
	k, err := ParseECDSAPublicKey(publicKey)
	if err != nil {
		return sigErr("unusable public key")
	}
	if signature == "" || timestamp == "" {
		return sigErr("the signature and timestamp headers are required")
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return sigErr("the signature is not base64")
	}
	h := sha256.New()
	h.Write([]byte(timestamp))
	h.Write(body)
	if !ecdsa.VerifyASN1(k, h.Sum(nil), sig) {
		return sigErr("the signature does not match")
	}
	return nil
}

type sendgridEvent struct {
	Email     string `json:"email"`
	Timestamp int64  `json:"timestamp"`
	SMTPID    string `json:"smtp-id"`
	Event     string `json:"event"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	EventID   string `json:"sg_event_id"`
	MessageID string `json:"sg_message_id"`
}

// ParseSendGrid reads an Event Webhook body, a JSON array of events:
// bounce (type bounce: by its status; type blocked: the sender's),
// dropped (Bounced Address and Invalid: a permanent bounce; Unsubscribed
// Address: an unsubscribe; Spam Reporting Address: a complaint; other
// reasons, e.g. spam content: the sender's), spamreport (complaint),
// unsubscribe and group_unsubscribe (unsubscribe); the rest is ignored.
// sg_event_id is the event id, smtp-id our Message-ID, sg_message_id
// (up to ".filter") the provider message id.
func ParseSendGrid(body []byte) ([]Event, error) {
	var in []sendgridEvent
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(in))
	for _, e := range in {
		pid := e.MessageID
		if i := strings.Index(pid, ".filter"); i > 0 {
			pid = pid[:i]
		}
		ev := Event{ID: e.EventID, Type: e.Event, Recipient: e.Email, MessageID: normID(e.SMTPID), ProviderMessageID: pid, Kind: KindIgnored,
			Status: e.Status, Diagnostic: e.Reason}
		if e.Timestamp > 0 {
			ev.Time = time.Unix(e.Timestamp, 0).UTC()
		}
		switch e.Event {
		case "bounce":
			ev.Kind = KindBounce
			if e.Type != "" {
				ev.Type += "/" + e.Type
			}
			ev.SenderSide = e.Type == "blocked"
			ev.Permanent = e.Type != "blocked" && strings.HasPrefix(e.Status, "5")
		case "dropped":
			ev.Type += "/" + e.Reason
			switch e.Reason {
			case "Bounced Address", "Invalid":
				ev.Kind, ev.Permanent = KindBounce, true
				if ev.Status == "" {
					ev.Status = "5.1.1"
				}
			case "Unsubscribed Address":
				ev.Kind = KindUnsubscribe
			case "Spam Reporting Address":
				ev.Kind = KindComplaint
			default:
				ev.Kind, ev.SenderSide = KindBounce, true
			}
		case "spamreport":
			ev.Kind = KindComplaint
		case "unsubscribe", "group_unsubscribe":
			ev.Kind = KindUnsubscribe
		}
		out = append(out, ev)
	}
	return out, nil
}
