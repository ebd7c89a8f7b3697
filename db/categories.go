package db

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/ingest"
)

// Reply categories (docs/ingest.md#reply-categories): every human reply is
// categorised by the pure lexicon (ingest.Categorize) in the transaction
// that stores it; the category and its evidence go on the inbound record
// and the enrollment's latest category, and the step's auto-winner is
// evaluated (a reply changes the counts). An operator or a CRM corrects a
// category with CorrectCategory.

// Sources of a category.
const (
	CategoryEngine   = "engine"
	CategoryOperator = "operator"
	CategoryCRM      = "crm"
)

// categorizeReply categorises a stored reply and applies what follows from
// it; it returns the events.
func (s *Store) categorizeReply(ctx context.Context, q *dbsqlc.Queries, tenant string, m *ingest.Message, res *ingest.InboundResult, ev ingest.Evidence, now time.Time) ([]event, error) {
	cat := ingest.Category(res.Category)
	evidence, _ := json.Marshal(ev)
	src := CategoryEngine
	if err := q.SetInboundCategory(ctx, dbsqlc.SetInboundCategoryParams{TenantKey: tenant, ID: res.ID, Category: ptrTo(string(cat)),
		Evidence: evidence, Source: &src, Now: now}); err != nil {
		return nil, err
	}
	evs := []event{evReplyCategorized(tenant, res.ID, res.EnrollmentID, res.StepExecutionID, string(cat), "", src)}
	more, err := s.afterCategory(ctx, q, tenant, res.ID, res.EnrollmentID, res.StepExecutionID, string(cat), m.ReceivedAt, now)
	if err != nil {
		return nil, err
	}
	evs = append(evs, more...)
	routed, err := s.routeOf(ctx, q, tenant, res.EnrollmentID, dripdrop.TriggerOnReply, string(cat), &res.ID, now)
	return append(evs, routed...), err
}

// routeOf decides the branch of an enrollment's outcome (routeOutcome),
// reading the enrollment's version.
func (s *Store) routeOf(ctx context.Context, q *dbsqlc.Queries, tenant string, enrollment *uuid.UUID, trigger, category string, inbound *uuid.UUID, now time.Time) ([]event, error) {
	if enrollment == nil {
		return nil, nil
	}
	e, err := q.GetEnrollmentRow(ctx, dbsqlc.GetEnrollmentRowParams{TenantKey: tenant, ID: *enrollment})
	if err != nil {
		return nil, err
	}
	return s.routeOutcome(ctx, q, tenant, e.ID, e.SequenceVersionID, trigger, category, inbound, now)
}

// afterCategory records a reply's category on its enrollment (when it is
// the latest reply) and evaluates the replied step's auto-winner.
func (s *Store) afterCategory(ctx context.Context, q *dbsqlc.Queries, tenant string, inbound uuid.UUID, enrollment, execution *uuid.UUID, cat string, received, now time.Time) ([]event, error) {
	if enrollment != nil {
		if err := q.SetEnrollmentCategory(ctx, dbsqlc.SetEnrollmentCategoryParams{TenantKey: tenant, ID: *enrollment, Category: &cat,
			InboundID: inbound, ReceivedAt: received, Now: now}); err != nil {
			return nil, err
		}
	}
	if execution == nil {
		return nil, nil
	}
	x, err := q.ExecutionStep(ctx, dbsqlc.ExecutionStepParams{TenantKey: tenant, ID: *execution})
	if err != nil || x.Variant == nil {
		return nil, err
	}
	return s.evaluateWinnerOf(ctx, q, tenant, x.StepID, now)
}

// Inbound is a stored inbound message as GET /v1/inbound/{id} shows it.
type Inbound struct {
	ID              uuid.UUID        `json:"id"`
	Provider        string           `json:"provider"`
	MessageID       string           `json:"message_id"`
	AdapterID       *uuid.UUID       `json:"adapter_id"`
	From            string           `json:"from"`
	Subject         string           `json:"subject"`
	Intent          string           `json:"intent"`
	Correlation     string           `json:"correlation"`
	StepExecutionID *uuid.UUID       `json:"step_execution_id"`
	EnrollmentID    *uuid.UUID       `json:"enrollment_id"`
	StepID          *uuid.UUID       `json:"step_id"`
	Variant         *string          `json:"variant"`
	ReceivedAt      time.Time        `json:"received_at"`
	CreatedAt       time.Time        `json:"created_at"`
	Category        *string          `json:"category"`
	Evidence        *ingest.Evidence `json:"category_evidence"`
	CategorySource  *string          `json:"category_source"`
	CategorizedAt   *time.Time       `json:"categorized_at"`
}

// GetInbound returns one inbound message of the tenant.
func (s *Store) GetInbound(ctx context.Context, tenant string, id uuid.UUID) (_ Inbound, err error) {
	defer wrapErr(&err, "get inbound")
	return s.getInbound(ctx, s.q, tenant, id)
}

func (s *Store) getInbound(ctx context.Context, q *dbsqlc.Queries, tenant string, id uuid.UUID) (Inbound, error) {
	r, err := q.GetInbound(ctx, dbsqlc.GetInboundParams{TenantKey: tenant, ID: id})
	if err != nil {
		return Inbound{}, mapErr(err, "inbound message")
	}
	in := Inbound{ID: r.ID, Provider: r.Provider, MessageID: r.MessageID, AdapterID: r.AdapterID, From: r.FromAddress,
		Subject: deref(r.Subject), Intent: r.Intent, Correlation: r.Correlation, StepExecutionID: r.StepExecutionID,
		EnrollmentID: r.EnrollmentID, StepID: r.StepID, Variant: r.Variant, ReceivedAt: r.ReceivedAt, CreatedAt: r.CreatedAt,
		Category: r.Category, CategorySource: r.CategorySource, CategorizedAt: r.CategoryUpdatedAt}
	if len(r.CategoryEvidence) > 0 {
		var ev ingest.Evidence
		if json.Unmarshal(r.CategoryEvidence, &ev) == nil {
			in.Evidence = &ev
		}
	}
	return in, nil
}

// CategoryInput is PATCH /v1/inbound/{id}: an operator's or a CRM's
// correction of a reply's category.
type CategoryInput struct {
	Category *string `json:"category"`
	// Source is "operator" (default) or "crm".
	Source *string `json:"source"`
}

// CorrectCategory sets a human reply's category by hand (docs/ingest.md#reply-categories):
// the inbound record keeps who set it, the enrollment takes it when this is
// its latest reply, dripdrop.ingest.reply_categorized reports it, and the
// step's auto-winner is evaluated again. Only replies have a category
// (409 invalid_state otherwise).
func (s *Store) CorrectCategory(ctx context.Context, tenant string, id uuid.UUID, in CategoryInput) (_ Inbound, err error) {
	defer wrapErr(&err, "correct category")
	if in.Category == nil {
		return Inbound{}, dripdrop.Errorf(dripdrop.ECodeRequired, "category", "category is required")
	}
	cat := ingest.Category(*in.Category)
	if !cat.Valid() {
		return Inbound{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "category", "category must be one of interested, not_interested, not_now, referral, wrong_person, question, uncategorized")
	}
	src := CategoryOperator
	if in.Source != nil {
		if *in.Source != CategoryOperator && *in.Source != CategoryCRM {
			return Inbound{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "source", "source must be \"operator\" or \"crm\"")
		}
		src = *in.Source
	}
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.LockInbound(ctx, dbsqlc.LockInboundParams{TenantKey: tenant, ID: id})
		if err != nil {
			return nil, mapErr(err, "inbound message")
		}
		if row.Intent != string(ingest.Reply) {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidState, "category", "only human replies have a category (this message is %s)", row.Intent)
		}
		now := s.clock.Now()
		prev := deref(row.Category)
		evidence, _ := json.Marshal(ingest.Evidence{Rule: "corrected", Previous: prev})
		if err := q.SetInboundCategory(ctx, dbsqlc.SetInboundCategoryParams{TenantKey: tenant, ID: id, Category: ptrTo(string(cat)),
			Evidence: evidence, Source: &src, Now: now}); err != nil {
			return nil, err
		}
		if row.EnrollmentID != nil {
			if err := s.audit(ctx, q, tenant, "enrollment", *row.EnrollmentID, "reply_category_corrected", src,
				map[string]any{"inbound_id": id, "category": cat, "previous": prev}); err != nil {
				return nil, err
			}
		}
		evs := []event{evReplyCategorized(tenant, id, row.EnrollmentID, row.StepExecutionID, string(cat), prev, src)}
		more, err := s.afterCategory(ctx, q, tenant, id, row.EnrollmentID, row.StepExecutionID, string(cat), row.ReceivedAt, now)
		if err != nil {
			return nil, err
		}
		evs = append(evs, more...)
		routed, err := s.routeOf(ctx, q, tenant, row.EnrollmentID, dripdrop.TriggerOnReply, string(cat), &id, now)
		return append(evs, routed...), err
	})
	if err != nil {
		return Inbound{}, err
	}
	s.runRoutesAfter(ctx, tenant)
	return s.GetInbound(ctx, tenant, id)
}

func ptrTo[T any](v T) *T { return &v }

// categoryOf is the lexicon's category of a reply.
func categoryOf(m *ingest.Message) (string, ingest.Evidence) {
	c, ev := ingest.Categorize(m.NewText())
	return string(c), ev
}

// runRoutesAfter carries out the routes an outcome made due at once (a
// branch without delay); the leader's route_sweep retries what fails here.
func (s *Store) runRoutesAfter(ctx context.Context, tenant string) {
	if _, err := s.RunDueRoutes(ctx, tenant); err != nil {
		s.log.Warn("running due routes after an outcome; the route sweep retries", "tenant", tenant, "err", err)
	}
}

// EnrollmentInbound lists an enrollment's inbound messages (at most 200),
// oldest first, with the categories of its replies.
func (s *Store) EnrollmentInbound(ctx context.Context, tenant string, enrollment uuid.UUID) (_ []Inbound, err error) {
	defer wrapErr(&err, "enrollment inbound")
	rows, err := s.q.EnrollmentInbound(ctx, dbsqlc.EnrollmentInboundParams{TenantKey: tenant, EnrollmentID: &enrollment})
	if err != nil {
		return nil, err
	}
	out := make([]Inbound, len(rows))
	for i, r := range rows {
		out[i] = Inbound{ID: r.ID, Intent: r.Intent, Category: r.Category, CategorySource: r.CategorySource, ReceivedAt: r.ReceivedAt,
			StepExecutionID: r.StepExecutionID, EnrollmentID: &enrollment}
		if len(r.CategoryEvidence) > 0 {
			var ev ingest.Evidence
			if json.Unmarshal(r.CategoryEvidence, &ev) == nil {
				out[i].Evidence = &ev
			}
		}
	}
	return out, nil
}
