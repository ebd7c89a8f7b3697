package esp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"strconv"
)

// VerifyBasicAuth compares the request's basic-auth credentials with the
// configured ones in constant time (Postmark signs nothing: the webhook
// URL carries credentials).
func VerifyBasicAuth(wantUser, wantPass, user, pass string, ok bool) error {
	if !ok || wantUser == "" || wantPass == "" {
		return sigErr("basic authentication is required")
	}
	hu, hp := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	wu, wp := sha256.Sum256([]byte(wantUser)), sha256.Sum256([]byte(wantPass))
	if subtle.ConstantTimeCompare(hu[:], wu[:])&subtle.ConstantTimeCompare(hp[:], wp[:]) != 1 {
		return sigErr("basic authentication does not match")
	}
	return nil
}

type postmarkBody struct {
	RecordType     string      `json:"RecordType"`
	ID             json.Number `json:"ID"`
	Type           string      `json:"Type"`
	MessageID      string      `json:"MessageID"`
	Email          string      `json:"Email"`
	Recipient      string      `json:"Recipient"`
	Description    string      `json:"Description"`
	Details        string      `json:"Details"`
	BouncedAt      string      `json:"BouncedAt"`
	ChangedAt      string      `json:"ChangedAt"`
	SuppressSend   bool        `json:"SuppressSending"`
	SuppressReason string      `json:"SuppressionReason"`
}

// postmarkSender are Bounce types that are the sender's problem, not the
// recipient's: never a suppression.
var postmarkSender = map[string]bool{"SpamNotification": true, "Blocked": true, "DMARCPolicy": true, "ContentRelated": true, "VirusNotification": true}

// postmarkHard are Bounce types that are permanent recipient failures.
var postmarkHard = map[string]bool{"HardBounce": true, "BadEmailAddress": true, "ManuallyDeactivated": true}

// ParsePostmark reads a Postmark webhook body. RecordType Bounce is a
// bounce (HardBounce, BadEmailAddress: permanent; SpamNotification,
// Blocked, DMARCPolicy, ContentRelated…: the sender's; SpamComplaint and
// Unsubscribe types, as legacy bounce webhooks send them: a complaint and
// an unsubscribe; ChallengeVerification and AutoResponder, never bounces:
// ignored; the rest soft),
// SpamComplaint a complaint, SubscriptionChange with SuppressSending an
// unsubscribe; Delivery, Open, Click and the rest are ignored. Postmark's
// numeric ID is the event id; the event id of a subscription change, which
// has none, is its message id, recipient and time.
func ParsePostmark(body []byte) (Event, error) {
	var in postmarkBody
	if err := json.Unmarshal(body, &in); err != nil {
		return Event{}, err
	}
	ev := Event{ID: in.ID.String(), Type: in.RecordType, ProviderMessageID: normID(in.MessageID), Recipient: in.Email, Kind: KindIgnored,
		Time: parseTime(in.BouncedAt)}
	switch in.RecordType {
	case "Bounce":
		ev.Kind = KindBounce
		switch in.Type { // legacy bounce webhooks also report these as bounce types
		case "SpamComplaint":
			ev.Kind = KindComplaint
		case "Unsubscribe":
			ev.Kind = KindUnsubscribe
		case "ChallengeVerification", "AutoResponder":
			ev.Kind = KindIgnored // a challenge-response or an auto-reply is never a bounce
		}
		ev.Type = "Bounce/" + in.Type
		ev.Permanent = postmarkHard[in.Type]
		ev.SenderSide = postmarkSender[in.Type]
		ev.Diagnostic = in.Details
		if ev.Diagnostic == "" {
			ev.Diagnostic = in.Description
		}
	case "SpamComplaint":
		ev.Kind = KindComplaint
	case "SubscriptionChange":
		ev.Recipient = in.Recipient
		ev.Time = parseTime(in.ChangedAt)
		if in.SuppressSend {
			ev.Kind = KindUnsubscribe
		}
		if ev.ID == "" {
			ev.ID = "subscription-change:" + in.MessageID + ":" + in.Recipient + ":" + in.ChangedAt + ":" + strconv.FormatBool(in.SuppressSend)
		}
	}
	return ev, nil
}
