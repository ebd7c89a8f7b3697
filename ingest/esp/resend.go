package esp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// VerifyStandardWebhook checks a Standard Webhooks (Svix) signature, as
// Resend sends it: webhook-signature holds space-separated "v1,<base64
// HMAC-SHA256(secret, id.timestamp.body)>" entries, one of which must
// match; webhook-timestamp (Unix seconds) must lie within Tolerance of now.
func VerifyStandardWebhook(secret, id, timestamp, signature string, body []byte, now time.Time) error {
	key, err := standardSecret(secret)
	if err != nil || len(key) == 0 {
		return sigErr("unusable secret")
	}
	if id == "" || timestamp == "" || signature == "" {
		return sigErr("webhook-id, webhook-timestamp and webhook-signature are required")
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return sigErr("webhook-timestamp is not a Unix time")
	}
	if !within(time.Unix(ts, 0), now) {
		return sigErr("webhook-timestamp is outside the tolerance")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, part := range strings.Fields(signature) {
		v, sig, ok := strings.Cut(part, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return sigErr("no webhook-signature matches")
}

type resendEvent struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		EmailID string   `json:"email_id"`
		To      []string `json:"to"`
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
		Bounce struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			SubType string `json:"subType"`
		} `json:"bounce"`
	} `json:"data"`
}

// ParseResend reads a Resend webhook body; id is the webhook-id header,
// which is the event id. email.bounced is a bounce (data.bounce.type
// Permanent or Transient, as SES reports it), email.complained a
// complaint; every other type is ignored.
func ParseResend(id string, body []byte) (Event, error) {
	var in resendEvent
	if err := json.Unmarshal(body, &in); err != nil {
		return Event{}, err
	}
	ev := Event{ID: id, Type: in.Type, ProviderMessageID: in.Data.EmailID, Time: parseTime(in.CreatedAt), Kind: KindIgnored}
	if len(in.Data.To) > 0 {
		ev.Recipient = in.Data.To[0]
	}
	for _, h := range in.Data.Headers {
		if strings.EqualFold(h.Name, "Message-ID") {
			ev.MessageID = normID(h.Value)
		}
	}
	switch in.Type {
	case "email.bounced":
		ev.Kind = KindBounce
		ev.Type = in.Type + "/" + in.Data.Bounce.Type
		ev.Diagnostic = in.Data.Bounce.Message
		ev.Permanent = in.Data.Bounce.Type == "Permanent"
		ev.SenderSide = in.Data.Bounce.Type == "Undetermined"
	case "email.complained":
		ev.Kind = KindComplaint
	}
	return ev, nil
}
