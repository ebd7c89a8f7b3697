package ingest

import (
	"time"

	"github.com/google/uuid"
)

// The inbound pipeline's types: what an input hands to the store
// (InboundInput), what ingesting did (InboundResult, InboundEffects) and
// whom an address of the SMTP listener belongs to (InboundRecipient).

// DefaultInboundProvider names inbound messages whose input did not name a
// provider. All three inputs share it, so one message received twice (say
// by webhook and by the SMTP listener) is recognised as a duplicate.
const DefaultInboundProvider = "inbound"

// InboundInput is one inbound message from any input (docs/md).
type InboundInput struct {
	// Provider names the source; empty = DefaultInboundProvider.
	Provider string
	// AdapterID is the adapter the message was addressed to, when known.
	AdapterID *uuid.UUID
	Message   *Message
	// Intent, when set, overrides classification.
	Intent Intent
	// ReturnAt, when set, is the stated return day of an ooo.
	ReturnAt *Date
	// Fault, when set for a bounce, is whose failure the source says it
	// is (an ESP's verdict: FaultSender or FaultRecipient), overriding the
	// status's.
	Fault string
}

// InboundResult is what ingesting a message did. A duplicate returns the
// stored result of the first delivery with Duplicate set.
type InboundResult struct {
	ID              uuid.UUID      `json:"id"`
	Duplicate       bool           `json:"duplicate"`
	Provider        string         `json:"provider"`
	MessageID       string         `json:"message_id"`
	Intent          Intent         `json:"intent"`
	BounceType      string         `json:"bounce_type,omitempty"`
	Correlation     string         `json:"correlation"`
	StepExecutionID *uuid.UUID     `json:"step_execution_id"`
	EnrollmentID    *uuid.UUID     `json:"enrollment_id"`
	Effects         InboundEffects `json:"effects"`
	// Category is a human reply's category (docs/ingest.md#reply-categories).
	Category string `json:"category,omitempty"`
}

// InboundEffects lists the changes an inbound message caused.
type InboundEffects struct {
	// Stopped are the enrollments stopped, with StopReason.
	Stopped    []uuid.UUID `json:"stopped"`
	StopReason string      `json:"stop_reason,omitempty"`
	// CompanyStopped are other enrollments of the same company domain
	// stopped with company_replied.
	CompanyStopped []uuid.UUID `json:"company_stopped"`
	// Suppressed says the address was added to the suppression list.
	Suppressed bool `json:"suppressed"`
	// Rescheduled counts pending executions moved by an ooo, to ReturnAt.
	Rescheduled int        `json:"rescheduled"`
	ReturnAt    *time.Time `json:"return_at,omitempty"`
	// SenderFault says a bounce was the sender's failure (FaultReason:
	// auth_rejected or policy_rejected): the prospect was kept, the step
	// failed for the sender and the enrollment paused (sender_rejected)
	// until the sender is fixed; resume or retry sends the step again.
	SenderFault bool   `json:"sender_fault,omitempty"`
	FaultReason string `json:"fault_reason,omitempty"`
}

// InboundRecipient is a tenant's adapter that receives inbound mail.
type InboundRecipient struct {
	TenantKey string
	AdapterID uuid.UUID
}
