package db

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

// SendJob is a reserved send: everything the dispatcher needs to render,
// build and deliver one message, and to record the outcome.
type SendJob struct {
	TenantKey         string
	ExecutionID       uuid.UUID
	EnrollmentID      uuid.UUID
	SequenceVersionID uuid.UUID
	SequenceKey       string
	StepKey           string
	Position          int
	Attempt           int
	AttemptWindow     int
	MessageID         string
	Lease             time.Time
	Day               time.Time // adapter-local day whose counters the send reserved
	MinGapSeconds     int
	GapJitterSeconds  int
	AdapterFailures   int // consecutive sender-side failures before this send (reset when it succeeds)
	Contact           dripdrop.Contact
	// Templates.
	Subject, BodyText string
	BodyHTML          *string
	Spintax           bool
	// Variant is the key of the step variant this send renders ("" when
	// the step has none; docs/sequences.md#variants).
	Variant string
	// ReplySubject is set when the step has no subject: the message goes out
	// as "Re: " + the thread's first subject.
	ReplySubject string
	InReplyTo    string
	References   []string
	// ListUnsubscribe is the version's List-Unsubscribe setting (one_click,
	// mailto or off).
	ListUnsubscribe string
	// Sender.
	AdapterID   uuid.UUID
	Provider    string
	FromAddress string
	FromName    string
	Credentials dripdrop.SMTPCredentials
	// Auth is how the adapter logs in (dripdrop.AuthPassword or
	// dripdrop.AuthOAuth2: a token from the transport's token source).
	Auth string
	// Diagnostics are events observed while preparing the send (a
	// template's spintax errors and warnings, a missing variable): the
	// transaction that records the send's outcome writes them to the
	// outbox with it.
	Diagnostics []Diagnostic
}

// Diagnostic is an event of a send's preparation, named from the
// telemetry catalog, with that event's metadata.
type Diagnostic struct {
	Name     string
	Metadata map[string]any
}

// diagnosticEvents are the job's diagnostics as events of its tenant.
func (job *SendJob) diagnosticEvents() []event {
	evs := make([]event, len(job.Diagnostics))
	for i, d := range job.Diagnostics {
		evs[i] = event{name: d.Name, tenant: job.TenantKey, metadata: d.Metadata}
	}
	return evs
}

// buildJob assembles a reserved send from its row and, for a follow-up,
// the thread it continues; creds are the adapter's opened credentials.
func (s *Store) buildJob(tenant string, sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, msgID string, lease time.Time, attempt int, thread []dbsqlc.ThreadsOfRow, creds *dripdrop.SMTPCredentials) *SendJob {
	job := &SendJob{
		TenantKey: tenant, ExecutionID: sc.ID, EnrollmentID: sc.EnrollmentID, SequenceVersionID: sc.SequenceVersionID,
		SequenceKey: sc.SequenceKey, StepKey: sc.StepKey, Position: sc.Position, Attempt: attempt, AttemptWindow: sc.AttemptWindow,
		MessageID: msgID, Lease: lease, Subject: sc.StepSubject, BodyText: sc.BodyText, BodyHTML: sc.BodyHtml, Spintax: sc.Spintax,
		ListUnsubscribe: sc.ListUnsubscribe,
		AdapterID:       ad.ID, Provider: ad.Provider, Auth: ad.Auth, FromAddress: ad.FromAddress, FromName: ad.FromName,
		Contact: dripdrop.Contact{Email: sc.Email, FirstName: deref(sc.FirstName), LastName: deref(sc.LastName), Company: deref(sc.Company), Timezone: deref(sc.ContactTimezone)},
	}
	if len(sc.Vars) > 2 {
		_ = json.Unmarshal(sc.Vars, &job.Contact.Vars)
	}
	applyVariant(job, sc)
	if len(sc.ThreadRefs) > 0 && sc.ThreadNo == 1 && sc.AdapterOverrideID == nil {
		// Routed into a version that continues the source's thread: its
		// messages come first in the chain (trimmed to the last 20).
		job.References = append(job.References, sc.ThreadRefs...)
		if len(thread) == 0 {
			job.ReplySubject = deref(sc.ThreadSubject) // "Re: " + the source thread's subject
		}
	}
	for _, m := range thread {
		job.References = append(job.References, deref(m.OutMessageID))
	}
	if n := len(job.References); n > 20 {
		job.References = job.References[n-20:]
	}
	if n := len(job.References); n > 0 {
		job.InReplyTo = job.References[n-1]
	}
	if strings.TrimSpace(job.Subject) == "" && len(thread) > 0 {
		job.ReplySubject = deref(thread[0].Subject)
	}
	if creds != nil {
		job.Credentials = *creds
	}
	return job
}

// openCredentials decrypts an adapter's SMTP credentials.
func (s *Store) openCredentials(tenant string, ad dbsqlc.Adapter) (*dripdrop.SMTPCredentials, error) {
	if s.vault == nil {
		return nil, fmt.Errorf("no encryption key configured; cannot read credentials")
	}
	pt, err := s.vault.Open(ad.Credentials, credentialsAD(tenant, ad.ID))
	if err != nil {
		return nil, err
	}
	var c dripdrop.SMTPCredentials
	if err := json.Unmarshal(pt, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// threadKey names a thread: an enrollment and its thread number.
type threadKey struct {
	enrollment uuid.UUID
	threadNo   int
}

// jobGap is the gap settings of a job's adapter, for policy.GapEnd.
func jobGap(job *SendJob) policy.Adapter {
	return policy.Adapter{ID: job.AdapterID, MinGapSeconds: job.MinGapSeconds, GapJitterSeconds: job.GapJitterSeconds}
}

// gapOf is the gap settings of an adapter row.
func gapOf(ad dbsqlc.Adapter) policy.Adapter {
	return policy.Adapter{ID: ad.ID, MinGapSeconds: ad.MinGapSeconds, GapJitterSeconds: ad.GapJitterSeconds}
}
