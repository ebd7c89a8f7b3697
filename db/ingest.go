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
func (s *Store) Ingest(ctx context.Context, tenant string, in ingest.InboundInput) (_ ingest.InboundResult, err error) {
	defer wrapErr(&err, "ingest")
	m := in.Message
	if m == nil || m.MessageID == "" {
		return ingest.InboundResult{}, dripdrop.Errorf(dripdrop.ECodeRequired, "message_id", "message_id is required")
	}
	provider := in.Provider
	if provider == "" {
		provider = ingest.DefaultInboundProvider
	}
	if in.AdapterID != nil {
		ok, err := s.q.AdapterExists(ctx, dbsqlc.AdapterExistsParams{TenantKey: tenant, ID: *in.AdapterID})
		if err != nil {
			return ingest.InboundResult{}, err
		}
		if !ok {
			return ingest.InboundResult{}, &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: "adapter_id", Message: "adapter not found"}
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
	if c.Intent == ingest.Bounce && in.Fault != "" && in.Fault != c.Fault {
		c.Fault = in.Fault
		if c.Fault == ingest.FaultSender {
			c.FaultReason = "policy_rejected"
		} else {
			c.FaultReason = ""
		}
	}
	for attempt := 0; ; attempt++ {
		res, err := s.ingestTx(ctx, tenant, provider, in.AdapterID, m, c)
		if errors.Is(err, errInboundRace) && attempt == 0 {
			continue // the other delivery committed: this one is its duplicate
		}
		if err != nil {
			return ingest.InboundResult{}, mapErr(err, "inbound message")
		}
		if !res.Duplicate && res.EnrollmentID != nil && (c.Intent == ingest.Reply || c.Intent == ingest.AutoReply) {
			s.runRoutesAfter(ctx, tenant)
		}
		return res, nil
	}
}

func (s *Store) ingestTx(ctx context.Context, tenant, provider string, adapterID *uuid.UUID, m *ingest.Message, c ingest.Classification) (ingest.InboundResult, error) {
	var res ingest.InboundResult
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
		res = ingest.InboundResult{ID: dripdrop.NewID(), Provider: provider, MessageID: m.MessageID, Intent: c.Intent,
			Correlation: string(ingest.Unmatched), Effects: ingest.InboundEffects{Stopped: []uuid.UUID{}, CompanyStopped: []uuid.UUID{}}}
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

		var evidence ingest.Evidence
		if c.Intent == ingest.Reply {
			res.Category, evidence = categoryOf(m)
		}
		if err := s.insertInbound(ctx, q, tenant, provider, adapterID, m, c, &res, now); err != nil {
			return evs, err
		}
		if c.Intent == ingest.Reply {
			cevs, err := s.categorizeReply(ctx, q, tenant, m, &res, evidence, now)
			if err != nil {
				return evs, err
			}
			evs = append(evs, cevs...)
		}
		if c.Intent == ingest.AutoReply {
			revs, err := s.routeOf(ctx, q, tenant, res.EnrollmentID, dripdrop.TriggerOnAutoReply, "", &res.ID, now)
			if err != nil {
				return evs, err
			}
			evs = append(evs, revs...)
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

func (s *Store) insertInbound(ctx context.Context, q *dbsqlc.Queries, tenant, provider string, adapterID *uuid.UUID, m *ingest.Message, c ingest.Classification, res *ingest.InboundResult, now time.Time) error {
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

// applyInbound carries out the effects ingest.PlanEffects decides for a
// correlated message, in the transaction that stores it.
func (s *Store) applyInbound(ctx context.Context, q *dbsqlc.Queries, tenant string, sent *dbsqlc.FindSentByMessageIDRow, en *dbsqlc.IngestEnrollmentRow, m *ingest.Message, c ingest.Classification, fx *ingest.InboundEffects, now time.Time) ([]event, error) {
	plan := ingest.PlanEffects(c, ingest.Target{State: en.State, Email: en.Email, StopOnReply: en.StopOnReply,
		StopCompanyOnReply: en.StopCompanyOnReply, Location: contactLocation(en)}, now)
	var subtype, reason *string
	if plan.LogSubtype != "" {
		subtype = &plan.LogSubtype
	}
	if c.Intent == ingest.Bounce && c.Status != "" {
		reason = &c.Status
	}
	data, _ := json.Marshal(map[string]any{"signal": c.Signal})
	if err := q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: tenant, ID: dripdrop.NewID(), Type: plan.Log, Subtype: subtype,
		AdapterID: &sent.AdapterID, StepExecutionID: &sent.ID, EnrollmentID: &en.ID, SequenceVersionID: &en.SequenceVersionID,
		Reason: reason, Data: data, OccurredAt: now}); err != nil {
		return nil, err
	}
	var evs []event
	steps := []func() ([]event, error){
		func() ([]event, error) { return s.planStop(ctx, q, tenant, en, plan, fx) },
		func() ([]event, error) { return s.planCompanyStop(ctx, q, tenant, en, plan, fx) },
		func() ([]event, error) { return s.planReschedule(ctx, q, tenant, en, plan, fx, now) },
		func() ([]event, error) {
			if !plan.SenderFault {
				return nil, nil
			}
			fx.SenderFault, fx.FaultReason = true, plan.FaultReason
			return s.senderRejected(ctx, q, tenant, sent, en, c, now)
		},
		func() ([]event, error) {
			if !plan.HealthInput {
				return nil, nil
			}
			return s.afterHealthInput(ctx, q, tenant, sent.AdapterID)
		},
	}
	for _, step := range steps {
		e, err := step()
		if err != nil {
			return nil, err
		}
		evs = append(evs, e...)
	}
	return evs, nil
}

// planStop stops the enrollment the plan stops; a recipient's outcome
// (Suppress) suppresses its address as well.
func (s *Store) planStop(ctx context.Context, q *dbsqlc.Queries, tenant string, en *dbsqlc.IngestEnrollmentRow, plan ingest.Plan, fx *ingest.InboundEffects) ([]event, error) {
	if plan.Stop == "" {
		return nil, nil
	}
	var ev event
	var err error
	if plan.Suppress {
		fx.Suppressed = true
		ev, _, err = s.suppressAndStop(ctx, q, tenant, en.ID, en.Email, plan.Stop, "inbound")
	} else {
		ev, err = s.stopEnrollment(ctx, q, tenant, en.ID, plan.Stop)
	}
	if err != nil || ev.name == "" {
		return nil, err
	}
	fx.Stopped, fx.StopReason = append(fx.Stopped, en.ID), plan.Stop
	return []event{ev}, nil
}

// planCompanyStop stops the company's other live enrollments.
func (s *Store) planCompanyStop(ctx context.Context, q *dbsqlc.Queries, tenant string, en *dbsqlc.IngestEnrollmentRow, plan ingest.Plan, fx *ingest.InboundEffects) ([]event, error) {
	if plan.CompanyDomain == "" {
		return nil, nil
	}
	ids, err := q.CompanyEnrollments(ctx, dbsqlc.CompanyEnrollmentsParams{TenantKey: tenant, Domain: plan.CompanyDomain, ExceptID: en.ID})
	if err != nil {
		return nil, err
	}
	var evs []event
	for _, id := range ids {
		ev, err := s.stopEnrollment(ctx, q, tenant, id, dripdrop.StopCompanyReplied)
		if err != nil {
			return nil, err
		}
		if ev.name != "" {
			evs = append(evs, ev)
			fx.CompanyStopped = append(fx.CompanyStopped, id)
		}
	}
	return evs, nil
}

// planReschedule moves the enrollment to its out-of-office return. The
// fence first: a send of this enrollment that a worker holds (reserved
// before this reply) records its next step no earlier than the return;
// scheduled executions, claimed or not, move.
func (s *Store) planReschedule(ctx context.Context, q *dbsqlc.Queries, tenant string, en *dbsqlc.IngestEnrollmentRow, plan ingest.Plan, fx *ingest.InboundEffects, now time.Time) ([]event, error) {
	if plan.RescheduleTo == nil {
		return nil, nil
	}
	at := *plan.RescheduleTo
	if err := q.FenceEnrollment(ctx, dbsqlc.FenceEnrollmentParams{TenantKey: tenant, ID: en.ID, NotBefore: at, Now: now}); err != nil {
		return nil, err
	}
	fx.ReturnAt = &at
	rows, err := q.RescheduleOOO(ctx, dbsqlc.RescheduleOOOParams{TenantKey: tenant, EnrollmentID: en.ID, ReturnAt: at, Now: now})
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	next := rows[0].ScheduledFor
	for _, r := range rows[1:] {
		if r.ScheduledFor.Before(next) {
			next = r.ScheduledFor
		}
	}
	fx.Rescheduled = len(rows)
	return []event{evOOORescheduled(tenant, en.ID, at, next)}, nil
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
func (s *Store) suppressFromInbound(ctx context.Context, q *dbsqlc.Queries, tenant, address string, intent ingest.Intent, now time.Time, fx *ingest.InboundEffects) error {
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
func (s *Store) InboundTenants(ctx context.Context, address string) (_ []ingest.InboundRecipient, err error) {
	defer wrapErr(&err, "inbound tenants")
	rows, err := s.q.AdaptersByFromAddress(ctx, strings.TrimSpace(address))
	if err != nil {
		return nil, err
	}
	out := make([]ingest.InboundRecipient, len(rows))
	for i, r := range rows {
		out[i] = ingest.InboundRecipient{TenantKey: r.TenantKey, AdapterID: r.ID}
	}
	return out, nil
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
