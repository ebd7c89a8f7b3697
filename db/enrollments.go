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
	"github.com/dripdrop/dripdrop/policy"
)

// Pause and reassignment reasons written by the engine.
const (
	PauseOperator       = "operator"
	PausePinUnavailable = "pinned_adapter_unavailable"
	ReassignAutoRebind  = "auto_rebind"
)

func enrollmentFromRow(r dbsqlc.Enrollment) dripdrop.Enrollment {
	e := dripdrop.Enrollment{
		ID: r.ID, SequenceID: r.SequenceID, SequenceVersionID: r.SequenceVersionID, State: r.State,
		StopReason: r.StopReason, PauseReason: r.PauseReason, AdapterID: r.AdapterID, ThreadNo: r.ThreadNo, RecipientProvider: r.RecipientProvider,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, EndedAt: r.EndedAt, ReplyCategory: r.ReplyCategory, RoutedFrom: r.RoutedFrom,
		Contact: dripdrop.Contact{Email: r.Email, FirstName: deref(r.FirstName), LastName: deref(r.LastName), Company: deref(r.Company), Timezone: deref(r.Timezone)},
	}
	if len(r.Vars) > 2 {
		_ = json.Unmarshal(r.Vars, &e.Contact.Vars)
	}
	return e
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// versionRef is what enrolling needs to know about the target version.
type versionRef struct {
	seqID, versionID, poolID uuid.UUID
	seqKey                   string
	firstStep                dbsqlc.Step
	verify                   string // verify_recipients
}

func (s *Store) activeVersion(ctx context.Context, tenant, seqKey string) (versionRef, error) {
	v, err := s.q.GetActiveVersionBySequenceKey(ctx, dbsqlc.GetActiveVersionBySequenceKeyParams{TenantKey: tenant, Key: seqKey})
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.q.GetSequenceByKey(ctx, dbsqlc.GetSequenceByKeyParams{TenantKey: tenant, Key: seqKey}); errors.Is(err, pgx.ErrNoRows) {
			return versionRef{}, &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: "sequence_key", Message: "sequence not found"}
		}
		return versionRef{}, dripdrop.Errorf(dripdrop.ECodeInvalidState, "sequence_key", "the sequence has no active version")
	}
	if err != nil {
		return versionRef{}, err
	}
	step, err := s.q.GetFirstStep(ctx, dbsqlc.GetFirstStepParams{TenantKey: tenant, SequenceVersionID: v.ID})
	if err != nil {
		return versionRef{}, mapErr(err, "step")
	}
	return versionRef{seqID: v.SequenceID, versionID: v.ID, poolID: v.PoolID, seqKey: v.SequenceKey, firstStep: step, verify: v.VerifyRecipients}, nil
}

// candidate is a pool member with everything eligibility needs.
type candidate struct {
	row      dbsqlc.PoolCandidatesRow
	eligible bool
	reason   string // why not eligible
	member   policy.Member
	sent     int
	pins     int64
}

// loadCandidates reads the pool's members (in member-id order) with their
// WDRR counters and today's sends, and decides eligibility (docs/sending.md).
func (s *Store) loadCandidates(ctx context.Context, q *dbsqlc.Queries, tenant string, pool, version uuid.UUID, now time.Time) ([]candidate, error) {
	rows, err := q.PoolCandidates(ctx, dbsqlc.PoolCandidatesParams{TenantKey: tenant, PoolID: pool, SequenceVersionID: version})
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(rows))
	days := make([]time.Time, len(rows))
	locs := make([]*time.Location, len(rows))
	for i, r := range rows {
		ids[i] = r.AdapterID
		loc, err := time.LoadLocation(r.Timezone)
		if err != nil {
			loc = time.UTC
		}
		locs[i] = loc
		days[i] = dayOf(now, loc)
	}
	sent := map[uuid.UUID]map[time.Time]int{}
	if len(ids) > 0 {
		usage, err := q.SentOnDay(ctx, dbsqlc.SentOnDayParams{TenantKey: tenant, AdapterIds: ids, Days: days})
		if err != nil {
			return nil, err
		}
		for _, u := range usage {
			if sent[u.AdapterID] == nil {
				sent[u.AdapterID] = map[time.Time]int{}
			}
			sent[u.AdapterID][u.Day.UTC()] = u.Sent
		}
	}
	out := make([]candidate, len(rows))
	for i, r := range rows {
		c := candidate{row: r, sent: sent[r.AdapterID][days[i]], member: memberOf(r, locs[i])}
		c.eligible, c.reason = policy.Eligibility(c.member, c.sent, now)
		out[i] = c
	}
	return out, nil
}

// dayOf is the adapter-local calendar date of t, as midnight UTC (the
// representation of a PostgreSQL date).
func dayOf(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func memberOf(r dbsqlc.PoolCandidatesRow, loc *time.Location) policy.Member {
	a := policyAdapter(r.HealthState, r.DailyCap, r.RampFloor, r.RampIncrement, r.RampStartedAt, loc)
	a.RestingUntil = r.RestingUntil
	return policy.Member{MemberActive: r.MemberActive, AdapterActive: r.AdapterActive, Deleted: r.DeletedAt != nil, HealthScore: r.HealthScore, Adapter: a}
}

func policyAdapter(state dripdrop.HealthState, dailyCap *int, floor int, inc *int, started *time.Time, loc *time.Location) policy.Adapter {
	a := policy.Adapter{HealthState: state, DailyCap: dailyCap, RampFloor: floor, RampStartedAt: started, Location: loc}
	if inc != nil {
		a.RampIncrement = *inc
	}
	return a
}

func evictedOf(cands []candidate) []dripdrop.EvictedAdapter {
	out := []dripdrop.EvictedAdapter{}
	for _, c := range cands {
		if !c.eligible {
			out = append(out, dripdrop.EvictedAdapter{AdapterID: c.row.AdapterID, Reason: c.reason})
		}
	}
	return out
}

// picker runs WDRR over a loaded pool, in memory, for one or many picks.
type picker struct {
	pool     dbsqlc.Pool
	cands    []candidate
	wdrr     []policy.Candidate
	changed  bool
	reassign bool
}

func newPicker(pool dbsqlc.Pool, cands []candidate) *picker {
	p := &picker{pool: pool, cands: cands, reassign: pool.OnPinUnavailable == dripdrop.PinReassign}
	p.wdrr = make([]policy.Candidate, len(cands))
	for i, c := range cands {
		p.wdrr[i] = policy.Candidate{MemberOrder: i, Weight: c.row.Weight, HealthScore: c.row.HealthScore, Eligible: c.eligible, Counter: c.row.Counter}
	}
	return p
}

// pickFor returns the adapter to pin for a recipient of the given provider
// ("" unknown), or ok=false when the pool is exhausted (policy.PickPin; a
// deleted pool has no WDRR members). A pool with provider_matching
// "prefer" runs WDRR among the eligible members of that provider when
// there is one (policy.PickPinMatching).
func (p *picker) pickFor(provider string) (uuid.UUID, bool) {
	wdrr := p.wdrr
	if p.pool.DeletedAt != nil {
		wdrr = nil
	}
	var reassignable []bool
	var pins []int64
	if p.reassign {
		reassignable, pins = make([]bool, len(p.cands)), make([]int64, len(p.cands))
		for i, c := range p.cands {
			reassignable[i], pins[i] = policy.Reassignable(c.member), c.pins
		}
	}
	var match []bool
	if provider != "" && p.pool.ProviderMatching == dripdrop.ProviderMatchingPrefer {
		match = make([]bool, len(p.cands))
		for i, c := range p.cands {
			match[i] = c.row.MailboxProvider == provider
		}
	}
	i, viaWDRR := policy.PickPinMatching(wdrr, match, reassignable, pins)
	if i < 0 {
		return uuid.Nil, false
	}
	p.changed = p.changed || viaWDRR
	p.cands[i].pins++
	return p.cands[i].row.AdapterID, true
}

func (p *picker) loadPins(ctx context.Context, q *dbsqlc.Queries, tenant string) error {
	if !p.reassign || len(p.cands) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(p.cands))
	for i, c := range p.cands {
		ids[i] = c.row.AdapterID
	}
	rows, err := q.LivePinCounts(ctx, dbsqlc.LivePinCountsParams{TenantKey: tenant, AdapterIds: ids})
	if err != nil {
		return err
	}
	for _, r := range rows {
		for i := range p.cands {
			if p.cands[i].row.AdapterID == r.AdapterID {
				p.cands[i].pins = r.Pins
			}
		}
	}
	return nil
}

// saveCounters persists the WDRR counters of eligible members.
func (p *picker) saveCounters(ctx context.Context, q *dbsqlc.Queries, tenant string, version uuid.UUID) error {
	if !p.changed {
		return nil
	}
	for i, c := range p.wdrr {
		if !c.Eligible {
			continue
		}
		if err := q.SetWDRRCounter(ctx, dbsqlc.SetWDRRCounterParams{TenantKey: tenant, PoolID: p.pool.ID, SequenceVersionID: version, AdapterID: p.cands[i].row.AdapterID, Counter: c.Counter}); err != nil {
			return err
		}
	}
	return nil
}

func (p *picker) exhaustedEvent(tenant string, version uuid.UUID) event {
	ids := []string{}
	for _, e := range evictedOf(p.cands) {
		ids = append(ids, e.AdapterID.String())
	}
	return evPoolExhausted(tenant, p.pool.ID, version, ids)
}

// lockPicker locks the version's pool (serialising picks across replicas)
// and loads its members for WDRR.
func (s *Store) lockPicker(ctx context.Context, q *dbsqlc.Queries, tenant string, ref versionRef, now time.Time) (*picker, error) {
	pool, err := q.LockPool(ctx, dbsqlc.LockPoolParams{TenantKey: tenant, ID: ref.poolID})
	if err != nil {
		return nil, mapErr(err, "pool")
	}
	cands, err := s.loadCandidates(ctx, q, tenant, pool.ID, ref.versionID, now)
	if err != nil {
		return nil, err
	}
	p := newPicker(pool, cands)
	return p, p.loadPins(ctx, q, tenant)
}

// poolAdapterIDs lists the adapters of a pool (for the recovery sweep that
// precedes a pick).
func (s *Store) poolAdapterIDs(ctx context.Context, tenant string, pool uuid.UUID) ([]uuid.UUID, error) {
	ms, err := s.q.ListPoolMembers(ctx, dbsqlc.ListPoolMembersParams{TenantKey: tenant, PoolID: pool})
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(ms))
	for i, m := range ms {
		ids[i] = m.AdapterID
	}
	return ids, nil
}

// Enroll enrolls one contact into the active version of a sequence: it pins
// the contact to a pool member (smooth WDRR) and schedules the first step,
// all in one transaction. Enrolling a contact that already has an active or
// paused enrollment in the sequence returns that enrollment with created
// false and changes nothing.
func (s *Store) Enroll(ctx context.Context, tenant string, in dripdrop.EnrollInput) (_ dripdrop.Enrollment, _ bool, err error) {
	defer wrapErr(&err, "enroll")
	seqKey, contact, err := in.Validate()
	if err != nil {
		return dripdrop.Enrollment{}, false, err
	}
	ref, err := s.activeVersion(ctx, tenant, seqKey)
	if err != nil {
		return dripdrop.Enrollment{}, false, err
	}
	if existing, err := s.q.GetLiveEnrollmentByEmail(ctx, dbsqlc.GetLiveEnrollmentByEmailParams{TenantKey: tenant, SequenceID: ref.seqID, Email: contact.Email}); err == nil {
		return s.withExecutions(ctx, tenant, enrollmentFromRow(existing), ref.seqKey)
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return dripdrop.Enrollment{}, false, err
	}
	verdict, err := s.recipientCheck(ctx, tenant, ref.verify, []string{contact.Email})
	if err != nil {
		return dripdrop.Enrollment{}, false, err
	}
	if verdict[0].Reason != "" {
		return dripdrop.Enrollment{}, false, rejectRecipient(verdict[0], "contact.email")
	}
	if sup, err := s.IsSuppressed(ctx, tenant, contact.Email); err != nil {
		return dripdrop.Enrollment{}, false, err
	} else if sup {
		return dripdrop.Enrollment{}, false, dripdrop.Errorf(dripdrop.ECodeSuppressed, "contact.email", "the address or its domain is on the suppression list")
	}
	ids, err := s.poolAdapterIDs(ctx, tenant, ref.poolID)
	if err != nil {
		return dripdrop.Enrollment{}, false, err
	}
	if _, err := s.RecoverDueAdapters(ctx, tenant, ids); err != nil {
		return dripdrop.Enrollment{}, false, err
	}

	var row dbsqlc.Enrollment
	var exhausted *event
	var duplicate bool
	var evs []event
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		now := s.clock.Now()
		p, err := s.lockPicker(ctx, q, tenant, ref, now)
		if err != nil {
			return evs, err
		}
		adapter, ok := p.pickFor(verdict[0].Provider)
		if !ok {
			ev := p.exhaustedEvent(tenant, ref.versionID)
			exhausted = &ev
			return evs, dripdrop.PoolExhausted(p.pool.ID, evictedOf(p.cands))
		}
		vars, _ := json.Marshal(contact.Vars)
		if contact.Vars == nil {
			vars = []byte("{}")
		}
		row, err = q.InsertEnrollment(ctx, dbsqlc.InsertEnrollmentParams{
			TenantKey: tenant, ID: dripdrop.NewID(), SequenceID: ref.seqID, SequenceVersionID: ref.versionID,
			Email: contact.Email, FirstName: nilIfEmpty(contact.FirstName), LastName: nilIfEmpty(contact.LastName),
			Company: nilIfEmpty(contact.Company), Timezone: nilIfEmpty(contact.Timezone), Vars: vars, AdapterID: adapter, RecipientProvider: nilIfEmpty(verdict[0].Provider), Now: now,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			duplicate = true // a concurrent request enrolled the same contact
			return evs, errRollback
		}
		if err != nil {
			return evs, err
		}
		if _, err := q.InsertExecution(ctx, dbsqlc.InsertExecutionParams{
			TenantKey: tenant, ID: dripdrop.NewID(), EnrollmentID: row.ID, StepID: ref.firstStep.ID,
			AdapterID: stepSender(ref.firstStep, adapter), ScheduledFor: now.Add(time.Duration(ref.firstStep.DelaySeconds) * time.Second), Now: now,
		}); err != nil {
			return evs, err
		}
		evs = []event{evAdapterPinned(tenant, row.ID, ref.versionID, row.AdapterID)}
		return evs, p.saveCounters(ctx, q, tenant, ref.versionID)
	})
	if exhausted != nil {
		// Nothing was stored; the refusal still reaches the feed.
		if perr := s.publish(ctx, *exhausted); perr != nil {
			s.log.Warn("publishing pool_exhausted", "tenant", tenant, "err", perr)
		}
	}
	if duplicate {
		existing, err := s.q.GetLiveEnrollmentByEmail(ctx, dbsqlc.GetLiveEnrollmentByEmailParams{TenantKey: tenant, SequenceID: ref.seqID, Email: contact.Email})
		if err != nil {
			return dripdrop.Enrollment{}, false, mapErr(err, "enrollment")
		}
		return s.withExecutions(ctx, tenant, enrollmentFromRow(existing), ref.seqKey)
	}
	if err != nil {
		return dripdrop.Enrollment{}, false, mapErr(err, "enrollment")
	}
	s.notes.add(WorkChannel, tenant) // its first step, after commit (notify.go)
	e, _, err := s.withExecutions(ctx, tenant, enrollmentFromRow(row), ref.seqKey)
	return e, true, err
}

// stepSender is the adapter that sends a step: its override, else the pin.
func stepSender(st dbsqlc.Step, pin uuid.UUID) uuid.UUID {
	if st.AdapterOverrideID != nil {
		return *st.AdapterOverrideID
	}
	return pin
}

// errRollback aborts a transaction without reporting an error.
var errRollback = &dripdrop.Error{Code: dripdrop.ECodeConflict, Message: "rolled back"}

func (s *Store) withExecutions(ctx context.Context, tenant string, e dripdrop.Enrollment, seqKey string) (dripdrop.Enrollment, bool, error) {
	e.SequenceKey = seqKey
	xs, err := s.q.ListExecutions(ctx, dbsqlc.ListExecutionsParams{TenantKey: tenant, EnrollmentID: e.ID})
	if err != nil {
		return e, false, err
	}
	e.Executions = make([]dripdrop.StepExecution, len(xs))
	for i, x := range xs {
		e.Executions[i] = dripdrop.StepExecution{
			ID: x.ID, StepID: x.StepID, StepKey: x.StepKey, Position: x.Position, State: x.State, ScheduledFor: x.ScheduledFor,
			Attempt: x.Attempt, AttemptWindow: x.AttemptWindow, AdapterID: x.AdapterID, Thread: x.ThreadNo, Subject: x.Subject,
			OutMessageID: x.OutMessageID, ProviderMessageID: x.ProviderMessageID, DeferReason: x.DeferReason,
			DeferUntil: x.DeferUntil, ErrorCode: x.ErrorCode, Error: x.Error, SentAt: x.SentAt, Variant: x.Variant,
		}
	}
	return e, false, nil
}

// GetEnrollment returns an enrollment with its executions.
func (s *Store) GetEnrollment(ctx context.Context, tenant string, id uuid.UUID) (_ dripdrop.Enrollment, err error) {
	defer wrapErr(&err, "get enrollment")
	row, err := s.q.GetEnrollment(ctx, dbsqlc.GetEnrollmentParams{TenantKey: tenant, ID: id})
	if err != nil {
		return dripdrop.Enrollment{}, mapErr(err, "enrollment")
	}
	seq, err := s.q.GetSequence(ctx, dbsqlc.GetSequenceParams{TenantKey: tenant, ID: row.SequenceID})
	if err != nil {
		return dripdrop.Enrollment{}, err
	}
	e, _, err := s.withExecutions(ctx, tenant, enrollmentFromRow(row), seq.Key)
	if err != nil {
		return e, err
	}
	if e.Routes, err = s.enrollmentRoutes(ctx, tenant, e.ID); err != nil {
		return e, err
	}
	return e, s.currentBlock(ctx, tenant, &e)
}

// normEmail lowercases an address for duplicate detection.
func normEmail(e string) string { return strings.ToLower(e) }
