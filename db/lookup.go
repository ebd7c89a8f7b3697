package db

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

// EnrollmentFilter selects enrollments for GET /v1/enrollments; nil fields
// do not filter.
type EnrollmentFilter struct {
	SequenceKey *string
	State       *string
	PauseReason *string
	StopReason  *string
	Email       *string
	AdapterID   *uuid.UUID
}

// SearchEnrollments pages through the enrollments matching f in id order
// (without executions).
func (s *Store) SearchEnrollments(ctx context.Context, tenant string, f EnrollmentFilter, p Page) (_ []dripdrop.Enrollment, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list enrollments")
	rows, err := s.q.SearchEnrollments(ctx, dbsqlc.SearchEnrollmentsParams{
		TenantKey: tenant, SequenceKey: f.SequenceKey, State: f.State, PauseReason: f.PauseReason, StopReason: f.StopReason,
		Email: f.Email, AdapterID: f.AdapterID, After: p.After, Lim: int32(p.limit()),
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]dripdrop.Enrollment, len(rows))
	for i, r := range rows {
		out[i] = enrollmentFromRow(dbsqlc.Enrollment{
			TenantKey: r.TenantKey, ID: r.ID, SequenceID: r.SequenceID, SequenceVersionID: r.SequenceVersionID, Email: r.Email,
			FirstName: r.FirstName, LastName: r.LastName, Company: r.Company, Timezone: r.Timezone, Vars: r.Vars, State: r.State,
			StopReason: r.StopReason, PauseReason: r.PauseReason, AdapterID: r.AdapterID, ThreadNo: r.ThreadNo,
			CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, EndedAt: r.EndedAt,
		})
		out[i].SequenceKey = r.SequenceKey
	}
	return out, nextCursor(out, p.limit(), func(e dripdrop.Enrollment) uuid.UUID { return e.ID }), nil
}

// UpdateEnrollment corrects the contact fields and vars of a non-terminal
// enrollment; later steps render with the new values.
func (s *Store) UpdateEnrollment(ctx context.Context, tenant string, id uuid.UUID, in dripdrop.EnrollmentPatch) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "update enrollment")
	return s.enrollmentOp(ctx, tenant, id, func(q *dbsqlc.Queries, e dbsqlc.Enrollment) ([]event, error) {
		if e.State != dripdrop.EnrollmentActive && e.State != dripdrop.EnrollmentPaused {
			return nil, invalidTransition(e, "change the contact of")
		}
		c, err := in.Apply(enrollmentFromRow(e).Contact)
		if err != nil {
			return nil, err
		}
		vars := []byte("{}")
		if len(c.Vars) > 0 {
			if vars, err = json.Marshal(c.Vars); err != nil {
				return nil, err
			}
		}
		if _, err := q.UpdateEnrollmentContact(ctx, dbsqlc.UpdateEnrollmentContactParams{
			Email: c.Email, FirstName: nilIfEmpty(c.FirstName), LastName: nilIfEmpty(c.LastName), Company: nilIfEmpty(c.Company),
			Timezone: nilIfEmpty(c.Timezone), Vars: vars, Now: s.clock.Now(), TenantKey: tenant, ID: id,
		}); err != nil {
			return nil, mapErr(err, "an active or paused enrollment of this address in the sequence")
		}
		return nil, s.audit(ctx, q, tenant, "enrollment", id, "contact_updated", "api", map[string]any{"fields": patchedFields(in)})
	})
}

func patchedFields(p dripdrop.EnrollmentPatch) []string {
	var f []string
	for name, set := range map[string]bool{"email": p.Email != nil, "first_name": p.FirstName != nil, "last_name": p.LastName != nil,
		"company": p.Company != nil, "timezone": p.Timezone != nil, "vars": p.Vars != nil} {
		if set {
			f = append(f, name)
		}
	}
	slices.Sort(f)
	return f
}

// currentBlock says what holds the enrollment's next step back now, from
// the same evaluation as Explain; nil when nothing does.
func (s *Store) currentBlock(ctx context.Context, tenant string, e *dripdrop.Enrollment) error {
	if e.State != dripdrop.EnrollmentActive {
		return nil
	}
	ex, err := s.Explain(ctx, tenant, e.ID)
	if err != nil || ex.StepExecutionID == nil || ex.State != "scheduled" || ex.AdapterID == nil {
		return err
	}
	now := s.clock.Now()
	var b *dripdrop.Block
	switch {
	case ex.Binding != nil && ex.Binding.Action == policy.Defer:
		until := ex.Binding.DeferUntil
		b = &dripdrop.Block{Policy: string(ex.Binding.Policy), AdapterID: *ex.AdapterID, Until: &until, Reason: ex.Binding.Reason}
	case ex.AdapterNextSend != nil && ex.AdapterNextSend.After(now) && ex.ScheduledFor != nil && ex.AdapterNextSend.After(*ex.ScheduledFor):
		until := *ex.AdapterNextSend
		b = &dripdrop.Block{Policy: "adapter_not_ready", AdapterID: *ex.AdapterID, Until: &until, Reason: "the adapter is not ready before next_send_at (backoff after adapter errors, or its gap after a send)"}
	}
	if b == nil || (ex.ScheduledFor != nil && !b.Until.After(*ex.ScheduledFor) && !b.Until.After(now)) {
		return nil
	}
	e.Block = b
	// The execution says why it waits even before the dispatcher has
	// recorded a deferral for it.
	for i := range e.Executions {
		x := &e.Executions[i]
		if x.ID == *ex.StepExecutionID && x.DeferReason == nil {
			reason := b.Policy
			x.DeferReason, x.DeferUntil = &reason, b.Until
		}
	}
	return nil
}

// SequenceStats is GET /v1/sequences/{id}/stats.
type SequenceStats struct {
	SequenceID uuid.UUID      `json:"sequence_id"`
	Key        string         `json:"key"`
	Versions   []VersionStats `json:"versions"`
}

// VersionStats are one version's numbers.
type VersionStats struct {
	Version           int                              `json:"version"`
	SequenceVersionID uuid.UUID                        `json:"sequence_version_id"`
	State             string                           `json:"state"`
	Enrollments       int                              `json:"enrollments"`
	ByState           map[dripdrop.EnrollmentState]int `json:"by_state"`
	ByStopReason      map[string]int                   `json:"by_stop_reason"`
	Steps             []StepStats                      `json:"steps"`
	Replies           int                              `json:"replies"`
	OOO               int                              `json:"ooo"`
	Bounces           int                              `json:"bounces"`
	HardBounces       int                              `json:"hard_bounces"`
	Complaints        int                              `json:"complaints"`
	Unsubscribes      int                              `json:"unsubscribes"`
	// ByCategory counts human replies per reply category.
	ByCategory map[string]int `json:"by_category"`
}

// StepStats counts one step's executions (every attempt window).
type StepStats struct {
	StepID    uuid.UUID `json:"step_id"`
	Key       string    `json:"key"`
	Position  int       `json:"position"`
	Scheduled int       `json:"scheduled"`
	Sent      int       `json:"sent"`
	Failed    int       `json:"failed"`
	// Variants are the step's variants with their numbers (empty when it
	// has none); Winner is the promoted variant's key.
	Variants []VariantStats `json:"variants"`
	Winner   *string        `json:"winner"`
}

// SequenceStats counts a sequence's enrollments, step executions and
// message events per version.
func (s *Store) SequenceStats(ctx context.Context, tenant string, id uuid.UUID) (_ SequenceStats, err error) {
	defer wrapErr(&err, "sequence stats")
	seq, err := s.GetSequence(ctx, tenant, id)
	if err != nil {
		return SequenceStats{}, err
	}
	st := SequenceStats{SequenceID: seq.ID, Key: seq.Key, Versions: []VersionStats{}}
	idx := map[uuid.UUID]*VersionStats{}
	for _, v := range seq.Versions {
		st.Versions = append(st.Versions, VersionStats{Version: v.Version, SequenceVersionID: v.ID, State: v.State,
			ByState:      byStateZero(),
			ByStopReason: map[string]int{}, Steps: []StepStats{}, ByCategory: byCategoryZero()})
	}
	defs := map[uuid.UUID]dripdrop.Step{}
	var stepIDs []uuid.UUID
	for _, v := range seq.Versions {
		for _, st := range v.Steps {
			defs[st.ID] = st
			if len(st.Variants) > 0 {
				stepIDs = append(stepIDs, st.ID)
			}
		}
	}
	arms, err := variantArms(ctx, s.q, tenant, stepIDs)
	if err != nil {
		return st, err
	}
	for i := range st.Versions {
		idx[st.Versions[i].SequenceVersionID] = &st.Versions[i]
	}
	ens, err := s.q.StatsEnrollments(ctx, dbsqlc.StatsEnrollmentsParams{TenantKey: tenant, SequenceID: id})
	if err != nil {
		return st, err
	}
	for _, r := range ens {
		if v := idx[r.SequenceVersionID]; v != nil {
			v.Enrollments += r.N
			v.ByState[r.State] += r.N
			if r.StopReason != "" {
				v.ByStopReason[r.StopReason] += r.N
			}
		}
	}
	steps, err := s.q.StatsSteps(ctx, dbsqlc.StatsStepsParams{TenantKey: tenant, SequenceID: id})
	if err != nil {
		return st, err
	}
	for _, r := range steps {
		if v := idx[r.SequenceVersionID]; v != nil {
			def := defs[r.StepID]
			v.Steps = append(v.Steps, StepStats{StepID: r.StepID, Key: r.Key, Position: r.Position, Scheduled: r.Scheduled, Sent: r.Sent, Failed: r.Failed,
				Variants: stepVariantStats(def, arms[r.StepID]), Winner: def.Winner})
		}
	}
	evs, err := s.q.StatsEvents(ctx, dbsqlc.StatsEventsParams{TenantKey: tenant, SequenceID: id})
	if err != nil {
		return st, err
	}
	for _, r := range evs {
		v := idx[*r.SequenceVersionID]
		if v == nil {
			continue
		}
		switch r.Type {
		case "replied":
			v.Replies += r.N
		case "ooo":
			v.OOO += r.N
		case "bounced":
			v.Bounces += r.N
			if r.Subtype == "hard" {
				v.HardBounces += r.N
			}
		case "complained":
			v.Complaints += r.N
		case "unsubscribed":
			v.Unsubscribes += r.N
		}
	}
	cats, err := s.q.StatsCategories(ctx, dbsqlc.StatsCategoriesParams{TenantKey: tenant, SequenceID: id})
	if err != nil {
		return st, err
	}
	for _, r := range cats {
		if v := idx[r.SequenceVersionID]; v != nil {
			v.ByCategory[r.Category] += r.N
		}
	}
	return st, nil
}

// byStateZero counts every enrollment state at zero.
func byStateZero() map[dripdrop.EnrollmentState]int {
	m := make(map[dripdrop.EnrollmentState]int, len(dripdrop.EnrollmentStates))
	for _, st := range dripdrop.EnrollmentStates {
		m[st] = 0
	}
	return m
}
