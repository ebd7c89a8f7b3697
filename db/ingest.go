package db

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/ingest"
)

// DefaultInboundProvider names inbound messages whose input did not name a
// provider. All three inputs share it, so one message received twice (say
// by webhook and by the SMTP listener) is recognised as a duplicate.
const DefaultInboundProvider = "inbound"

// InboundInput is one inbound message from any input (docs/ingest.md).
type InboundInput struct {
	// Provider names the source; empty = DefaultInboundProvider.
	Provider string
	// AdapterID is the adapter the message was addressed to, when known.
	AdapterID *uuid.UUID
	Message   *ingest.Message
	// Intent, when set, overrides classification.
	Intent ingest.Intent
	// ReturnAt, when set, is the stated return day of an ooo.
	ReturnAt *ingest.Date
}

// InboundResult is what ingesting a message did. A duplicate returns the
// stored result of the first delivery with Duplicate set.
type InboundResult struct {
	ID              uuid.UUID      `json:"id"`
	Duplicate       bool           `json:"duplicate"`
	Provider        string         `json:"provider"`
	MessageID       string         `json:"message_id"`
	Intent          ingest.Intent  `json:"intent"`
	BounceType      string         `json:"bounce_type,omitempty"`
	Correlation     string         `json:"correlation"`
	StepExecutionID *uuid.UUID     `json:"step_execution_id"`
	EnrollmentID    *uuid.UUID     `json:"enrollment_id"`
	Effects         InboundEffects `json:"effects"`
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

var errInboundRace = errors.New("db: inbound message inserted concurrently")

// Ingest stores an inbound message, correlates it with a sent execution of
// the same tenant and applies its effects in one transaction (docs/ingest.md):
// reply stops the enrollment (stop_on_reply) and, with
// stop_company_on_reply, the other live enrollments of the same company
// domain; ooo reschedules pending executions; auto_reply and soft bounces
// are recorded; a hard bounce, a complaint or an unsubscribe suppress the
// address and stop the enrollment, and bounces and complaints are health
// input for the adapter that sent the original. A message already ingested
// under (tenant, provider, message_id) changes nothing and returns the
// original result.
func (s *Store) Ingest(ctx context.Context, tenant string, in InboundInput) (_ InboundResult, err error) {
	defer wrapErr(&err, "ingest")
	m := in.Message
	if m == nil || m.MessageID == "" {
		return InboundResult{}, dripdrop.Errorf(dripdrop.ECodeRequired, "message_id", "message_id is required")
	}
	provider := in.Provider
	if provider == "" {
		provider = DefaultInboundProvider
	}
	if in.AdapterID != nil {
		ok, err := s.q.AdapterExists(ctx, dbsqlc.AdapterExistsParams{TenantKey: tenant, ID: *in.AdapterID})
		if err != nil {
			return InboundResult{}, err
		}
		if !ok {
			return InboundResult{}, &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: "adapter_id", Message: "adapter not found"}
		}
	}
	var c ingest.Classification
	if in.Intent != "" {
		c = ingest.Complete(m, in.Intent)
	} else {
		c = ingest.Classify(m)
	}
	if in.ReturnAt != nil {
		c.ReturnDate, c.HasReturnDate = *in.ReturnAt, true
	}
	for attempt := 0; ; attempt++ {
		res, err := s.ingestTx(ctx, tenant, provider, in.AdapterID, m, c)
		if errors.Is(err, errInboundRace) && attempt == 0 {
			continue // the other delivery committed: this one is its duplicate
		}
		if err != nil {
			return InboundResult{}, mapErr(err, "inbound message")
		}
		return res, nil
	}
}

func (s *Store) ingestTx(ctx context.Context, tenant, provider string, adapterID *uuid.UUID, m *ingest.Message, c ingest.Classification) (InboundResult, error) {
	var res InboundResult
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		var evs []event
		prev, err := q.GetInboundByMessageID(ctx, dbsqlc.GetInboundByMessageIDParams{TenantKey: tenant, Provider: provider, MessageID: m.MessageID})
		if err == nil {
			if err := json.Unmarshal(prev.Result, &res); err != nil {
				return evs, err
			}
			res.Duplicate = true
			evs = append(evs, evDuplicate(tenant, provider, m.MessageID))
			return evs, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return evs, err
		}
		now := s.clock.Now()
		res = InboundResult{ID: dripdrop.NewID(), Provider: provider, MessageID: m.MessageID, Intent: c.Intent,
			Correlation: string(ingest.Unmatched), Effects: InboundEffects{Stopped: []uuid.UUID{}, CompanyStopped: []uuid.UUID{}}}
		if c.Intent == ingest.Bounce {
			res.BounceType = c.Bounce
		}

		// Correlate, always within the tenant.
		cands := m.Candidates()
		if c.OriginalMessageID != "" {
			cands = append(cands, ingest.Candidate{ID: c.OriginalMessageID, Via: ingest.ViaReport})
		}
		var sent *dbsqlc.FindSentByMessageIDRow
		for _, cand := range cands {
			row, err := q.FindSentByMessageID(ctx, dbsqlc.FindSentByMessageIDParams{TenantKey: tenant, Bracketed: "<" + cand.ID + ">", Bare: cand.ID})
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return evs, err
			}
			sent, res.Correlation = &row, string(cand.Via)
			res.StepExecutionID, res.EnrollmentID = &row.ID, &row.EnrollmentID
			break
		}

		var en *dbsqlc.IngestEnrollmentRow
		if sent != nil {
			if c.Intent == ingest.Complaint || (c.Intent == ingest.Bounce && c.Bounce == "hard") {
				// The health check locks the adapter: take it first, in the
				// dispatcher's order (adapter, then executions).
				if _, err := q.LockAdapter(ctx, dbsqlc.LockAdapterParams{TenantKey: tenant, ID: sent.AdapterID}); err != nil {
					return evs, err
				}
			}
			row, err := q.IngestEnrollment(ctx, dbsqlc.IngestEnrollmentParams{TenantKey: tenant, ID: sent.EnrollmentID})
			if err != nil {
				return evs, err
			}
			en = &row
			evs2, err := s.applyInbound(ctx, q, tenant, sent, en, m, c, &res.Effects, now)
			if err != nil {
				return evs, err
			}
			evs = append(evs, evs2...)
		} else if addr := unmatchedAddress(m, c); addr != "" {
			if err := s.suppressFromInbound(ctx, q, tenant, addr, c.Intent, now, &res.Effects); err != nil {
				return evs, err
			}
		}

		if err := s.insertInbound(ctx, q, tenant, provider, adapterID, m, c, &res, now); err != nil {
			return evs, err
		}
		evs = append([]event{evInbound(tenant, provider, m.MessageID, res.ID, res.StepExecutionID, string(c.Intent), c.Fault)}, evs...)
		if sent == nil {
			evs = append(evs, evUnmatched(tenant, provider, m.MessageID, res.ID))
		}
		return evs, nil
	})
	return res, err
}

// unmatchedAddress is the address an uncorrelated message still
// suppresses: the failed recipient of a hard bounce, the complained-about
// recipient of a complaint, the sender of an unsubscribe request.
func unmatchedAddress(m *ingest.Message, c ingest.Classification) string {
	switch {
	case c.Intent == ingest.Bounce && c.Bounce == "hard", c.Intent == ingest.Complaint:
		return c.Recipient
	case c.Intent == ingest.Unsubscribe:
		return m.From
	}
	return ""
}

func (s *Store) insertInbound(ctx context.Context, q *dbsqlc.Queries, tenant, provider string, adapterID *uuid.UUID, m *ingest.Message, c ingest.Classification, res *InboundResult, now time.Time) error {
	headers, err := json.Marshal(m.Headers)
	if err != nil || len(headers) > 256<<10 {
		headers = []byte("{}")
	}
	data := map[string]any{"signal": c.Signal}
	if c.Intent == ingest.Bounce {
		data["bounce_type"], data["status"], data["diagnostic_code"] = c.Bounce, c.Status, c.DiagnosticCode
	}
	if c.Intent == ingest.Complaint && c.FeedbackType != "" {
		data["feedback_type"] = c.FeedbackType
	}
	if c.Intent == ingest.OOO && c.HasReturnDate {
		data["return_date"] = c.ReturnDate.String()
	}
	intentData, _ := json.Marshal(data)
	result, err := json.Marshal(res)
	if err != nil {
		return err
	}
	body := m.BodyText
	if strings.TrimSpace(body) == "" && m.BodyHTML != "" {
		body = ingest.HTMLToText(m.BodyHTML)
	}
	body = strings.ReplaceAll(ingest.Truncate(body, ingest.MaxStoredBody), "\x00", "")
	subject := strings.ReplaceAll(ingest.Truncate(m.Subject, 998), "\x00", "")
	var inReplyTo *string
	if m.InReplyTo != "" {
		inReplyTo = &m.InReplyTo
	}
	refs := m.References
	if refs == nil {
		refs = []string{}
	}
	if len(refs) > 100 {
		refs = refs[len(refs)-100:]
	}
	_, err = q.InsertInbound(ctx, dbsqlc.InsertInboundParams{
		TenantKey: tenant, ID: res.ID, Provider: provider, MessageID: m.MessageID, AdapterID: adapterID, InReplyTo: inReplyTo,
		Refs: refs, FromAddress: ingest.Truncate(m.From, 998), Subject: &subject, BodyText: &body, Headers: headers,
		Intent: string(c.Intent), IntentData: intentData, Correlation: res.Correlation, StepExecutionID: res.StepExecutionID,
		EnrollmentID: res.EnrollmentID, ReceivedAt: m.ReceivedAt, Result: result, Now: now,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return errInboundRace
	}
	return err
}

// applyInbound applies the effects of a correlated message.
func (s *Store) applyInbound(ctx context.Context, q *dbsqlc.Queries, tenant string, sent *dbsqlc.FindSentByMessageIDRow, en *dbsqlc.IngestEnrollmentRow, m *ingest.Message, c ingest.Classification, fx *InboundEffects, now time.Time) ([]event, error) {
	var evs []event
	logEvent := func(typ string, subtype, reason *string) error {
		data, _ := json.Marshal(map[string]any{"signal": c.Signal})
		return q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: tenant, ID: dripdrop.NewID(), Type: typ, Subtype: subtype,
			AdapterID: &sent.AdapterID, StepExecutionID: &sent.ID, EnrollmentID: &en.ID, SequenceVersionID: &en.SequenceVersionID,
			Reason: reason, Data: data, OccurredAt: now})
	}
	stop := func(id uuid.UUID, reason string) (bool, error) {
		ev, err := s.stopEnrollment(ctx, q, tenant, id, reason)
		if err != nil || ev.name == "" {
			return false, err
		}
		evs = append(evs, ev)
		return true, nil
	}
	stopOwn := func(reason string) error {
		ok, err := stop(en.ID, reason)
		if ok {
			fx.Stopped, fx.StopReason = append(fx.Stopped, en.ID), reason
		}
		return err
	}
	// The recipient's own outcomes: suppressed and stopped as one.
	suppressOwn := func(reason string) error {
		ev, ok, err := s.suppressAndStop(ctx, q, tenant, en.ID, en.Email, reason, "inbound")
		if err != nil {
			return err
		}
		fx.Suppressed = true
		if ok {
			evs = append(evs, ev)
			fx.Stopped, fx.StopReason = append(fx.Stopped, en.ID), reason
		}
		return nil
	}
	var reason *string
	if c.Status != "" {
		reason = &c.Status
	}
	switch c.Intent {
	case ingest.Reply:
		if err := logEvent("replied", nil, nil); err != nil {
			return nil, err
		}
		if en.StopOnReply {
			if err := stopOwn("replied"); err != nil {
				return nil, err
			}
		}
		if en.StopCompanyOnReply {
			if domain := dripdrop.EmailDomain(en.Email); domain != "" && !ingest.FreeMail(domain) {
				ids, err := q.CompanyEnrollments(ctx, dbsqlc.CompanyEnrollmentsParams{TenantKey: tenant, Domain: domain, ExceptID: en.ID})
				if err != nil {
					return nil, err
				}
				for _, id := range ids {
					ok, err := stop(id, "company_replied")
					if err != nil {
						return nil, err
					}
					if ok {
						fx.CompanyStopped = append(fx.CompanyStopped, id)
					}
				}
			}
		}
	case ingest.OOO:
		if err := logEvent("ooo", nil, nil); err != nil {
			return nil, err
		}
		if en.State != dripdrop.EnrollmentActive && en.State != dripdrop.EnrollmentPaused {
			break
		}
		loc := contactLocation(en)
		at := ingest.ReturnAt(c.ReturnDate, c.HasReturnDate, loc, now).UTC()
		// The fence first: a send of this enrollment that a worker holds
		// (reserved before this reply) records its next step no earlier
		// than the return; scheduled executions, claimed or not, move.
		if err := q.FenceEnrollment(ctx, dbsqlc.FenceEnrollmentParams{TenantKey: tenant, ID: en.ID, NotBefore: at, Now: now}); err != nil {
			return nil, err
		}
		fx.ReturnAt = &at
		rows, err := q.RescheduleOOO(ctx, dbsqlc.RescheduleOOOParams{TenantKey: tenant, EnrollmentID: en.ID, ReturnAt: at, Now: now})
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			break
		}
		next := rows[0].ScheduledFor
		for _, r := range rows[1:] {
			if r.ScheduledFor.Before(next) {
				next = r.ScheduledFor
			}
		}
		fx.Rescheduled = len(rows)
		evs = append(evs, evOOORescheduled(tenant, en.ID, at, next))
	case ingest.AutoReply:
		if err := logEvent("auto_reply", nil, nil); err != nil {
			return nil, err
		}
	case ingest.Bounce:
		if c.Fault == ingest.FaultSender {
			// Not the prospect's failure: kept, and counted for the sender.
			sub := "soft"
			if err := logEvent("bounced", &sub, reason); err != nil {
				return nil, err
			}
			sevs, err := s.senderRejected(ctx, q, tenant, sent, en, c, now)
			if err != nil {
				return nil, err
			}
			fx.SenderFault, fx.FaultReason = true, c.FaultReason
			evs = append(evs, sevs...)
			break
		}
		sub := c.Bounce
		if err := logEvent("bounced", &sub, reason); err != nil {
			return nil, err
		}
		if c.Bounce != "hard" {
			break
		}
		if err := suppressOwn(dripdrop.StopBounced); err != nil {
			return nil, err
		}
		hev, err := s.afterHealthInput(ctx, q, tenant, sent.AdapterID)
		if err != nil {
			return nil, err
		}
		evs = append(evs, hev...)
	case ingest.Complaint:
		if err := logEvent("complained", nil, nil); err != nil {
			return nil, err
		}
		if err := suppressOwn(dripdrop.StopComplained); err != nil {
			return nil, err
		}
		hev, err := s.afterHealthInput(ctx, q, tenant, sent.AdapterID)
		if err != nil {
			return nil, err
		}
		evs = append(evs, hev...)
	case ingest.Unsubscribe:
		if err := logEvent("unsubscribed", nil, nil); err != nil {
			return nil, err
		}
		if err := suppressOwn(dripdrop.StopUnsubscribed); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// contactLocation is the contact's time zone, else the sending window's,
// else UTC.
func contactLocation(en *dbsqlc.IngestEnrollmentRow) *time.Location {
	for _, name := range []string{deref(en.Timezone), en.WindowTimezone} {
		if name == "" {
			continue
		}
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// suppressFromInbound adds an address to the suppression list with the
// reason of the intent (bounce, complaint, unsubscribe), source "inbound".
func (s *Store) suppressFromInbound(ctx context.Context, q *dbsqlc.Queries, tenant, address string, intent ingest.Intent, now time.Time, fx *InboundEffects) error {
	reason := map[ingest.Intent]string{ingest.Bounce: "bounce", ingest.Complaint: "complaint", ingest.Unsubscribe: "unsubscribe"}[intent]
	address = strings.ToLower(strings.TrimSpace(address))
	if reason == "" || address == "" || len(address) > 254 || !strings.Contains(address, "@") {
		return nil
	}
	fx.Suppressed = true
	return s.suppress(ctx, q, tenant, address, reason, "inbound")
}

// afterHealthInput runs the adapter health check right after a hard
// bounce or complaint was recorded for it (docs/health.md, thresholds are checked
// "after each bounce/complaint"), inside the same transaction, and returns
// the events it emits.
func (s *Store) afterHealthInput(ctx context.Context, q *dbsqlc.Queries, tenant string, adapterID uuid.UUID) ([]event, error) {
	return s.checkHealth(ctx, q, tenant, adapterID, s.clock.Now())
}

// InboundTenants resolves a recipient address of the inbound SMTP listener
// to the tenants and adapters whose from_address it is (case-insensitive).
func (s *Store) InboundTenants(ctx context.Context, address string) (_ []InboundRecipient, err error) {
	defer wrapErr(&err, "inbound tenants")
	rows, err := s.q.AdaptersByFromAddress(ctx, strings.TrimSpace(address))
	if err != nil {
		return nil, err
	}
	out := make([]InboundRecipient, len(rows))
	for i, r := range rows {
		out[i] = InboundRecipient{TenantKey: r.TenantKey, AdapterID: r.ID}
	}
	return out, nil
}

// InboundRecipient is a tenant's adapter that receives inbound mail.
type InboundRecipient struct {
	TenantKey string
	AdapterID uuid.UUID
}

// PauseSenderRejected is the pause reason of an enrollment whose delivered
// step came back as the sender's failure (a DSN about authentication,
// DMARC, a blocked IP, …): nothing was delivered, and the prospect is not
// to blame. Resume (or retry) sends that step again.
const PauseSenderRejected = "sender_rejected"

// senderRejected applies a bounce that is the sender's failure: the sent
// execution is failed for the sender, the enrollment's pending execution
// becomes that step's next attempt and an active enrollment is paused
// (sender_rejected), and the adapter counts an adapter error (reason
// auth_rejected or policy_rejected; three authentication rejections in a
// row rest it). The address is not suppressed.
func (s *Store) senderRejected(ctx context.Context, q *dbsqlc.Queries, tenant string, sent *dbsqlc.FindSentByMessageIDRow, en *dbsqlc.IngestEnrollmentRow, c ingest.Classification, now time.Time) ([]event, error) {
	var evs []event
	msg := ingest.Truncate(c.Status+" "+c.DiagnosticCode, 1000)
	n, err := q.FailSentForSender(ctx, dbsqlc.FailSentForSenderParams{TenantKey: tenant, ID: sent.ID, Error: &msg, Now: now})
	if err != nil {
		return nil, err
	}
	if n > 0 && en.State == dripdrop.EnrollmentActive {
		if _, err := q.RetargetPending(ctx, dbsqlc.RetargetPendingParams{TenantKey: tenant, EnrollmentID: en.ID, FailedID: sent.ID, Now: now}); err != nil {
			return nil, err
		}
		reason := PauseSenderRejected
		if _, err := q.SetEnrollmentState(ctx, dbsqlc.SetEnrollmentStateParams{TenantKey: tenant, ID: en.ID, State: dripdrop.EnrollmentPaused, PauseReason: &reason, Now: now}); err != nil {
			return nil, err
		}
		if err := s.audit(ctx, q, tenant, "enrollment", en.ID, "paused", SourceEngine, map[string]any{"reason": reason, "fault_reason": c.FaultReason}); err != nil {
			return nil, err
		}
		evs = append(evs, evEnrollment("dripdrop.enrollment.paused", tenant, en.ID, reason))
	}
	a, err := q.LockAdapter(ctx, dbsqlc.LockAdapterParams{TenantKey: tenant, ID: sent.AdapterID})
	if err != nil {
		return nil, err
	}
	aevs, err := s.countAdapterFault(ctx, q, a, c.FaultReason, c.FaultReason == "auth_rejected", now)
	return append(evs, aevs...), err
}
