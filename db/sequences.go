package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

func versionFromRow(r dbsqlc.SequenceVersion) dripdrop.SequenceVersion {
	days := make([]int, len(r.WindowDays))
	for i, d := range r.WindowDays {
		days[i] = int(d)
	}
	return dripdrop.SequenceVersion{
		ID: r.ID, SequenceID: r.SequenceID, Version: r.Version, State: r.State, Mode: r.Mode, PoolID: r.PoolID,
		SendWindow:  dripdrop.SendWindow{Days: days, Start: dripdrop.FormatClock(int(r.WindowStart)), End: dripdrop.FormatClock(int(r.WindowEnd)), Timezone: r.WindowTimezone, Holidays: nonNilStrings(r.WindowHolidays)},
		StopOnReply: r.StopOnReply, StopCompanyOnReply: r.StopCompanyOnReply, ListUnsubscribe: r.ListUnsubscribe, VerifyRecipients: r.VerifyRecipients, Steps: []dripdrop.Step{}, Budgets: []dripdrop.Budget{}, ActivatedAt: r.ActivatedAt, CreatedAt: r.CreatedAt,
		Branches: versionBranches(r.Branches), ContinueThread: r.ContinueThread,
	}
}

func stepFromRow(r dbsqlc.Step) dripdrop.Step {
	st := dripdrop.Step{ID: r.ID, Key: r.Key, Position: r.Position, DelaySeconds: r.DelaySeconds, Subject: r.Subject,
		BodyText: r.BodyText, BodyHTML: r.BodyHtml, Spintax: r.Spintax, AdapterOverrideID: r.AdapterOverrideID}
	stepVariantFields(&st, r)
	return st
}

func windowParams(w dripdrop.SendWindow) ([]int16, int16, int16) {
	days := make([]int16, len(w.Days))
	for i, d := range w.Days {
		days[i] = int16(d)
	}
	start, _ := dripdrop.ParseClock(w.Start)
	end, _ := dripdrop.ParseClock(w.End)
	return days, int16(start), int16(end)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// checkVersionRefs verifies that the pool and every override adapter exist
// in the tenant, and that the window's holiday calendars are known.
func checkVersionRefs(ctx context.Context, q *dbsqlc.Queries, tenant string, v dripdrop.SequenceVersion) error {
	for _, h := range v.SendWindow.Holidays {
		if !policy.ValidHolidayCalendar(h) {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "send_window.holidays", "no holiday calendar %q; known: %s", h, strings.Join(policy.HolidayCalendars(), ", "))
		}
	}
	if _, err := q.GetPool(ctx, dbsqlc.GetPoolParams{TenantKey: tenant, ID: v.PoolID}); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: "pool_id", Message: "pool not found"}
		}
		return err
	}
	for i, st := range v.Steps {
		if st.AdapterOverrideID == nil {
			continue
		}
		if _, err := q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: *st.AdapterOverrideID}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: fmt.Sprintf("steps[%d].adapter_override_id", i), Message: "adapter not found"}
			}
			return err
		}
	}
	return nil
}

func insertSteps(ctx context.Context, q *dbsqlc.Queries, tenant string, version uuid.UUID, steps []dripdrop.Step) error {
	for _, st := range steps {
		variants, autoWinner := stepVariantsJSON(st)
		if _, err := q.CreateStep(ctx, dbsqlc.CreateStepParams{
			TenantKey: tenant, ID: dripdrop.NewID(), SequenceVersionID: version, Key: st.Key, Position: st.Position,
			DelaySeconds: st.DelaySeconds, Subject: st.Subject, BodyText: st.BodyText, BodyHtml: st.BodyHTML,
			Spintax: st.Spintax, AdapterOverrideID: st.AdapterOverrideID, Variants: variants, AutoWinner: autoWinner,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insertVersion(ctx context.Context, q *dbsqlc.Queries, tenant string, seq uuid.UUID, v dripdrop.SequenceVersion, activate bool) error {
	if err := checkVersionRefs(ctx, q, tenant, v); err != nil {
		return err
	}
	now := s.clock.Now()
	state := "draft"
	var activatedAt *time.Time
	if activate {
		if err := q.ArchiveActiveVersions(ctx, dbsqlc.ArchiveActiveVersionsParams{TenantKey: tenant, SequenceID: seq}); err != nil {
			return err
		}
		state, activatedAt = "active", &now
	}
	days, start, end := windowParams(v.SendWindow)
	number, err := q.NextSequenceVersion(ctx, dbsqlc.NextSequenceVersionParams{TenantKey: tenant, SequenceID: seq})
	if err != nil {
		return err
	}
	row, err := q.CreateSequenceVersion(ctx, dbsqlc.CreateSequenceVersionParams{
		TenantKey: tenant, ID: dripdrop.NewID(), SequenceID: seq, Version: number, State: state, Mode: v.Mode, PoolID: v.PoolID,
		WindowDays: days, WindowStart: start, WindowEnd: end, WindowTimezone: v.SendWindow.Timezone, WindowHolidays: nonNilStrings(v.SendWindow.Holidays),
		StopOnReply: v.StopOnReply, StopCompanyOnReply: v.StopCompanyOnReply, ListUnsubscribe: v.ListUnsubscribe, VerifyRecipients: v.VerifyRecipients, ActivatedAt: activatedAt, Now: now,
	})
	if err != nil {
		return err
	}
	if err := s.setBranches(ctx, q, tenant, seq, row.ID, &v, activate); err != nil {
		return err
	}
	return insertSteps(ctx, q, tenant, row.ID, v.Steps)
}

// CreateSequence creates a sequence with its first version (active unless
// Activate is false) and its steps, atomically.
func (s *Store) CreateSequence(ctx context.Context, tenant string, in dripdrop.SequenceInput) (_ dripdrop.Sequence, err error) {
	defer wrapErr(&err, "create sequence")
	if err := in.Validate(); err != nil {
		return dripdrop.Sequence{}, err
	}
	v, err := in.VersionInput.Apply(nil)
	if err != nil {
		return dripdrop.Sequence{}, err
	}
	activate := in.Activate == nil || *in.Activate
	var id uuid.UUID
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		now := s.clock.Now()
		row, err := q.CreateSequence(ctx, dbsqlc.CreateSequenceParams{TenantKey: tenant, ID: dripdrop.NewID(), Key: *in.Key, Name: *in.Name, Now: now})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, dripdrop.Errorf(dripdrop.ECodeAlreadyExists, "key", "a sequence with key %q already exists", *in.Key)
		}
		if err != nil {
			return nil, err
		}
		id = row.ID
		return nil, s.insertVersion(ctx, q, tenant, id, v, activate)
	})
	if err != nil {
		return dripdrop.Sequence{}, mapErr(err, "sequence")
	}
	return s.GetSequence(ctx, tenant, id)
}

// GetSequence returns a sequence with every version, its steps and budgets.
func (s *Store) GetSequence(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Sequence, err error) {
	defer wrapErr(&err, "get sequence")
	row, err := s.q.GetSequence(ctx, dbsqlc.GetSequenceParams{TenantKey: tenant, ID: id})
	return s.oneSequence(ctx, tenant, row, err)
}

// GetSequenceByKey resolves a sequence by its key.
func (s *Store) GetSequenceByKey(ctx context.Context, tenant, key string) (_ dripdrop.Sequence, err error) {
	defer wrapErr(&err, "get sequence")
	row, err := s.q.GetSequenceByKey(ctx, dbsqlc.GetSequenceByKeyParams{TenantKey: tenant, Key: key})
	return s.oneSequence(ctx, tenant, row, err)
}

// oneSequence loads the versions of one looked-up sequence row (err: the
// lookup's).
func (s *Store) oneSequence(ctx context.Context, tenant string, row dbsqlc.Sequence, err error) (dripdrop.Sequence, error) {
	if err != nil {
		return dripdrop.Sequence{}, mapErr(err, "sequence")
	}
	seqs, err := s.loadSequences(ctx, tenant, []dbsqlc.Sequence{row})
	if err != nil {
		return dripdrop.Sequence{}, err
	}
	return seqs[0], nil
}

// ListSequences pages through sequences with their versions.
func (s *Store) ListSequences(ctx context.Context, tenant string, p Page) (_ []dripdrop.Sequence, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list sequences")
	rows, err := s.q.ListSequences(ctx, dbsqlc.ListSequencesParams{TenantKey: tenant, After: p.After, Lim: int32(p.limit())})
	if err != nil {
		return nil, nil, err
	}
	out, err := s.loadSequences(ctx, tenant, rows)
	if err != nil {
		return nil, nil, err
	}
	return out, nextCursor(out, p.limit(), func(s dripdrop.Sequence) uuid.UUID { return s.ID }), nil
}

func (s *Store) loadSequences(ctx context.Context, tenant string, rows []dbsqlc.Sequence) ([]dripdrop.Sequence, error) {
	out := make([]dripdrop.Sequence, len(rows))
	var versionIDs []uuid.UUID
	type pos struct{ seq, ver int }
	where := map[uuid.UUID]pos{}
	for i, r := range rows {
		out[i] = dripdrop.Sequence{ID: r.ID, Key: r.Key, Name: r.Name, Versions: []dripdrop.SequenceVersion{}, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
		vs, err := s.q.ListSequenceVersions(ctx, dbsqlc.ListSequenceVersionsParams{TenantKey: tenant, SequenceID: r.ID})
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			where[v.ID] = pos{i, len(out[i].Versions)}
			out[i].Versions = append(out[i].Versions, versionFromRow(v))
			versionIDs = append(versionIDs, v.ID)
		}
	}
	if len(versionIDs) == 0 {
		return out, nil
	}
	steps, err := s.q.ListStepsForVersions(ctx, dbsqlc.ListStepsForVersionsParams{TenantKey: tenant, VersionIds: versionIDs})
	if err != nil {
		return nil, err
	}
	for _, st := range steps {
		p := where[st.SequenceVersionID]
		v := &out[p.seq].Versions[p.ver]
		v.Steps = append(v.Steps, stepFromRow(st))
	}
	budgets, err := s.q.ListBudgetsForVersions(ctx, dbsqlc.ListBudgetsForVersionsParams{TenantKey: tenant, VersionIds: versionIDs})
	if err != nil {
		return nil, err
	}
	for _, b := range budgets {
		p := where[b.SequenceVersionID]
		v := &out[p.seq].Versions[p.ver]
		v.Budgets = append(v.Budgets, dripdrop.Budget{AdapterID: b.AdapterID, SequenceVersionID: b.SequenceVersionID, MaxSharePct: b.MaxSharePct, UpdatedAt: b.UpdatedAt})
	}
	return out, nil
}

// CreateVersion adds a new version (a draft unless activate is set).
func (s *Store) CreateVersion(ctx context.Context, tenant string, seq uuid.UUID, in dripdrop.VersionInput, activate bool) (_ dripdrop.Sequence, err error) {
	defer wrapErr(&err, "create version")
	v, err := in.Apply(nil)
	if err != nil {
		return dripdrop.Sequence{}, err
	}
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		if _, err := q.GetSequenceForUpdate(ctx, dbsqlc.GetSequenceForUpdateParams{TenantKey: tenant, ID: seq}); err != nil {
			return nil, mapErr(err, "sequence")
		}
		return nil, s.insertVersion(ctx, q, tenant, seq, v, activate)
	})
	if err != nil {
		return dripdrop.Sequence{}, mapErr(err, "sequence version")
	}
	return s.GetSequence(ctx, tenant, seq)
}

// UpdateDraftVersion changes a draft version; active and archived versions
// are immutable (409 version_immutable).
func (s *Store) UpdateDraftVersion(ctx context.Context, tenant string, seq uuid.UUID, n int, in dripdrop.VersionInput) (_ dripdrop.Sequence, err error) {
	defer wrapErr(&err, "update draft version")
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		row, err := q.GetSequenceVersionForUpdate(ctx, dbsqlc.GetSequenceVersionForUpdateParams{TenantKey: tenant, SequenceID: seq, Version: n})
		if err != nil {
			return nil, mapErr(err, "sequence version")
		}
		if row.State != "draft" {
			return nil, dripdrop.Errorf(dripdrop.ECodeVersionImmutable, "", "version %d is %s; only drafts can change (create a new version instead)", n, row.State)
		}
		cur := versionFromRow(row)
		v, err := in.Apply(&cur)
		if err != nil {
			return nil, err
		}
		if in.Steps == nil {
			v.Steps = nil // keep stored steps; only the pool is checked
		}
		if err := checkVersionRefs(ctx, q, tenant, v); err != nil {
			return nil, err
		}
		days, start, end := windowParams(v.SendWindow)
		if _, err := q.UpdateDraftVersion(ctx, dbsqlc.UpdateDraftVersionParams{
			TenantKey: tenant, ID: row.ID, PoolID: v.PoolID, WindowDays: days, WindowStart: start, WindowEnd: end,
			WindowTimezone: v.SendWindow.Timezone, WindowHolidays: nonNilStrings(v.SendWindow.Holidays), StopOnReply: v.StopOnReply, StopCompanyOnReply: v.StopCompanyOnReply,
			ListUnsubscribe: v.ListUnsubscribe, VerifyRecipients: v.VerifyRecipients,
		}); err != nil {
			return nil, err
		}
		if err := s.setBranches(ctx, q, tenant, seq, row.ID, &v, false); err != nil {
			return nil, err
		}
		if in.Steps != nil {
			if err := q.DeleteSteps(ctx, dbsqlc.DeleteStepsParams{TenantKey: tenant, SequenceVersionID: row.ID}); err != nil {
				return nil, err
			}
			return nil, insertSteps(ctx, q, tenant, row.ID, v.Steps)
		}
		return nil, nil
	})
	if err != nil {
		return dripdrop.Sequence{}, mapErr(err, "sequence version")
	}
	return s.GetSequence(ctx, tenant, seq)
}

// ActivateVersion makes version n the active one, archiving the previous.
func (s *Store) ActivateVersion(ctx context.Context, tenant string, seq uuid.UUID, n int) (_ dripdrop.Sequence, err error) {
	defer wrapErr(&err, "activate version")
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		if _, err := q.GetSequenceForUpdate(ctx, dbsqlc.GetSequenceForUpdateParams{TenantKey: tenant, ID: seq}); err != nil {
			return nil, mapErr(err, "sequence")
		}
		row, err := q.GetSequenceVersionForUpdate(ctx, dbsqlc.GetSequenceVersionForUpdateParams{TenantKey: tenant, SequenceID: seq, Version: n})
		if err != nil {
			return nil, mapErr(err, "sequence version")
		}
		if row.State == "active" {
			return nil, nil
		}
		if _, err := q.GetPool(ctx, dbsqlc.GetPoolParams{TenantKey: tenant, ID: row.PoolID}); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "pool_id", "the version's pool was deleted")
			}
			return nil, err
		}
		if b := versionBranches(row.Branches); !b.Empty() {
			// Other sequences may have changed since the draft was written.
			if err := q.LockBranchGraph(ctx, tenant); err != nil {
				return nil, err
			}
			if err := checkCycles(ctx, q, tenant, seq, b); err != nil {
				return nil, err
			}
		}
		if err := q.ArchiveActiveVersions(ctx, dbsqlc.ArchiveActiveVersionsParams{TenantKey: tenant, SequenceID: seq}); err != nil {
			return nil, err
		}
		_, err = q.ActivateVersion(ctx, dbsqlc.ActivateVersionParams{TenantKey: tenant, ID: row.ID, Now: s.clock.Now()})
		return nil, err
	})
	if err != nil {
		return dripdrop.Sequence{}, mapErr(err, "sequence version")
	}
	return s.GetSequence(ctx, tenant, seq)
}

// PutBudget sets an adapter's share cap for a version. Budgets are
// operational settings and may change on active versions.
func (s *Store) PutBudget(ctx context.Context, tenant string, seq uuid.UUID, n int, adapter uuid.UUID, in dripdrop.BudgetInput) (_ dripdrop.Budget, err error) {
	defer wrapErr(&err, "put budget")
	if err := in.Validate(); err != nil {
		return dripdrop.Budget{}, err
	}
	v, err := s.q.GetSequenceVersion(ctx, dbsqlc.GetSequenceVersionParams{TenantKey: tenant, SequenceID: seq, Version: n})
	if err != nil {
		return dripdrop.Budget{}, mapErr(err, "sequence version")
	}
	if _, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: adapter}); err != nil {
		return dripdrop.Budget{}, mapErr(err, "adapter")
	}
	row, err := s.q.UpsertBudget(ctx, dbsqlc.UpsertBudgetParams{TenantKey: tenant, AdapterID: adapter, SequenceVersionID: v.ID, MaxSharePct: *in.MaxSharePct, Now: s.clock.Now()})
	if err != nil {
		return dripdrop.Budget{}, mapErr(err, "budget")
	}
	return dripdrop.Budget{AdapterID: row.AdapterID, SequenceVersionID: row.SequenceVersionID, MaxSharePct: row.MaxSharePct, UpdatedAt: row.UpdatedAt}, nil
}
