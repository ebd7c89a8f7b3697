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
	ListUnsubscribe  *string     `json:"list_unsubscribe"`
	VerifyRecipients *string     `json:"verify_recipients"`
	Steps            []StepInput `json:"steps"`
	// Branches route outcomes to other sequences (docs/sequences.md#branches).
	Branches *BranchesInput `json:"branches"`
	// ContinueThread: a contact routed into this version by a branch gets
	// its first message in the thread it came from (same sender only).
	ContinueThread *bool `json:"continue_thread"`
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
	// Variants are 2–5 alternatives of the step's subject and/or body
	// (docs/sequences.md#variants); a field a variant leaves out is the
	// step's own.
	Variants []VariantInput `json:"variants"`
	// AutoWinner promotes the variant whose reply rate has won.
	AutoWinner *AutoWinnerInput `json:"auto_winner"`
}

// VariantInput describes one variant of a step.
type VariantInput struct {
	Key      *string `json:"key"`
	Subject  *string `json:"subject"`
	BodyText *string `json:"body_text"`
	BodyHTML *string `json:"body_html"`
	Weight   *int    `json:"weight"`
}

// AutoWinnerInput is a step's auto-winner setting.
type AutoWinnerInput struct {
	Metric     *string  `json:"metric"`
	MinSent    *int     `json:"min_sent"`
	Confidence *float64 `json:"confidence"`
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
	if in.Branches != nil {
		b, err := in.Branches.apply()
		if err != nil {
			return v, err
		}
		v.Branches = b
	}
	if in.ContinueThread != nil {
		v.ContinueThread = *in.ContinueThread
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
		if err := checkHeaderText(f("subject"), st.Subject, 998, false); err != nil {
			return nil, err
		}
		variants, err := applyVariants(i, s)
		if err != nil {
			return nil, err
		}
		st.Variants = variants
		if i == 0 && strings.TrimSpace(st.Subject) == "" && !everyVariant(variants, func(v Variant) bool { return v.Subject != nil && strings.TrimSpace(*v.Subject) != "" }) {
			return nil, Errorf(ECodeRequired, f("subject"), "the first step needs a subject (its own or one in every variant)")
		}
		if s.BodyText == nil && !everyVariant(variants, func(v Variant) bool { return v.BodyText != nil }) {
			return nil, Errorf(ECodeRequired, f("body_text"), "body_text is required (on the step or in every variant)")
		}
		if s.BodyText != nil {
			st.BodyText = *s.BodyText
		}
		if err := checkText(f("body_text"), st.BodyText, 4*MaxTemplateBytes, s.BodyText != nil); err != nil {
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
		for j, v := range st.Variants {
			for _, tf := range []struct {
				name string
				text *string
			}{{"subject", v.Subject}, {"body_text", v.BodyText}, {"body_html", v.BodyHTML}} {
				if tf.text == nil {
					continue
				}
				if err := ValidateTemplate(f(fmt.Sprintf("variants[%d].%s", j, tf.name)), *tf.text, st.Spintax); err != nil {
					return nil, err
				}
			}
		}
		if s.AutoWinner != nil {
			if len(st.Variants) == 0 {
				return nil, Errorf(ECodeInvalidValue, f("auto_winner"), "auto_winner needs variants")
			}
			aw, err := s.AutoWinner.apply(f("auto_winner"))
			if err != nil {
				return nil, err
			}
			st.AutoWinner = &aw
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

// Variant limits (docs/sequences.md#variants).
const (
	MinVariants      = 2
	MaxVariants      = 5
	MaxVariantWeight = 1000
)

// The metrics an auto-winner may optimise. Opens are not one of them: an
// open is a pixel fetch that privacy proxies fake and blockers hide.
const (
	MetricReplyRate         = "reply_rate"
	MetricPositiveReplyRate = "positive_reply_rate"
)

// Auto-winner defaults.
const (
	DefaultMinSent    = 100
	DefaultConfidence = 0.95
)

// variantKeys are the default keys of a step's variants, by position.
var variantKeys = []string{"A", "B", "C", "D", "E"}

// applyVariants validates the variants of step i (their templates are
// checked with the step's spintax setting by the caller).
func applyVariants(i int, s StepInput) ([]Variant, error) {
	if len(s.Variants) == 0 {
		return nil, nil // none ([] too: what GET shows for a step without variants)
	}
	field := fmt.Sprintf("steps[%d].variants", i)
	if len(s.Variants) < MinVariants || len(s.Variants) > MaxVariants {
		return nil, Errorf(ECodeOutOfRange, field, "a step has %d to %d variants (or none)", MinVariants, MaxVariants)
	}
	out := make([]Variant, 0, len(s.Variants))
	seen := map[string]bool{}
	for j, in := range s.Variants {
		f := func(name string) string { return fmt.Sprintf("%s[%d].%s", field, j, name) }
		v := Variant{Key: variantKeys[j], Weight: 1}
		if in.Key != nil {
			if !keyPattern.MatchString(*in.Key) || len(*in.Key) > 32 {
				return nil, Errorf(ECodeInvalidValue, f("key"), "key must be 1-32 letters, digits, '.', '_' or '-'")
			}
			v.Key = *in.Key
		}
		if seen[v.Key] {
			return nil, Errorf(ECodeAlreadyExists, f("key"), "variant key %q is used twice", v.Key)
		}
		seen[v.Key] = true
		if in.Weight != nil {
			if *in.Weight <= 0 || *in.Weight > MaxVariantWeight {
				return nil, Errorf(ECodeOutOfRange, f("weight"), "weight must be between 1 and %d", MaxVariantWeight)
			}
			v.Weight = *in.Weight
		}
		if in.Subject == nil && in.BodyText == nil && in.BodyHTML == nil {
			return nil, Errorf(ECodeRequired, fmt.Sprintf("%s[%d]", field, j), "a variant sets a subject, a body_text or a body_html")
		}
		if in.Subject != nil {
			if err := checkHeaderText(f("subject"), *in.Subject, 998, false); err != nil {
				return nil, err
			}
			v.Subject = ptr(*in.Subject)
		}
		if in.BodyText != nil {
			if err := checkText(f("body_text"), *in.BodyText, 4*MaxTemplateBytes, true); err != nil {
				return nil, err
			}
			v.BodyText = ptr(*in.BodyText)
		}
		if in.BodyHTML != nil {
			if err := checkText(f("body_html"), *in.BodyHTML, 4*MaxTemplateBytes, false); err != nil {
				return nil, err
			}
			v.BodyHTML = ptr(*in.BodyHTML)
		}
		out = append(out, v)
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }

func everyVariant(vs []Variant, ok func(Variant) bool) bool {
	if len(vs) == 0 {
		return false
	}
	for _, v := range vs {
		if !ok(v) {
			return false
		}
	}
	return true
}

func (in AutoWinnerInput) apply(field string) (AutoWinner, error) {
	aw := AutoWinner{Metric: MetricReplyRate, MinSent: DefaultMinSent, Confidence: DefaultConfidence}
	if in.Metric != nil {
		if *in.Metric != MetricReplyRate && *in.Metric != MetricPositiveReplyRate {
			return aw, Errorf(ECodeInvalidValue, field+".metric", "metric must be \"reply_rate\" or \"positive_reply_rate\" (opens are never a metric)")
		}
		aw.Metric = *in.Metric
	}
	if in.MinSent != nil {
		if *in.MinSent < 1 || *in.MinSent > 1_000_000 {
			return aw, Errorf(ECodeOutOfRange, field+".min_sent", "min_sent must be between 1 and 1000000")
		}
		aw.MinSent = *in.MinSent
	}
	if in.Confidence != nil {
		if !(*in.Confidence >= 0.5 && *in.Confidence <= 0.9999) {
			return aw, Errorf(ECodeOutOfRange, field+".confidence", "confidence must be between 0.5 and 0.9999")
		}
		aw.Confidence = *in.Confidence
	}
	return aw, nil
}

// Weights are the variants' weights in order.
func (st Step) Weights() []int {
	w := make([]int, len(st.Variants))
	for i, v := range st.Variants {
		w[i] = v.Weight
	}
	return w
}

// VariantIndex is the position of the variant with key k, or -1.
func (st Step) VariantIndex(k string) int {
	for i, v := range st.Variants {
		if v.Key == k {
			return i
		}
	}
	return -1
}
