package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
)

// JSONInput is the body of POST /v1/inbound (docs/ingest.md): a message already
// parsed by a provider or a mailbox bridge.
type JSONInput struct {
	AdapterID  *string     `json:"adapter_id"`
	Provider   *string     `json:"provider"`
	MessageID  *string     `json:"message_id"`
	InReplyTo  *string     `json:"in_reply_to"`
	References IDList      `json:"references"`
	From       *string     `json:"from"`
	To         StringList  `json:"to"`
	Subject    *string     `json:"subject"`
	BodyText   *string     `json:"body_text"`
	BodyHTML   *string     `json:"body_html"`
	Headers    HeaderMap   `json:"headers"`
	ReceivedAt *string     `json:"received_at"`
	Intent     *string     `json:"intent"`
	IntentData *IntentData `json:"intent_data"`
}

// IntentData carries what a caller states with an intent.
type IntentData struct {
	// ReturnAt is the return day of an ooo: YYYY-MM-DD or an RFC 3339 time
	// (its calendar day as written).
	ReturnAt *string `json:"return_at"`
}

// IDList is a list of message ids given as a JSON array of ids or as one
// References header string.
type IDList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *IDList) UnmarshalJSON(b []byte) error {
	one, many, null, ok := stringOrList(b)
	switch {
	case null:
		*l = nil
	case !ok:
		return dripdrop.Errorf(dripdrop.ECodeInvalidType, "references", "references must be an array of message ids or one header string")
	case one != nil:
		*l = SplitIDs(*one)
	default:
		out := IDList{}
		for _, v := range many {
			if id := NormalizeID(v); id != "" {
				out = append(out, id)
			}
		}
		*l = out
	}
	return nil
}

// stringOrList decodes JSON null (null), one string (one) or an array of
// strings (many); ok is false for anything else.
func stringOrList(b []byte) (one *string, many []string, null, ok bool) {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil, nil, true, true
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		return &s, nil, false, true
	}
	if err := json.Unmarshal(b, &many); err != nil {
		return nil, nil, false, false
	}
	return nil, many, false, true
}

// StringList accepts one string or an array of strings.
type StringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *StringList) UnmarshalJSON(b []byte) error {
	one, many, null, ok := stringOrList(b)
	switch {
	case null:
		*l = nil
	case !ok:
		return dripdrop.Errorf(dripdrop.ECodeInvalidType, "to", "to must be an address or an array of addresses")
	case one != nil:
		*l = StringList{*one}
	default:
		*l = many
	}
	return nil
}

// HeaderMap is an object of header name → string or array of strings.
type HeaderMap map[string][]string

// UnmarshalJSON implements json.Unmarshaler.
func (h *HeaderMap) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return dripdrop.Errorf(dripdrop.ECodeInvalidType, "headers", "headers must be an object of header name to string or array of strings")
	}
	out := HeaderMap{}
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = append(out[k], s)
			continue
		}
		var arr []string
		if err := json.Unmarshal(v, &arr); err != nil {
			return dripdrop.Errorf(dripdrop.ECodeInvalidType, "headers."+k, "header %q must be a string or an array of strings", k)
		}
		out[k] = append(out[k], arr...)
	}
	*h = out
	return nil
}

// Parsed is a validated JSON input.
type Parsed struct {
	Message   *Message
	Provider  string
	AdapterID *uuid.UUID
	Intent    Intent
	ReturnAt  *Date
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Parse validates the input (message_id, from and received_at required;
// intent one of the six; ids normalized) and builds the message.
func (in *JSONInput) Parse() (Parsed, error) {
	var p Parsed
	headers := CanonicalHeaders(in.Headers)
	if len(headers) > 500 {
		return p, dripdrop.Errorf(dripdrop.ECodeTooLong, "headers", "at most 500 headers")
	}
	m := &Message{Headers: headers}
	m.MessageID = NormalizeID(str(in.MessageID))
	switch {
	case m.MessageID == "":
		return p, dripdrop.Errorf(dripdrop.ECodeRequired, "message_id", "message_id is required")
	case len(m.MessageID) > 998:
		return p, dripdrop.Errorf(dripdrop.ECodeTooLong, "message_id", "message_id is longer than 998 bytes")
	}
	m.From = strings.TrimSpace(str(in.From))
	if m.From == "" {
		return p, dripdrop.Errorf(dripdrop.ECodeRequired, "from", "from is required")
	}
	if len(m.From) > 998 {
		return p, dripdrop.Errorf(dripdrop.ECodeTooLong, "from", "from is longer than 998 bytes")
	}
	if in.ReceivedAt == nil || strings.TrimSpace(*in.ReceivedAt) == "" {
		return p, dripdrop.Errorf(dripdrop.ECodeRequired, "received_at", "received_at is required")
	}
	t, err := time.Parse(time.RFC3339Nano, *in.ReceivedAt)
	if err != nil {
		return p, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "received_at", "received_at must be an RFC 3339 time")
	}
	m.ReceivedAt = t.UTC().Truncate(time.Microsecond)
	if in.Provider != nil {
		p.Provider = strings.TrimSpace(*in.Provider)
		if p.Provider == "" || len(p.Provider) > 64 {
			return p, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "provider", "provider must be 1-64 characters")
		}
	}
	if in.AdapterID != nil {
		id, err := uuid.Parse(*in.AdapterID)
		if err != nil {
			return p, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "adapter_id", "adapter_id must be a uuid")
		}
		p.AdapterID = &id
	}
	if in.Intent != nil {
		p.Intent = Intent(*in.Intent)
		if !p.Intent.Valid() {
			return p, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "intent", "intent must be one of reply, ooo, auto_reply, bounce, complaint, unsubscribe")
		}
	}
	if in.IntentData != nil && in.IntentData.ReturnAt != nil {
		v := strings.TrimSpace(*in.IntentData.ReturnAt)
		d, ok := ParseDate(v)
		if !ok {
			rt, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return p, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "intent_data.return_at", "return_at must be a date (YYYY-MM-DD) or an RFC 3339 time")
			}
			d = Date{rt.Year(), rt.Month(), rt.Day()}
		}
		p.ReturnAt = &d
	}
	m.InReplyTo = NormalizeID(str(in.InReplyTo))
	if m.InReplyTo == "" {
		if ids := SplitIDs(m.Header("In-Reply-To")); len(ids) > 0 {
			m.InReplyTo = ids[0]
		}
	}
	m.References = in.References
	if len(m.References) == 0 {
		m.References = SplitIDs(m.Header("References"))
	}
	m.ProviderMessageID = NormalizeID(m.Header("X-Provider-Message-Id"))
	if len(in.To) > 0 {
		m.To = in.To[0]
	}
	m.Subject, m.BodyText, m.BodyHTML = str(in.Subject), str(in.BodyText), str(in.BodyHTML)
	p.Message = m
	return p, nil
}
