package dripdrop

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Contact is the person an enrollment writes to.
type Contact struct {
	Email     string            `json:"email"`
	FirstName string            `json:"first_name,omitempty"`
	LastName  string            `json:"last_name,omitempty"`
	Company   string            `json:"company,omitempty"`
	Timezone  string            `json:"timezone,omitempty"`
	Vars      map[string]string `json:"vars,omitempty"`
}

// Lookup resolves a template variable: contact fields first, then vars.
func (c Contact) Lookup(name string) (string, bool) {
	switch name {
	case "email":
		return c.Email, true
	case "first_name":
		return c.FirstName, c.FirstName != ""
	case "last_name":
		return c.LastName, c.LastName != ""
	case "company":
		return c.Company, c.Company != ""
	}
	v, ok := c.Vars[name]
	return v, ok
}

// Enrollment is one contact going through one sequence version.
type Enrollment struct {
	ID                uuid.UUID       `json:"id"`
	SequenceID        uuid.UUID       `json:"sequence_id"`
	SequenceKey       string          `json:"sequence_key,omitempty"`
	SequenceVersionID uuid.UUID       `json:"sequence_version_id"`
	Contact           Contact         `json:"contact"`
	State             EnrollmentState `json:"state"`
	StopReason        *string         `json:"stop_reason"`
	PauseReason       *string         `json:"pause_reason"`
	AdapterID         uuid.UUID       `json:"adapter_id"`
	ThreadNo          int             `json:"thread"`
	// RecipientProvider is the mailbox provider of the contact's domain
	// (google, microsoft, …, other) when known (docs/preflight.md).
	RecipientProvider *string `json:"recipient_provider"`
	// ReplyCategory is the category of the contact's latest human reply.
	ReplyCategory *string `json:"reply_category"`
	// RoutedFrom is the enrollment whose branch created this one; Routes
	// are the branches taken (or waiting) from it or into it
	// (GET /v1/enrollments/{id}).
	RoutedFrom *uuid.UUID        `json:"routed_from"`
	Routes     []EnrollmentRoute `json:"routes,omitempty"`
	Executions []StepExecution   `json:"executions,omitempty"`
	// Block is what holds the next step back now (GET /v1/enrollments/{id}).
	Block     *Block     `json:"block,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	EndedAt   *time.Time `json:"ended_at"`
}

// Block says what holds an enrollment's next step back: the binding policy
// (send_window, adapter_resting, ramp_cap, sub_cap, min_gap) or
// adapter_not_ready (the adapter's next_send_at: backoff after adapter
// errors, or a send in flight), the adapter, and until when.
type Block struct {
	Policy    string     `json:"policy"`
	AdapterID uuid.UUID  `json:"adapter_id"`
	Until     *time.Time `json:"until"`
	Reason    string     `json:"reason,omitempty"`
}

// StepExecution is one attempt window of one step for one enrollment.
type StepExecution struct {
	ID                uuid.UUID  `json:"id"`
	StepID            uuid.UUID  `json:"step_id"`
	StepKey           string     `json:"step_key"`
	Position          int        `json:"position"`
	State             string     `json:"state"`
	ScheduledFor      time.Time  `json:"scheduled_for"`
	Attempt           int        `json:"attempt"`
	AttemptWindow     int        `json:"attempt_window"`
	AdapterID         uuid.UUID  `json:"adapter_id"`
	Thread            *int       `json:"thread"`
	Subject           *string    `json:"subject"`
	OutMessageID      *string    `json:"out_message_id"`
	ProviderMessageID *string    `json:"provider_message_id"`
	DeferReason       *string    `json:"defer_reason"`
	DeferUntil        *time.Time `json:"defer_until"`
	ErrorCode         *string    `json:"error_code"`
	Error             *string    `json:"error"`
	SentAt            *time.Time `json:"sent_at"`
	// Variant is the key of the step variant this execution was given.
	Variant *string `json:"variant"`
}

// ContactInput is a contact as the API receives it.
type ContactInput struct {
	Email     *string        `json:"email"`
	FirstName *string        `json:"first_name"`
	LastName  *string        `json:"last_name"`
	Company   *string        `json:"company"`
	Timezone  *string        `json:"timezone"`
	Vars      map[string]any `json:"vars"`
}

// Limits on contact variables.
const (
	MaxVars        = 50
	MaxVarValueLen = 2000
)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate checks a contact and returns it normalised. field prefixes the
// names of offending fields ("contact." or "contacts[3].").
func (in ContactInput) Validate(field string) (Contact, error) {
	var c Contact
	if in.Email == nil {
		return c, Errorf(ECodeRequired, field+"email", "email is required")
	}
	email, err := ParseEmail(*in.Email)
	if err != nil {
		return c, withField(err, field+"email")
	}
	c.Email = email
	for _, f := range []struct {
		name string
		in   *string
		out  *string
	}{{"first_name", in.FirstName, &c.FirstName}, {"last_name", in.LastName, &c.LastName}, {"company", in.Company, &c.Company}} {
		if f.in == nil {
			continue
		}
		v := strings.TrimSpace(*f.in)
		if err := checkHeaderText(field+f.name, v, 200, false); err != nil {
			return c, err
		}
		*f.out = v
	}
	if in.Timezone != nil && *in.Timezone != "" {
		if !ValidTimezone(*in.Timezone) {
			return c, Errorf(ECodeInvalidTimezone, field+"timezone", "timezone must be an IANA zone name such as America/New_York")
		}
		c.Timezone = *in.Timezone
	}
	if len(in.Vars) > MaxVars {
		return c, Errorf(ECodeOutOfRange, field+"vars", "at most %d vars", MaxVars)
	}
	if len(in.Vars) > 0 {
		c.Vars = make(map[string]string, len(in.Vars))
		keys := make([]string, 0, len(in.Vars))
		for k := range in.Vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f := field + "vars." + k
			if !varName.MatchString(k) {
				return c, Errorf(ECodeInvalidValue, f, "variable names are letters, digits and '_' (max 64)")
			}
			var s string
			switch v := in.Vars[k].(type) {
			case string:
				s = v
			case bool:
				s = strconv.FormatBool(v)
			case float64:
				s = strconv.FormatFloat(v, 'f', -1, 64)
			case json.Number:
				s = v.String()
			case nil:
				continue
			default:
				return c, Errorf(ECodeInvalidType, f, "variable values must be strings, numbers or booleans")
			}
			if err := checkText(f, s, MaxVarValueLen, false); err != nil {
				return c, err
			}
			c.Vars[k] = s
		}
	}
	return c, nil
}

// EnrollmentPatch corrects the contact of a non-terminal enrollment. Absent
// fields keep their values; vars are merged key by key (null removes a key).
type EnrollmentPatch struct {
	Email     *string        `json:"email"`
	FirstName *string        `json:"first_name"`
	LastName  *string        `json:"last_name"`
	Company   *string        `json:"company"`
	Timezone  *string        `json:"timezone"`
	Vars      map[string]any `json:"vars"`
}

// Apply validates the patch over the current contact.
func (p EnrollmentPatch) Apply(cur Contact) (Contact, error) {
	in := ContactInput{Email: &cur.Email, FirstName: &cur.FirstName, LastName: &cur.LastName, Company: &cur.Company, Timezone: &cur.Timezone, Vars: map[string]any{}}
	for k, v := range cur.Vars {
		in.Vars[k] = v
	}
	for _, f := range []struct{ from, to **string }{{&p.Email, &in.Email}, {&p.FirstName, &in.FirstName}, {&p.LastName, &in.LastName}, {&p.Company, &in.Company}, {&p.Timezone, &in.Timezone}} {
		if *f.from != nil {
			*f.to = *f.from
		}
	}
	for k, v := range p.Vars {
		if v == nil {
			delete(in.Vars, k)
		} else {
			in.Vars[k] = v
		}
	}
	return in.Validate("")
}

// EnrollInput enrolls one contact into a sequence's active version.
type EnrollInput struct {
	SequenceKey *string      `json:"sequence_key"`
	Contact     ContactInput `json:"contact"`
}

// Validate checks the request.
func (in EnrollInput) Validate() (string, Contact, error) {
	if in.SequenceKey == nil || *in.SequenceKey == "" {
		return "", Contact{}, Errorf(ECodeRequired, "sequence_key", "sequence_key is required")
	}
	c, err := in.Contact.Validate("contact.")
	return *in.SequenceKey, c, err
}

// RepinInput moves an enrollment to another adapter.
type RepinInput struct {
	AdapterID *uuid.UUID `json:"adapter_id"`
	Reason    *string    `json:"reason"`
}

// Validate checks the request.
func (in RepinInput) Validate() (uuid.UUID, string, error) {
	if in.AdapterID == nil {
		return uuid.Nil, "", Errorf(ECodeRequired, "adapter_id", "adapter_id is required")
	}
	reason := "manual"
	if in.Reason != nil {
		if err := checkText("reason", *in.Reason, 200, true); err != nil {
			return uuid.Nil, "", err
		}
		reason = *in.Reason
	}
	return *in.AdapterID, reason, nil
}

// EvictedAdapter explains why a pool member could not take a pin.
type EvictedAdapter struct {
	AdapterID uuid.UUID `json:"adapter_id"`
	Reason    string    `json:"reason"` // member_inactive, adapter_inactive, adapter_deleted, resting, health_score_zero, daily_cap_reached
}

// PoolExhausted is the error of an enroll that found no eligible member.
func PoolExhausted(pool uuid.UUID, evicted []EvictedAdapter) *Error {
	ids := make([]uuid.UUID, len(evicted))
	for i, e := range evicted {
		ids[i] = e.AdapterID
	}
	return &Error{Code: ECodePoolExhausted, Field: "sequence_key",
		Message: fmt.Sprintf("no adapter of pool %s can take a new enrollment", pool),
		Extra:   map[string]any{"pool_id": pool, "evicted_adapter_ids": ids, "evicted": evicted}}
}

// EnrollmentRoute is one branch of a version taken for an enrollment
// (docs/sequences.md#branches): pending until DueAt, then enrolled (the new
// enrollment is ResultEnrollmentID) or skipped (Reason).
type EnrollmentRoute struct {
	ID                 uuid.UUID  `json:"id"`
	SourceEnrollmentID uuid.UUID  `json:"source_enrollment_id"`
	Trigger            string     `json:"trigger"`
	Category           *string    `json:"category"`
	TargetSequenceID   uuid.UUID  `json:"target_sequence_id"`
	DueAt              time.Time  `json:"due_at"`
	State              string     `json:"state"`
	Reason             *string    `json:"reason"`
	ResultEnrollmentID *uuid.UUID `json:"result_enrollment_id"`
}
