package dripdrop

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// MaxTemplateBytes is the largest subject or body template (64 KiB; a
// larger one is refused with invalid_spintax, docs/templates.md).
const MaxTemplateBytes = 64 << 10

// MaxSteps is the most steps a version may have.
const MaxSteps = 50

// DefaultSendWindow is Monday–Friday 08:00–18:00, the window of a version
// that sets none (docs/sending.md#policies).
func DefaultSendWindow() SendWindow {
	return SendWindow{Days: []int{1, 2, 3, 4, 5}, Start: "08:00", End: "18:00", Timezone: "UTC", Holidays: []string{}}
}

// SequenceInput creates a sequence together with its first version.
type SequenceInput struct {
	Key  *string `json:"key"`
	Name *string `json:"name"`
	// Activate makes the first version active at once (default true).
	Activate *bool `json:"activate"`
	VersionInput
}

// Validate checks the sequence's own fields.
func (in SequenceInput) Validate() error {
	if in.Key == nil {
		return Errorf(ECodeRequired, "key", "key is required")
	}
	if !keyPattern.MatchString(*in.Key) {
		return Errorf(ECodeInvalidValue, "key", "key must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if in.Name == nil {
		return Errorf(ECodeRequired, "name", "name is required")
	}
	return checkText("name", *in.Name, 200, true)
}

// VersionInput describes a sequence version. On update of a draft, absent
// fields keep their value and a present steps array replaces all steps.
type VersionInput struct {
	Mode        *string     `json:"mode"`
	PoolID      *uuid.UUID  `json:"pool_id"`
	SendWindow  *SendWindow `json:"send_window"`
	StopOnReply *bool       `json:"stop_on_reply"`
	// StopCompanyOnReply also stops the other live enrollments at the
	// replier's e-mail domain (free-mail domains excepted).
	StopCompanyOnReply *bool `json:"stop_company_on_reply"`
	// ListUnsubscribe: one_click (default), mailto or off.
	ListUnsubscribe *string `json:"list_unsubscribe"`
	// VerifyRecipients: off, syntax (default) or mx.
	VerifyRecipients *string     `json:"verify_recipients"`
	Steps            []StepInput `json:"steps"`
}

// The List-Unsubscribe settings of a version: one_click sends the https
// one-click link (RFC 8058, when a public base URL is configured) and the
// mailto: form, mailto only the mailto: form, off no List-Unsubscribe
// headers at all. Mail with List-Unsubscribe is list mail to many
// autoresponders, which then send no out-of-office (docs/sending.md).
const (
	ListUnsubscribeOneClick = "one_click"
	ListUnsubscribeMailto   = "mailto"
	ListUnsubscribeOff      = "off"
)

// Recipient verification levels of a version (docs/preflight.md#recipients):
// off checks only the address form, syntax adds RFC 5321/6531 syntax with
// IDN and the role and disposable lists, mx adds the domain's mail records.
const (
	VerifyOff    = "off"
	VerifySyntax = "syntax"
	VerifyMX     = "mx"
)

// ValidVerifyRecipients reports whether v is a verification level.
func ValidVerifyRecipients(v string) bool {
	return v == VerifyOff || v == VerifySyntax || v == VerifyMX
}

// ValidListUnsubscribe reports whether v is a List-Unsubscribe setting.
func ValidListUnsubscribe(v string) bool {
	return v == ListUnsubscribeOneClick || v == ListUnsubscribeMailto || v == ListUnsubscribeOff
}

// StepInput describes one step.
type StepInput struct {
	Key               *string    `json:"key"`
	DelaySeconds      *int64     `json:"delay_seconds"`
	Subject           *string    `json:"subject"`
	BodyText          *string    `json:"body_text"`
	BodyHTML          *string    `json:"body_html"`
	Spintax           *bool      `json:"spintax"`
	AdapterOverrideID *uuid.UUID `json:"adapter_override_id"`
}

// Apply validates the input against the current version (nil on create) and
// returns the resulting version. Pool and override adapters are checked for
// existence by the store.
func (in VersionInput) Apply(cur *SequenceVersion) (SequenceVersion, error) {
	v := SequenceVersion{Mode: "outbound", SendWindow: DefaultSendWindow(), StopOnReply: true, ListUnsubscribe: ListUnsubscribeOneClick, VerifyRecipients: VerifySyntax}
	if cur != nil {
		v = *cur
	} else {
		if in.PoolID == nil {
			return v, Errorf(ECodeRequired, "pool_id", "pool_id is required for an outbound version")
		}
		if in.Steps == nil {
			return v, Errorf(ECodeRequired, "steps", "at least one step is required")
		}
	}
	if in.Mode != nil && *in.Mode != "outbound" {
		return v, Errorf(ECodeInvalidValue, "mode", "mode must be \"outbound\"")
	}
	if in.PoolID != nil {
		v.PoolID = *in.PoolID
	}
	if in.SendWindow != nil {
		w, err := in.SendWindow.normalize()
		if err != nil {
			return v, err
		}
		v.SendWindow = w
	}
	if in.StopOnReply != nil {
		v.StopOnReply = *in.StopOnReply
	}
	if in.StopCompanyOnReply != nil {
		v.StopCompanyOnReply = *in.StopCompanyOnReply
	}
	if in.ListUnsubscribe != nil {
		if !ValidListUnsubscribe(*in.ListUnsubscribe) {
			return v, Errorf(ECodeInvalidValue, "list_unsubscribe", "list_unsubscribe must be \"one_click\", \"mailto\" or \"off\"")
		}
		v.ListUnsubscribe = *in.ListUnsubscribe
	}
	if in.VerifyRecipients != nil {
		if !ValidVerifyRecipients(*in.VerifyRecipients) {
			return v, Errorf(ECodeInvalidValue, "verify_recipients", "verify_recipients must be \"off\", \"syntax\" or \"mx\"")
		}
		v.VerifyRecipients = *in.VerifyRecipients
	}
	if in.Steps != nil {
		steps, err := applySteps(in.Steps)
		if err != nil {
			return v, err
		}
		v.Steps = steps
	}
	return v, nil
}

func applySteps(in []StepInput) ([]Step, error) {
	if len(in) == 0 {
		return nil, Errorf(ECodeRequired, "steps", "at least one step is required")
	}
	if len(in) > MaxSteps {
		return nil, Errorf(ECodeOutOfRange, "steps", "a version has at most %d steps", MaxSteps)
	}
	seen := map[string]bool{}
	out := make([]Step, 0, len(in))
	for i, s := range in {
		f := func(name string) string { return fmt.Sprintf("steps[%d].%s", i, name) }
		st := Step{Position: i + 1, Spintax: true}
		if s.Key == nil {
			st.Key = "step-" + strconv.Itoa(i+1)
		} else {
			if !keyPattern.MatchString(*s.Key) {
				return nil, Errorf(ECodeInvalidValue, f("key"), "key must be 1-128 letters, digits, '.', '_' or '-'")
			}
			st.Key = *s.Key
		}
		if seen[st.Key] {
			return nil, Errorf(ECodeAlreadyExists, f("key"), "step key %q is used twice", st.Key)
		}
		seen[st.Key] = true
		if s.DelaySeconds != nil {
			if *s.DelaySeconds < 0 || *s.DelaySeconds > 365*24*3600 {
				return nil, Errorf(ECodeOutOfRange, f("delay_seconds"), "delay_seconds must be between 0 and 31536000")
			}
			st.DelaySeconds = *s.DelaySeconds
		}
		if s.Spintax != nil {
			st.Spintax = *s.Spintax
		}
		if s.Subject != nil {
			st.Subject = *s.Subject
		}
		if i == 0 && strings.TrimSpace(st.Subject) == "" {
			return nil, Errorf(ECodeRequired, f("subject"), "the first step needs a subject")
		}
		if err := checkHeaderText(f("subject"), st.Subject, 998, false); err != nil {
			return nil, err
		}
		if s.BodyText == nil {
			return nil, Errorf(ECodeRequired, f("body_text"), "body_text is required")
		}
		st.BodyText = *s.BodyText
		if err := checkText(f("body_text"), st.BodyText, 4*MaxTemplateBytes, true); err != nil {
			return nil, err
		}
		if s.BodyHTML != nil {
			if err := checkText(f("body_html"), *s.BodyHTML, 4*MaxTemplateBytes, false); err != nil {
				return nil, err
			}
			h := *s.BodyHTML
			st.BodyHTML = &h
		}
		for _, tf := range []struct {
			name string
			text *string
		}{{"subject", &st.Subject}, {"body_text", &st.BodyText}, {"body_html", st.BodyHTML}} {
			if tf.text == nil {
				continue
			}
			if err := ValidateTemplate(f(tf.name), *tf.text, st.Spintax); err != nil {
				return nil, err
			}
		}
		st.AdapterOverrideID = s.AdapterOverrideID
		out = append(out, st)
	}
	return out, nil
}

// ParseClock parses "HH:MM" into minutes after midnight.
func ParseClock(s string) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) != 2 || len(m) != 2 {
		return 0, false
	}
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, false
	}
	return hh*60 + mm, true
}

// FormatClock formats minutes after midnight as "HH:MM".
func FormatClock(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

func (w SendWindow) normalize() (SendWindow, error) {
	out := SendWindow{Start: w.Start, End: w.End, Timezone: w.Timezone, Holidays: []string{}}
	if len(w.Holidays) > 10 {
		return out, Errorf(ECodeOutOfRange, "send_window.holidays", "at most 10 holiday calendars")
	}
	for _, h := range w.Holidays {
		if len(h) != 2 || h[0] < 'A' || h[0] > 'Z' || h[1] < 'A' || h[1] > 'Z' || slices.Contains(out.Holidays, h) {
			return out, Errorf(ECodeInvalidValue, "send_window.holidays", "holidays must be distinct ISO 3166-1 alpha-2 country codes such as \"US\" or \"DE\"")
		}
		out.Holidays = append(out.Holidays, h)
	}
	if out.Timezone == "" {
		out.Timezone = "UTC"
	}
	if len(w.Days) == 0 || len(w.Days) > 7 {
		return out, Errorf(ECodeInvalidValue, "send_window.days", "days must list 1 to 7 weekdays (0=Sunday … 6=Saturday)")
	}
	seen := map[int]bool{}
	for _, d := range w.Days {
		if d < 0 || d > 6 || seen[d] {
			return out, Errorf(ECodeInvalidValue, "send_window.days", "days must be distinct weekdays 0 (Sunday) … 6 (Saturday)")
		}
		seen[d] = true
	}
	for d := 0; d < 7; d++ {
		if seen[d] {
			out.Days = append(out.Days, d)
		}
	}
	start, ok1 := ParseClock(w.Start)
	if !ok1 {
		return out, Errorf(ECodeInvalidValue, "send_window.start", "start must be HH:MM")
	}
	end, ok2 := ParseClock(w.End)
	if !ok2 {
		return out, Errorf(ECodeInvalidValue, "send_window.end", "end must be HH:MM")
	}
	if start == end {
		return out, Errorf(ECodeInvalidValue, "send_window.end", "a send window cannot be empty (start equals end)")
	}
	if !ValidTimezone(out.Timezone) {
		return out, Errorf(ECodeInvalidTimezone, "send_window.timezone", "timezone must be an IANA zone name")
	}
	return out, nil
}
