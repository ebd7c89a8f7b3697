package esp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// MailgunSignature is the signature object of a Mailgun webhook body.
type MailgunSignature struct {
	Timestamp string `json:"timestamp"`
	Token     string `json:"token"`
	Signature string `json:"signature"`
}

// VerifyMailgun checks signature.signature = hex HMAC-SHA256(key,
// timestamp+token), and that timestamp lies within Tolerance of now.
func VerifyMailgun(key string, s MailgunSignature, now time.Time) error {
	if key == "" || s.Timestamp == "" || s.Token == "" || s.Signature == "" {
		return sigErr("signature.timestamp, token and signature are required")
	}
	ts, err := strconv.ParseInt(s.Timestamp, 10, 64)
	if err != nil {
		return sigErr("signature.timestamp is not a Unix time")
	}
	if !within(time.Unix(ts, 0), now) {
		return sigErr("signature.timestamp is outside the tolerance")
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(s.Timestamp + s.Token))
	got, err := hex.DecodeString(s.Signature)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return sigErr("signature does not match")
	}
	return nil
}

type mailgunBody struct {
	Signature MailgunSignature `json:"signature"`
	EventData struct {
		ID        string  `json:"id"`
		Event     string  `json:"event"`
		Severity  string  `json:"severity"`
		Reason    string  `json:"reason"`
		Timestamp float64 `json:"timestamp"`
		Recipient string  `json:"recipient"`
		Delivery  struct {
			Code        int    `json:"code"`
			Message     string `json:"message"`
			Description string `json:"description"`
		} `json:"delivery-status"`
		Message struct {
			Headers struct {
				MessageID string `json:"message-id"`
			} `json:"headers"`
		} `json:"message"`
	} `json:"event-data"`
}

// ParseMailgun reads a Mailgun webhook body: its signature and its event.
// failed is a bounce (severity permanent or temporary; reason "suppress-*"
// or "generic" with the delivery status), complained a complaint,
// unsubscribed an unsubscribe; the rest is ignored. event-data.id is the
// event id; message.headers.message-id names our message.
func ParseMailgun(body []byte) (MailgunSignature, Event, error) {
	var in mailgunBody
	if err := json.Unmarshal(body, &in); err != nil {
		return MailgunSignature{}, Event{}, err
	}
	d := in.EventData
	ev := Event{ID: d.ID, Type: d.Event, Recipient: d.Recipient, MessageID: normID(d.Message.Headers.MessageID), Kind: KindIgnored}
	if d.Timestamp > 0 {
		ev.Time = time.Unix(int64(d.Timestamp), 0).UTC()
	}
	switch d.Event {
	case "failed":
		ev.Kind = KindBounce
		ev.Type = "failed/" + d.Severity
		ev.Permanent = d.Severity == "permanent"
		ev.Diagnostic = d.Delivery.Message
		if ev.Diagnostic == "" {
			ev.Diagnostic = d.Delivery.Description
		}
		if d.Delivery.Code != 0 {
			ev.Diagnostic = strconv.Itoa(d.Delivery.Code) + " " + ev.Diagnostic
		}
	case "complained":
		ev.Kind = KindComplaint
	case "unsubscribed":
		ev.Kind = KindUnsubscribe
	}
	return in.Signature, ev, nil
}
