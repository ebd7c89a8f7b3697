package db

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

// Outcome of a reservation attempt.
type Outcome string

// Outcomes.
const (
	Reserved  Outcome = "reserved"
	Deferred  Outcome = "deferred"
	Cancelled Outcome = "cancelled"
	Skipped   Outcome = "skipped"
	Released  Outcome = "released" // left scheduled (paused enrollment, lost race, repinned)
	Failed    Outcome = "failed"
)

// Reservation is what Reserve decided.
type Reservation struct {
	Outcome Outcome
	Job     *SendJob
	Verdict *policy.Verdict
}

// adapterBatch is one adapter's part of a reservation.
type adapterBatch struct {
	ad         dbsqlc.Adapter
	loc        *time.Location
	day        time.Time
	preBlocked bool       // blocked since the claim: nothing of it goes now
	blocked    *time.Time // an adapter-level block found in this batch
	sentToday  int
	forVersion map[uuid.UUID]int
	share      map[uuid.UUID]int
	reserved   bool
	room       int // places left under max_in_flight over all processes (BatchPolicyInputs)
	creds      *dripdrop.SMTPCredentials
}

// ReserveClaimed is phase one (SPEC §6.1) of one claim's executions of one
// tenant, of any number of adapters, in one transaction: it locks the
// claim's adapters in id order (FOR NO KEY UPDATE, each once), loads the
// executions, their policy inputs and suppressions with one statement
// each, evaluates every policy per execution in claim order with
// policy.Evaluate over in-memory counters (each reservation counts against
// the adapter's next), and reserves every allowed send with one set-based
// statement (state sending, Message-ID, lease; adapters' last_send_at; each
// adapter's counters for its local day). Refusals are recorded per
// execution. After an adapter-level block (rest, ramp cap, gap) the rest of
// that adapter's executions are released for a later claim. Nothing here
// talks to the network, so the statement count is the same for one send
// or a claim of a hundred.
//
// Each Claimed names the adapter the claim saw; an execution that has
// moved to another adapter since is released for the next claim. The
// result has one Reservation per claim, in order. All claims must be of
// one tenant.
func (s *Store) ReserveClaimed(ctx context.Context, claims []Claimed, lease time.Duration) ([]Reservation, error) {
	out := make([]Reservation, len(claims))
	if len(claims) == 0 {
		return out, nil
	}
	tenant := claims[0].Tenant
	index := make(map[uuid.UUID]int, len(claims))
	seen := map[uuid.UUID]*adapterBatch{}
	ids, adapterIDs := make([]uuid.UUID, len(claims)), []uuid.UUID{}
	for i, c := range claims {
		if c.Tenant != tenant {
			return nil, fmt.Errorf("db: a reservation is of one tenant (%q and %q)", tenant, c.Tenant)
		}
		index[c.ID], ids[i] = i, c.ID
		if _, ok := seen[c.AdapterID]; !ok {
			seen[c.AdapterID] = nil
			adapterIDs = append(adapterIDs, c.AdapterID)
		}
	}
	var evs []event
	// Locked in id order, as every reservation locks them.
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	// Three round trips whatever the claim's size: the locks and the rows;
	// the policy inputs, suppressions and threads; the reservation with
	// the outbox rows and COMMIT.
	err := s.txPipe(ctx, beginGeneric, func(p *pipe) ([]event, error) {
		evs = evs[:0]
		for i := range out {
			out[i] = Reservation{Outcome: Released}
		}
		var ads []dbsqlc.Adapter
		var rows []dbsqlc.LoadSendsLockedRow
		b := &pgx.Batch{}
		queueRows(b, &ads, func(q *dbsqlc.Queries) error {
			_, err := q.LockAdapters(ctx, dbsqlc.LockAdaptersParams{TenantKey: tenant, Ids: adapterIDs})
			return err
		})
		queueRows(b, &rows, func(q *dbsqlc.Queries) error {
			_, err := q.LoadSendsLocked(ctx, dbsqlc.LoadSendsLockedParams{TenantKey: tenant, Ids: sorted})
			return err
		})
		if err := p.run(ctx, b); err != nil {
			return evs, err
		}
		q := p.q
		now := s.clock.Now()
		batches := make(map[uuid.UUID]*adapterBatch, len(ads))
		for _, ad := range ads {
			loc, err := time.LoadLocation(ad.Timezone)
			if err != nil {
				loc = time.UTC
			}
			b := &adapterBatch{ad: ad, loc: loc, day: dayOf(now, loc),
				preBlocked: ad.DeletedAt == nil && ad.NextSendAt != nil && ad.NextSendAt.After(now),
				forVersion: map[uuid.UUID]int{}, share: map[uuid.UUID]int{}}
			batches[ad.ID] = b
			if b.preBlocked || ad.DeletedAt != nil || len(ad.Credentials) == 0 {
				continue
			}
			// Credentials that cannot be opened (a changed encryption key)
			// block their adapter, not the claim: its executions go back
			// and it is looked at again in a minute.
			if b.creds, err = s.openCredentials(tenant, ad); err != nil {
				s.log.Error("cannot open an adapter's credentials; it is skipped for a minute", "tenant", tenant, "adapter", ad.ID, "err", err)
				b.preBlocked = true
				if err := q.SetAdapterNextSend(ctx, dbsqlc.SetAdapterNextSendParams{TenantKey: tenant, ID: ad.ID, NextSendAt: now.Add(time.Minute)}); err != nil {
					return evs, err
				}
			}
		}
		// Policy inputs, suppressions and the threads follow-ups continue
		// for the whole claim: one statement each, whatever its size, in
		// one round trip.
		var pAdapters, pVersions []uuid.UUID
		var pDays []time.Time
		pairs := map[[2]uuid.UUID]bool{}
		var emails, domains []string
		var threadEnrollments []uuid.UUID
		var threadNos []int
		for _, r := range rows {
			b := batches[claims[index[r.ID]].AdapterID]
			if b == nil || b.preBlocked {
				continue
			}
			if k := [2]uuid.UUID{b.ad.ID, r.SequenceVersionID}; !pairs[k] {
				pairs[k] = true
				pAdapters, pDays, pVersions = append(pAdapters, b.ad.ID), append(pDays, b.day), append(pVersions, r.SequenceVersionID)
			}
			emails, domains = append(emails, strings.ToLower(r.Email)), append(domains, dripdrop.EmailDomain(r.Email))
			if r.Followup && r.AdapterOverrideID == nil {
				threadEnrollments, threadNos = append(threadEnrollments, r.EnrollmentID), append(threadNos, r.ThreadNo)
			}
		}
		suppressed := map[string]bool{}
		threads := map[threadKey][]dbsqlc.ThreadsOfRow{}
		if len(pairs) > 0 {
			var usage []dbsqlc.BatchPolicyInputsRow
			var supp []dbsqlc.SuppressedAmongRow
			var sent []dbsqlc.ThreadsOfRow
			b := &pgx.Batch{}
			queueRows(b, &usage, func(q *dbsqlc.Queries) error {
				_, err := q.BatchPolicyInputs(ctx, dbsqlc.BatchPolicyInputsParams{TenantKey: tenant, Now: now, AdapterIds: pAdapters, Days: pDays, VersionIds: pVersions})
				return err
			})
			queueRows(b, &supp, func(q *dbsqlc.Queries) error {
				_, err := q.SuppressedAmong(ctx, dbsqlc.SuppressedAmongParams{TenantKey: tenant, Emails: emails, Domains: domains})
				return err
			})
			if len(threadEnrollments) > 0 {
				queueRows(b, &sent, func(q *dbsqlc.Queries) error {
					_, err := q.ThreadsOf(ctx, dbsqlc.ThreadsOfParams{TenantKey: tenant, EnrollmentIds: threadEnrollments, ThreadNos: threadNos})
					return err
				})
			}
			if err := p.run(ctx, b); err != nil {
				return evs, err
			}
			for _, u := range usage {
				b := batches[u.AdapterID]
				b.sentToday, b.forVersion[u.SequenceVersionID], b.share[u.SequenceVersionID] = u.SentToday, u.SentForVersion, u.MaxSharePct
				b.room = u.Room
			}
			for _, sp := range supp {
				suppressed[sp.Kind+":"+sp.Value] = true
			}
			for _, m := range sent {
				if m.ThreadNo != nil {
					k := threadKey{m.EnrollmentID, *m.ThreadNo}
					threads[k] = append(threads[k], m)
				}
			}
		}

		var reserve dbsqlc.ReserveSendsParams
		var reserved []int // indexes into out, with their rows
		var reservedRows []dbsqlc.LoadSendRow
		var release []uuid.UUID
		for _, r := range rows {
			sc := dbsqlc.LoadSendRow(r)
			i := index[sc.ID]
			res := &out[i]
			b := batches[claims[i].AdapterID]
			if b == nil || b.preBlocked || b.blocked != nil || sc.State != "scheduled" || sc.AdapterID != claims[i].AdapterID ||
				sc.EnrollmentState == dripdrop.EnrollmentPaused || sc.ScheduledFor.After(now) {
				// Gone, blocked since the claim or by this batch, moved,
				// paused, no longer scheduled or no longer due (an
				// out-of-office reply moved it after the claim): left for a
				// later claim.
				release = append(release, sc.ID)
				continue
			}
			if b.room <= 0 {
				// Its adapter's places are all taken by sends in flight
				// (in any process: claims made at the same moment did not
				// know of each other): left for a later claim, which
				// counts them.
				release = append(release, sc.ID)
				continue
			}
			ad := b.ad
			if sc.EnrollmentState != dripdrop.EnrollmentActive {
				res.Outcome = Cancelled
				code, msg := "enrollment_"+sc.EnrollmentState, "the enrollment is "+sc.EnrollmentState
				if err := q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: sc.ID, State: "cancelled", ErrorCode: &code, Error: &msg, Now: now}); err != nil {
					return evs, err
				}
				continue
			}
			// The sender must be usable; a lost pin gets the pool policy.
			if !policy.SenderUsable(ad.DeletedAt != nil, ad.Active, policy.Adapter{HealthState: ad.HealthState, RestingUntil: ad.RestingUntil}, now) {
				if err := s.unusableSender(ctx, q, tenant, sc, now, res, &evs); err != nil {
					return evs, err
				}
				continue
			}
			scope := ""
			switch {
			case suppressed["email:"+strings.ToLower(sc.Email)]:
				scope = "email"
			case suppressed["domain:"+dripdrop.EmailDomain(sc.Email)]:
				scope = "domain"
			}
			in := policyInputFrom(sc, ad, b.loc, now, policyFacts{sentToday: b.sentToday, sentForVersion: b.forVersion[sc.SequenceVersionID],
				maxSharePct: b.share[sc.SequenceVersionID], scope: scope})
			if v := policy.Evaluate(in).Binding; v != nil {
				res.Verdict = v
				if err := s.applyVerdict(ctx, q, tenant, sc, ad, *v, now, res, &evs); err != nil {
					return evs, err
				}
				if v.Scope() == policy.ScopeAdapter {
					until := v.DeferUntil
					b.blocked = &until
				}
				continue
			}
			// Allowed: count it against the adapter's next execution.
			b.room--
			b.sentToday++
			b.forVersion[sc.SequenceVersionID]++
			last := now
			b.ad.LastSendAt = &last
			b.reserved = true
			msgID := deref(sc.OutMessageID)
			if msgID == "" {
				msgID = newMessageID(ad.FromAddress)
			}
			threadNo := -1
			if sc.AdapterOverrideID == nil {
				threadNo = sc.ThreadNo
			}
			reserve.Ids = append(reserve.Ids, sc.ID)
			reserve.OutMessageIds = append(reserve.OutMessageIds, msgID)
			reserve.ThreadNos = append(reserve.ThreadNos, threadNo)
			reserve.SequenceVersionIds = append(reserve.SequenceVersionIds, sc.SequenceVersionID)
			reserve.AdapterIds = append(reserve.AdapterIds, ad.ID)
			reserve.ReservedDays = append(reserve.ReservedDays, b.day)
			reserved, reservedRows = append(reserved, i), append(reservedRows, sc)
		}
		if len(release) > 0 {
			queueExec(&p.tail, func(q *dbsqlc.Queries) error {
				return q.ReleaseClaims(ctx, dbsqlc.ReleaseClaimsParams{TenantKey: tenant, Ids: release})
			})
		}
		if len(reserved) == 0 {
			return evs, nil
		}
		leaseUntil := now.Add(lease)
		reserve.TenantKey, reserve.Now, reserve.LeaseExpiresAt, reserve.Recent = tenant, now, leaseUntil, now.Add(-time.Second)
		for _, id := range adapterIDs {
			b := batches[id]
			if b == nil || !b.reserved {
				continue
			}
			// An adapter with a minimum gap has one send in flight at a
			// time: it is blocked until the conversation ends (or the lease
			// expires); the record then starts the gap from the hand-over
			// (a failure: from its end, afterSend). A block found later in
			// the batch stands (applyVerdict set it).
			var next *time.Time
			if gapOf(b.ad).HasGap() {
				next = &leaseUntil
			}
			if b.blocked != nil && (next == nil || b.blocked.After(*next)) {
				next = b.blocked
			}
			reserve.Adapters = append(reserve.Adapters, id)
			reserve.Blocked = append(reserve.Blocked, next != nil)
			if next != nil {
				reserve.NextSendAts = append(reserve.NextSendAts, *next)
			} else {
				reserve.NextSendAts = append(reserve.NextSendAts, now)
			}
		}
		// With the outbox rows and COMMIT.
		queueExec(&p.tail, func(q *dbsqlc.Queries) error { return q.ReserveSends(ctx, reserve) })
		firstSubject := map[uuid.UUID]string{}
		for k, i := range reserved {
			sc, b := reservedRows[k], batches[reserve.AdapterIds[k]]
			var thread []dbsqlc.ThreadsOfRow
			if sc.Followup && reserve.ThreadNos[k] >= 0 {
				thread = threads[threadKey{sc.EnrollmentID, reserve.ThreadNos[k]}]
			}
			job, err := s.buildJob(tenant, sc, b.ad, reserve.OutMessageIds[k], leaseUntil, sc.Attempt+1, thread, b.creds)
			if err != nil {
				return evs, err
			}
			if strings.TrimSpace(job.Subject) == "" && job.ReplySubject == "" {
				// A new thread (or an override step) without its own
				// subject starts from the version's first subject.
				subject, ok := firstSubject[sc.SequenceVersionID]
				if !ok {
					first, err := q.GetFirstStep(ctx, dbsqlc.GetFirstStepParams{TenantKey: tenant, SequenceVersionID: sc.SequenceVersionID})
					if err != nil {
						return evs, err
					}
					subject, firstSubject[sc.SequenceVersionID] = first.Subject, first.Subject
				}
				job.Subject = subject
			}
			job.Day = b.day
			job.MinGapSeconds, job.GapJitterSeconds = b.ad.MinGapSeconds, b.ad.GapJitterSeconds
			job.AdapterFailures = b.ad.AdapterFailures + b.ad.AuthFailures
			out[i] = Reservation{Outcome: Reserved, Job: job}
		}
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unusableSender handles an execution whose adapter is deleted, inactive or
// resting long term: an override step fails; a pinned one gets the pool's
// policy (repin or wait) and is released.
func (s *Store) unusableSender(ctx context.Context, q *dbsqlc.Queries, tenant string, sc dbsqlc.LoadSendRow, now time.Time, res *Reservation, evs *[]event) error {
	if sc.AdapterOverrideID != nil {
		res.Outcome = Failed
		*evs = append(*evs, failedEvent(tenant, sc, "adapter_unavailable", 0, true))
		code, msg := "adapter_unavailable", "the step's override adapter is deleted, inactive or resting long term"
		if err := q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: sc.ID, State: "failed", ErrorCode: &code, Error: &msg, Now: now}); err != nil {
			return err
		}
		ev, err := s.pauseStepFailed(ctx, q, tenant, sc.EnrollmentID, "adapter_unavailable")
		if ev.name != "" {
			*evs = append(*evs, ev)
		}
		return err
	}
	e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: sc.EnrollmentID})
	if err != nil {
		return err
	}
	ev, err := s.applyPinPolicy(ctx, q, e, sc.PoolID)
	if err != nil {
		return err
	}
	if ev.name != "" {
		*evs = append(*evs, ev)
	}
	res.Outcome = Released
	return q.ReleaseClaim(ctx, dbsqlc.ReleaseClaimParams{TenantKey: tenant, ID: sc.ID})
}

func newMessageID(from string) string {
	domain := dripdrop.EmailDomain(from)
	if domain == "" {
		domain = "dripdrop.local"
	}
	return "<" + dripdrop.NewID().String() + "@" + domain + ">"
}

// policyFacts are what the policies read besides the execution and
// adapter rows.
type policyFacts struct {
	sentToday, sentForVersion, maxSharePct int
	scope                                  string // suppression scope, "" when not suppressed
}

// policyInput loads what the policies read for one execution (explain).
func (s *Store) policyInput(ctx context.Context, q *dbsqlc.Queries, tenant string, sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, now time.Time) (policy.Input, error) {
	loc, err := time.LoadLocation(ad.Timezone)
	if err != nil {
		loc = time.UTC
	}
	pi, err := q.PolicyInputs(ctx, dbsqlc.PolicyInputsParams{TenantKey: tenant, AdapterID: ad.ID, Day: dayOf(now, loc),
		SequenceVersionID: sc.SequenceVersionID, Email: strings.ToLower(sc.Email), Domain: dripdrop.EmailDomain(sc.Email)})
	if err != nil {
		return policy.Input{}, err
	}
	f := policyFacts{sentToday: pi.SentToday, sentForVersion: pi.SentForVersion, maxSharePct: pi.MaxSharePct}
	switch {
	case pi.EmailSuppressed:
		f.scope = "email"
	case pi.DomainSuppressed:
		f.scope = "domain"
	}
	return policyInputFrom(sc, ad, loc, now, f), nil
}

// policyInputFrom assembles policy.Evaluate's input.
func policyInputFrom(sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, loc *time.Location, now time.Time, f policyFacts) policy.Input {
	a := policyAdapter(ad.HealthState, ad.DailyCap, ad.RampFloor, ad.RampIncrement, ad.RampStartedAt, loc)
	a.RestingUntil, a.LastSendAt, a.MinGapSeconds, a.GapJitterSeconds, a.ID = ad.RestingUntil, ad.LastSendAt, ad.MinGapSeconds, ad.GapJitterSeconds, ad.ID
	w := policy.NewWindow(int(sc.WindowStart), int(sc.WindowEnd), sc.WindowDays, sc.WindowTimezone)
	return policy.Input{
		Now: now, EnrollmentState: sc.EnrollmentState, Suppressed: f.scope != "", SuppressionScope: f.scope,
		Window: w, ContactTimezone: deref(sc.ContactTimezone), Adapter: a,
		SentToday: f.sentToday, SentTodayForVersion: f.sentForVersion, MaxSharePct: f.maxSharePct,
	}
}

// applyVerdict records a non-allow verdict. Adapter-level blocks (rest, ramp
// cap, gap) move the adapter's next_send_at — one write however large its
// backlog — and touch only the claimed execution.
func (s *Store) applyVerdict(ctx context.Context, q *dbsqlc.Queries, tenant string, sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, v policy.Verdict, now time.Time, res *Reservation, evs *[]event) error {
	id := sc.ID
	scope := v.Scope()
	switch scope {
	case policy.ScopeCancel:
		res.Outcome = Cancelled
		code := v.Reason
		return q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: id, State: "cancelled", ErrorCode: &code, Now: now})
	case policy.ScopeSkip:
		res.Outcome = Skipped
		code := "suppressed"
		if err := q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: tenant, ID: id, State: "skipped", ErrorCode: &code, Now: now}); err != nil {
			return err
		}
		*evs = append(*evs, event{name: "dripdrop.policy.suppressed", metadata: map[string]any{
			"step_execution_id": id.String(), "enrollment_id": sc.EnrollmentID.String(), "tenant_key": tenant, "scope": v.Inputs["scope"],
		}})
		ev, err := s.stopEnrollment(ctx, q, tenant, sc.EnrollmentID, "suppressed")
		if ev.name != "" {
			*evs = append(*evs, ev)
		}
		return err
	}
	res.Outcome = Deferred
	reason := v.Reason
	until := v.DeferUntil
	sid, aid := id.String(), ad.ID.String()
	switch scope {
	case policy.ScopeExecution:
		// This execution waits; others of the adapter go on.
		if err := q.DeferExecution(ctx, dbsqlc.DeferExecutionParams{TenantKey: tenant, ID: id, ScheduledFor: until, DeferReason: &reason, DeferUntil: &until, Now: now}); err != nil {
			return err
		}
	default: // policy.ScopeAdapter
		if err := q.SetAdapterNextSend(ctx, dbsqlc.SetAdapterNextSendParams{TenantKey: tenant, ID: ad.ID, NextSendAt: until}); err != nil {
			return err
		}
		if err := q.DeferExecution(ctx, dbsqlc.DeferExecutionParams{TenantKey: tenant, ID: id, ScheduledFor: sc.ScheduledFor, DeferReason: &reason, DeferUntil: &until, Now: now}); err != nil {
			return err
		}
	}
	data, _ := json.Marshal(map[string]any{"policy": v.Policy, "defer_until": until})
	if err := q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: tenant, ID: dripdrop.NewID(), Type: "deferred", AdapterID: &ad.ID,
		StepExecutionID: &id, EnrollmentID: &sc.EnrollmentID, SequenceVersionID: &sc.SequenceVersionID, Reason: &reason, Data: data, OccurredAt: now}); err != nil {
		return err
	}
	switch v.Policy {
	case policy.SendWindow:
		*evs = append(*evs, event{name: "dripdrop.policy.quiet_hours", metadata: map[string]any{"step_execution_id": sid, "tenant_key": tenant, "timezone": v.Timezone, "defer_until": until}})
	case policy.AdapterResting:
		*evs = append(*evs, event{name: "dripdrop.policy.adapter_resting", metadata: map[string]any{"adapter_id": aid, "step_execution_id": sid, "tenant_key": tenant, "defer_until": until}})
	case policy.RampCap:
		*evs = append(*evs, event{name: "dripdrop.policy.ramp_cap", metadata: map[string]any{"adapter_id": aid, "step_execution_id": sid, "tenant_key": tenant, "sent_count": v.SentCount, "cap": v.Cap}})
	case policy.SubCap:
		*evs = append(*evs, event{name: "dripdrop.policy.sub_cap", metadata: map[string]any{"adapter_id": aid, "sequence_version_id": sc.SequenceVersionID.String(), "step_execution_id": sid, "tenant_key": tenant, "sent_count": v.SentCount, "cap": v.Cap, "max_share_pct": v.MaxSharePct}})
	case policy.MinGap:
		*evs = append(*evs, event{name: "dripdrop.policy.min_gap", metadata: map[string]any{"adapter_id": aid, "step_execution_id": sid, "tenant_key": tenant, "defer_until": until, "min_gap_seconds": v.MinGapSeconds}})
	}
	*evs = append(*evs, event{name: "dripdrop.dispatch.deferred", metadata: map[string]any{"step_execution_id": sid, "adapter_id": aid, "tenant_key": tenant, "reason": reason, "defer_until": until}})
	return nil
}

func failedEvent(tenant string, sc dbsqlc.LoadSendRow, reason string, code int, permanent bool) event {
	return event{name: "dripdrop.dispatch.failed", metadata: map[string]any{
		"step_execution_id": sc.ID.String(), "enrollment_id": sc.EnrollmentID.String(), "adapter_id": sc.AdapterID.String(),
		"tenant_key": tenant, "reason": reason, "smtp_code": code, "permanent": permanent,
	}}
}
