// Package forecast answers "when will my sequences be done, and what limits
// me each day?" (docs/forecast.md). It replays a snapshot of one tenant on a
// virtual clock with the engine's own rules: policy.Evaluate decides every
// send (windows, rest, ramp and share caps, gaps, local days), policy.Pick
// and policy.Eligibility pin hypothetical enrollments, and the dispatcher's
// ordering is mirrored (per adapter: follow-ups before first touches, then
// the oldest scheduled_for, ties in enrollment order; adapter-level blocks
// as next_send_at). It is pure: nothing is read or written but the
// snapshot it is given.
package forecast

import (
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/google/uuid"
)

// Snapshot is one tenant's sending state at Now. Enrollments are in id
// order (UUIDv7s, ascending with enrollment), the order in which the
// dispatcher takes executions due at one instant; Run sorts a copy when
// they are not.
type Snapshot struct {
	Now         time.Time    `json:"now"`
	Adapters    []Adapter    `json:"adapters"`
	Pools       []Pool       `json:"pools"`
	Versions    []Version    `json:"versions"`
	Enrollments []Enrollment `json:"enrollments"`
}

// Adapter is a sender with its policy fields and today's usage.
type Adapter struct {
	ID           uuid.UUID            `json:"id"`
	Name         string               `json:"name"`
	Active       bool                 `json:"active"`
	Timezone     string               `json:"timezone"`
	HealthState  dripdrop.HealthState `json:"health_state"`
	HealthScore  *float64             `json:"health_score"`
	RestingUntil *time.Time           `json:"resting_until"`
	// ReconnectRequired: resting until its mailbox is reconnected (no
	// automatic probe).
	ReconnectRequired bool       `json:"reconnect_required,omitempty"`
	DailyCap          *int       `json:"daily_cap"`
	RampFloor         int        `json:"ramp_floor"`
	RampIncrement     int        `json:"ramp_increment"`
	RampStartedAt     *time.Time `json:"ramp_started_at"`
	MinGapSeconds     int        `json:"min_gap_seconds"`
	GapJitterSeconds  int        `json:"gap_jitter_seconds"`
	LastSendAt        *time.Time `json:"last_send_at"`
	NextSendAt        *time.Time `json:"next_send_at"`
	// SentToday counts this adapter's sends of its local day at Now, per
	// sequence version.
	SentToday map[uuid.UUID]int `json:"sent_today"`
	// Budgets are max_share_pct per sequence version (absent = 100).
	Budgets map[uuid.UUID]int `json:"budgets"`
	// ProviderCaps are the adapter's daily caps per recipient provider and
	// SentTodayByProvider its sends to those providers on its local day.
	ProviderCaps        map[string]int `json:"provider_caps,omitempty"`
	SentTodayByProvider map[string]int `json:"sent_today_by_provider,omitempty"`
}

// Pool is a pool with its members in member-id order.
type Pool struct {
	ID               uuid.UUID `json:"id"`
	Name             string    `json:"name"`
	OnPinUnavailable string    `json:"on_pin_unavailable"`
	Members          []Member  `json:"members"`
}

// Member is a pool member with its WDRR counters per sequence version.
type Member struct {
	AdapterID uuid.UUID           `json:"adapter_id"`
	Weight    int                 `json:"weight"`
	Active    bool                `json:"active"`
	Counters  map[uuid.UUID]int64 `json:"counters"`
}

// Version is a sequence version: its window, pool and steps.
type Version struct {
	ID          uuid.UUID `json:"id"`
	SequenceKey string    `json:"sequence_key"`
	Version     int       `json:"version"`
	Active      bool      `json:"active"`
	PoolID      uuid.UUID `json:"pool_id"`
	WindowDays  []int     `json:"window_days"`
	WindowStart int       `json:"window_start"` // minutes after local midnight
	WindowEnd   int       `json:"window_end"`
	WindowTZ    string    `json:"window_timezone"`
	// WindowHolidays are the window's holiday calendars ("US", "DE", …).
	WindowHolidays []string `json:"window_holidays,omitempty"`
	Steps          []Step   `json:"steps"` // in position order
}

// Step is one step of a version.
type Step struct {
	Position          int        `json:"position"`
	DelaySeconds      int64      `json:"delay_seconds"`
	AdapterOverrideID *uuid.UUID `json:"adapter_override_id"`
	// ID, Variants and Winner give a step with variants: the forecast
	// assigns each send its variant with the engine's rule (variant.Choose
	// over the step id and the enrollment id).
	ID       uuid.UUID     `json:"id,omitempty"`
	Variants []StepVariant `json:"variants,omitempty"`
	Winner   string        `json:"winner,omitempty"`
}

// StepVariant is one variant of a step: its key and weight.
type StepVariant struct {
	Key    string `json:"key"`
	Weight int    `json:"weight"`
}

// Enrollment is an active enrollment with its one pending execution.
type Enrollment struct {
	ID         uuid.UUID `json:"id"`
	VersionID  uuid.UUID `json:"sequence_version_id"`
	AdapterID  uuid.UUID `json:"adapter_id"` // the pin
	Timezone   string    `json:"timezone,omitempty"`
	Suppressed bool      `json:"suppressed,omitempty"`
	// RecipientProvider is the contact's mailbox provider (provider caps).
	RecipientProvider string `json:"recipient_provider,omitempty"`
	// The pending execution: its step position, sender, due time and
	// whether it is already being sent (then it counts as sent at Now).
	Position     int       `json:"position"`
	ExecAdapter  uuid.UUID `json:"execution_adapter_id"`
	ScheduledFor time.Time `json:"scheduled_for"`
	Followup     bool      `json:"followup"`
	Sending      bool      `json:"sending,omitempty"`
	// Variant is the variant the pending execution was already given (a
	// retry keeps it).
	Variant string `json:"variant,omitempty"`
	// NotBefore, when set, is the earliest time its follow-ups are due (an
	// out-of-office reply's return).
	NotBefore *time.Time `json:"not_before,omitempty"`
}
