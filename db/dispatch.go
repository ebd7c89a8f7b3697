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

// TenantKeys lists every tenant (the dispatcher visits them in turn).
func (s *Store) TenantKeys(ctx context.Context) ([]string, error) { return s.q.ListTenantKeys(ctx) }

// Claimed is one claimed execution.
type Claimed struct {
	Tenant    string
	ID        uuid.UUID
	AdapterID uuid.UUID
	// DueOnWrite: the execution was due when it was last written (new work
	// that a notification should have announced), not work that came due
	// later by the clock.
	DueOnWrite bool
}

// ClaimRequest asks for up to Limit executions of one tenant.
type ClaimRequest struct {
	Tenant string
	Limit  int
}

// claimSettings pin the claim's plan. Planned for its parameters, the claim
// spent longer planning (several milliseconds: six references to
// step_executions and their partial indexes) than executing; its generic
// plan is the right one (nested loops over the few rows it claims) as long
// as the planner, which cannot see how few rows a LIMIT parameter lets
// through, is kept from hashing a whole table (adapter_due) for the requeue.
// Its commit does not wait for the WAL flush: a claim is a lease, and one
// lost in a server crash only makes its rows claimable again. Nothing is
// sent on a claim alone: the reservation (durable) locks each row and takes
// it only while it is still scheduled.
var claimSettings = []string{
	"set local synchronous_commit = off",
	"set local plan_cache_mode = force_generic_plan",
	"set local enable_hashjoin = off",
	"set local enable_mergejoin = off",
}

// Claim claims due work for several tenants in one round trip (one
// statement per tenant, pipelined in one transaction with the claim's plan
// settings), each with its own limit (SPEC §6.1a). busy is this process's
// sends in flight per adapter: an adapter gets at most max_in_flight minus
// the larger of its busy count and its sends in flight in the database (any
// process; ReserveClaimed enforces the limit under the adapter's lock).
// Claimed executions are held until now+hold. Cost follows the work
// claimed: see ClaimReady.
func (s *Store) Claim(ctx context.Context, reqs []ClaimRequest, busy map[uuid.UUID]int, hold time.Duration) ([]Claimed, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	now := s.clock.Now()
	ids := make([]uuid.UUID, 0, len(busy))
	counts := make([]int, 0, len(busy))
	for id, n := range busy {
		if n > 0 {
			ids, counts = append(ids, id), append(counts, n)
		}
	}
	b := &pgx.Batch{}
	b.Queue("begin")
	for _, set := range claimSettings {
		b.Queue(set)
	}
	for _, r := range reqs {
		b.Queue(dbsqlc.ClaimReadySQL, ids, counts, now, r.Tenant, r.Limit+16, r.Limit, now.Add(hold))
	}
	b.Queue("commit")
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	c := conn.Conn()
	br := c.SendBatch(ctx, b)
	var out []Claimed
	err = func() error {
		for range 1 + len(claimSettings) {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for _, r := range reqs {
			rows, _ := br.Query()
			for rows.Next() {
				cl := Claimed{Tenant: r.Tenant}
				if err := rows.Scan(&cl.ID, &cl.AdapterID, &cl.DueOnWrite); err != nil {
					rows.Close()
					return err
				}
				out = append(out, cl)
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		_, err := br.Exec()
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A failed statement leaves the transaction aborted: end it before
		// the connection goes back to the pool.
		_, _ = c.Exec(context.WithoutCancel(ctx), "rollback")
		return nil, err
	}
	return out, nil
}

// ClaimTenant claims up to limit due executions of one tenant (see Claim).
func (s *Store) ClaimTenant(ctx context.Context, tenant string, limit int, hold time.Duration) ([]Claimed, error) {
	return s.Claim(ctx, []ClaimRequest{{Tenant: tenant, Limit: limit}}, nil, hold)
}

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

// ReleaseClaim makes a claimed execution claimable again at once (after a
// reservation failed for a transient reason such as a deadlock abort).
func (s *Store) ReleaseClaim(ctx context.Context, tenant string, id uuid.UUID) error {
	return s.q.ReleaseClaim(ctx, dbsqlc.ReleaseClaimParams{TenantKey: tenant, ID: id})
}

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

// Reserve is phase one of a send (SPEC §6.1) for one claimed execution;
// see ReserveClaimed.
func (s *Store) Reserve(ctx context.Context, tenant string, id, adapterID uuid.UUID, lease time.Duration) (Reservation, error) {
	res, err := s.ReserveClaimed(ctx, []Claimed{{Tenant: tenant, ID: id, AdapterID: adapterID}}, lease)
	if err != nil {
		return Reservation{}, err
	}
	return res[0], nil
}

// ReserveBatch is ReserveClaimed for executions claimed from one adapter.
func (s *Store) ReserveBatch(ctx context.Context, tenant string, adapterID uuid.UUID, ids []uuid.UUID, lease time.Duration) ([]Reservation, error) {
	claims := make([]Claimed, len(ids))
	for i, id := range ids {
		claims[i] = Claimed{Tenant: tenant, ID: id, AdapterID: adapterID}
	}
	return s.ReserveClaimed(ctx, claims, lease)
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

// threadKey names a thread: an enrollment and its thread number.
type threadKey struct {
	enrollment uuid.UUID
	threadNo   int
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

func (s *Store) stopEnrollment(ctx context.Context, q *dbsqlc.Queries, tenant string, id uuid.UUID, reason string) (event, error) {
	now := s.clock.Now()
	// The recipient's own outcomes end a completed enrollment as well: a
	// hard bounce of the last step means the address is bad, not that the
	// sequence completed.
	fromCompleted := reason == dripdrop.StopBounced || reason == dripdrop.StopComplained || reason == dripdrop.StopUnsubscribed
	n, err := q.StopEnrollment(ctx, dbsqlc.StopEnrollmentParams{TenantKey: tenant, ID: id, StopReason: &reason, Now: now, FromCompleted: fromCompleted})
	if err != nil || n == 0 {
		return event{}, err
	}
	if _, err := q.CancelPendingExecutions(ctx, dbsqlc.CancelPendingExecutionsParams{TenantKey: tenant, EnrollmentID: id, Now: now}); err != nil {
		return event{}, err
	}
	return stateEvent("dripdrop.enrollment.stopped", tenant, id, reason), nil
}

// buildJob assembles a reserved send from its row and, for a follow-up,
// the thread it continues; creds are the adapter's opened credentials.
func (s *Store) buildJob(tenant string, sc dbsqlc.LoadSendRow, ad dbsqlc.Adapter, msgID string, lease time.Time, attempt int, thread []dbsqlc.ThreadsOfRow, creds *dripdrop.SMTPCredentials) (*SendJob, error) {
	job := &SendJob{
		TenantKey: tenant, ExecutionID: sc.ID, EnrollmentID: sc.EnrollmentID, SequenceVersionID: sc.SequenceVersionID,
		SequenceKey: sc.SequenceKey, StepKey: sc.StepKey, Position: sc.Position, Attempt: attempt, AttemptWindow: sc.AttemptWindow,
		MessageID: msgID, Lease: lease, Subject: sc.StepSubject, BodyText: sc.BodyText, BodyHTML: sc.BodyHtml, Spintax: sc.Spintax,
		ListUnsubscribe: sc.ListUnsubscribe,
		AdapterID:       ad.ID, Provider: ad.Provider, FromAddress: ad.FromAddress, FromName: ad.FromName,
		Contact: dripdrop.Contact{Email: sc.Email, FirstName: deref(sc.FirstName), LastName: deref(sc.LastName), Company: deref(sc.Company), Timezone: deref(sc.ContactTimezone)},
	}
	if len(sc.Vars) > 2 {
		_ = json.Unmarshal(sc.Vars, &job.Contact.Vars)
	}
	for _, m := range thread {
		job.References = append(job.References, deref(m.OutMessageID))
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
	return job, nil
}

// openCredentials decrypts an adapter's SMTP credentials.
func (s *Store) openCredentials(tenant string, ad dbsqlc.Adapter) (*dripdrop.SMTPCredentials, error) {
	if s.vault == nil {
		return nil, fmt.Errorf("db: no encryption key configured; cannot read credentials")
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

func failedEvent(tenant string, sc dbsqlc.LoadSendRow, reason string, code int, permanent bool) event {
	return event{name: "dripdrop.dispatch.failed", metadata: map[string]any{
		"step_execution_id": sc.ID.String(), "enrollment_id": sc.EnrollmentID.String(), "adapter_id": sc.AdapterID.String(),
		"tenant_key": tenant, "reason": reason, "smtp_code": code, "permanent": permanent,
	}}
}

// MarkSent is phase two: the provider accepted the message. See
// MarkSentBatch. It reports false when the lease was lost.
func (s *Store) MarkSent(ctx context.Context, job *SendJob, providerID, subject string) (bool, error) {
	ok, err := s.MarkSentBatch(ctx, []Sent{{Job: job, ProviderID: providerID, Subject: subject}})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// Sent is an accepted message to record.
type Sent struct {
	Job                 *SendJob
	ProviderID, Subject string
	// HandedOver is when the message was handed over to the server (the
	// end of its data), on the store's clock: an adapter's minimum gap runs
	// from then, so the receiver sees sends min_gap_seconds apart however
	// long the server took to reply. Zero (or later than the record): from
	// the record.
	HandedOver time.Time
}

// MarkSentBatch is phase two for accepted messages, in one transaction:
// one set-based RecordSent statement per tenant, then their outbox rows
// with the commit. RecordSent records the send, fenced by
// the lease so a rescued and re-reserved send is never overwritten, writes
// the sent event, starts the adapter's gap, and schedules the next step or
// completes the enrollment. ok[i] is false when sent[i]'s lease was lost
// (a rescue owns it now). An error means nothing was recorded: a failing
// statement aborts the transaction, so callers retry the messages (one by
// one, to find the one that fails).
func (s *Store) MarkSentBatch(ctx context.Context, sent []Sent) ([]bool, error) {
	now := s.clock.Now()
	// One statement per tenant (RecordSent is set-based).
	byTenant := map[string]*dbsqlc.RecordSentParams{}
	var tenants []string
	index := make(map[uuid.UUID]int, len(sent))
	for i, m := range sent {
		job := m.Job
		index[job.ExecutionID] = i
		p := byTenant[job.TenantKey]
		if p == nil {
			p = &dbsqlc.RecordSentParams{TenantKey: job.TenantKey, Now: now}
			byTenant[job.TenantKey] = p
			tenants = append(tenants, job.TenantKey)
		}
		data, _ := json.Marshal(map[string]any{"out_message_id": job.MessageID, "attempt": job.Attempt})
		var start, gap time.Time // zero: no gap
		if jobGap(job).HasGap() {
			start = now
			if !m.HandedOver.IsZero() && m.HandedOver.Before(now) {
				start = m.HandedOver
			}
			gap = policy.GapEnd(jobGap(job), start)
		}
		p.Ids = append(p.Ids, job.ExecutionID)
		p.LeaseExpiresAts = append(p.LeaseExpiresAts, job.Lease)
		p.ProviderMessageIds = append(p.ProviderMessageIds, m.ProviderID)
		p.Subjects = append(p.Subjects, m.Subject)
		p.EventIds = append(p.EventIds, dripdrop.NewID())
		p.SequenceVersionIds = append(p.SequenceVersionIds, job.SequenceVersionID)
		p.Datas = append(p.Datas, data)
		p.GapStarts = append(p.GapStarts, start)
		p.GapNextSendAts = append(p.GapNextSendAts, gap)
		p.Positions = append(p.Positions, job.Position)
		p.NextIds = append(p.NextIds, dripdrop.NewID())
	}
	ok := make([]bool, len(sent))
	wake := map[string]bool{}
	var evs []event
	// The records and their outbox rows commit together, in two round
	// trips: the begin with the records, then the outbox rows with COMMIT.
	err := s.txPipe(ctx, beginGeneric, func(p *pipe) ([]event, error) {
		evs = evs[:0]
		clear(ok)
		clear(wake)
		recorded := make([][]dbsqlc.RecordSentRow, len(tenants))
		b := &pgx.Batch{}
		for k, t := range tenants {
			queueRows(b, &recorded[k], func(q *dbsqlc.Queries) error {
				_, err := q.RecordSent(ctx, *byTenant[t])
				return err
			})
		}
		if err := p.run(ctx, b); err != nil {
			return evs, err
		}
		for k, t := range tenants {
			for _, row := range recorded[k] {
				i := index[row.ID]
				job := sent[i].Job
				ok[i] = true
				wake[t] = wake[t] || row.NextDueNow
				evs = append(evs, job.diagnosticEvents()...)
				evs = append(evs, event{name: "dripdrop.dispatch.sent", metadata: map[string]any{
					"enrollment_id": job.EnrollmentID.String(), "step_execution_id": job.ExecutionID.String(), "sequence_key": job.SequenceKey,
					"step_key": job.StepKey, "channel": "email", "adapter_provider": job.Provider, "provider_message_id": sent[i].ProviderID,
					"out_message_id": job.MessageID, "tenant_key": job.TenantKey,
				}})
				if row.Completed {
					evs = append(evs, stateEvent("dripdrop.enrollment.completed", job.TenantKey, row.EnrollmentID, "last_step_sent"))
				}
			}
		}
		return evs, nil
	})
	if err != nil {
		return nil, err
	}
	for t, w := range wake {
		if w {
			s.wake(t)
		}
	}
	reset := map[[2]string]bool{}
	for i, m := range sent {
		job := m.Job
		if k := [2]string{job.TenantKey, job.AdapterID.String()}; ok[i] && job.AdapterFailures > 0 && !reset[k] {
			// The sender works again (rare path, so not in RecordSent).
			reset[k] = true
			if err := s.q.ResetAdapterFailures(ctx, dbsqlc.ResetAdapterFailuresParams{TenantKey: job.TenantKey, ID: job.AdapterID}); err != nil {
				s.log.Warn("resetting an adapter's failure count", "adapter", job.AdapterID, "err", err)
			}
		}
	}
	return ok, nil
}

// jobGap is the gap settings of a job's adapter, for policy.GapEnd.
func jobGap(job *SendJob) policy.Adapter {
	return policy.Adapter{ID: job.AdapterID, MinGapSeconds: job.MinGapSeconds, GapJitterSeconds: job.GapJitterSeconds}
}

// gapOf is the gap settings of an adapter row.
func gapOf(ad dbsqlc.Adapter) policy.Adapter {
	return policy.Adapter{ID: ad.ID, MinGapSeconds: ad.MinGapSeconds, GapJitterSeconds: ad.GapJitterSeconds}
}

// MarkFailed records a failed send and releases its reservation. A
// temporary failure is retried after 30 s × 2^(attempt−1) with the same
// Message-ID, up to MaxAttempts; a permanent one fails the execution and
// pauses the enrollment (step_failed), except a bounce (5.1.x), which
// suppresses the address, stops the enrollment and runs the sender's health
// check. Sender-side failures go to AdapterFailed instead.
func (s *Store) MarkFailed(ctx context.Context, job *SendJob, temporary, bounce bool, code int, errCode, msg string) error {
	var evs []event
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		now := s.clock.Now()
		state, at := "failed", now
		delay, retry := policy.Retry(job.Attempt)
		retry = retry && temporary
		if retry {
			state, at = "scheduled", now.Add(delay)
		}
		if len(msg) > 1000 {
			msg = msg[:1000]
		}
		_, err := q.MarkSendFailed(ctx, dbsqlc.MarkSendFailedParams{TenantKey: job.TenantKey, ID: job.ExecutionID, State: state, ScheduledFor: at,
			ErrorCode: &errCode, Error: &msg, Now: now, LeaseExpiresAt: &job.Lease})
		if err == pgx.ErrNoRows {
			return evs, nil // rescued meanwhile: the rescue released the reservation
		}
		if err != nil {
			return evs, err
		}
		if err := s.releaseUsage(ctx, q, job.TenantKey, job.AdapterID, job.SequenceVersionID, &job.Day); err != nil {
			return evs, err
		}
		evs = append(evs, job.diagnosticEvents()...)
		if err := s.afterSend(ctx, q, job, now); err != nil {
			return evs, err
		}
		meta := func() map[string]any {
			return map[string]any{"step_execution_id": job.ExecutionID.String(), "adapter_id": job.AdapterID.String(), "tenant_key": job.TenantKey}
		}
		if retry {
			m := meta()
			m["attempt"], m["defer_until"], m["reason"] = job.Attempt, at, errCode
			evs = append(evs, event{name: "dripdrop.dispatch.retry", metadata: m})
			return evs, nil
		}
		m := meta()
		m["enrollment_id"], m["reason"], m["smtp_code"], m["permanent"] = job.EnrollmentID.String(), errCode, code, !temporary
		evs = append(evs, event{name: "dripdrop.dispatch.failed", metadata: m})
		if !bounce {
			// Not the recipient's fault: no dead end (SPEC §2).
			ev, err := s.pauseStepFailed(ctx, q, job.TenantKey, job.EnrollmentID, errCode)
			if ev.name != "" {
				evs = append(evs, ev)
			}
			return evs, err
		}
		if err := q.UpsertSuppressionIfAbsent(ctx, dbsqlc.UpsertSuppressionIfAbsentParams{TenantKey: job.TenantKey, ID: dripdrop.NewID(), Kind: "email",
			Value: strings.ToLower(job.Contact.Email), Reason: "bounce", Source: "smtp", Now: now}); err != nil {
			return evs, err
		}
		sub := "hard"
		if err := q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: job.TenantKey, ID: dripdrop.NewID(), Type: "bounced", Subtype: &sub,
			AdapterID: &job.AdapterID, StepExecutionID: &job.ExecutionID, EnrollmentID: &job.EnrollmentID, SequenceVersionID: &job.SequenceVersionID,
			Reason: &errCode, Data: []byte("{}"), OccurredAt: now}); err != nil {
			return evs, err
		}
		ev, err := s.stopEnrollment(ctx, q, job.TenantKey, job.EnrollmentID, "bounced")
		if ev.name != "" {
			evs = append(evs, ev)
		}
		if err != nil {
			return evs, err
		}
		// The bounce feeds the sender's health at once (SPEC §5).
		hevs, err := s.checkHealth(ctx, q, job.TenantKey, job.AdapterID, now)
		evs = append(evs, hevs...)
		return evs, err
	})
	if err != nil {
		return err
	}
	return nil
}

// afterSend starts the adapter's gap at the end of a conversation.
func (s *Store) afterSend(ctx context.Context, q *dbsqlc.Queries, job *SendJob, now time.Time) error {
	if !jobGap(job).HasGap() {
		return nil
	}
	next := policy.GapEnd(jobGap(job), now)
	return q.AdapterAfterSend(ctx, dbsqlc.AdapterAfterSendParams{TenantKey: job.TenantKey, ID: job.AdapterID, Now: now, NextSendAt: &next})
}

func (s *Store) releaseUsage(ctx context.Context, q *dbsqlc.Queries, tenant string, adapter, version uuid.UUID, day *time.Time) error {
	if day == nil {
		return nil
	}
	return q.ReleaseUsage(ctx, dbsqlc.ReleaseUsageParams{TenantKey: tenant, AdapterID: adapter, Day: *day, SequenceVersionID: version})
}

// RescueStale returns executions left sending past their lease (a crashed
// or stuck worker) to scheduled, keeping their Message-ID, and releases
// their reservations. It returns how many it rescued.
func (s *Store) RescueStale(ctx context.Context, tenant string) (int, error) {
	n := 0
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		n = 0
		now := s.clock.Now()
		rows, err := q.StaleSending(ctx, dbsqlc.StaleSendingParams{TenantKey: tenant, Now: now})
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if err := q.RescueExecution(ctx, dbsqlc.RescueExecutionParams{TenantKey: tenant, ID: r.ID, Now: now}); err != nil {
				return nil, err
			}
			e, err := q.GetEnrollment(ctx, dbsqlc.GetEnrollmentParams{TenantKey: tenant, ID: r.EnrollmentID})
			if err != nil {
				return nil, err
			}
			if err := s.releaseUsage(ctx, q, tenant, r.AdapterID, e.SequenceVersionID, r.ReservedDay); err != nil {
				return nil, err
			}
			if err := q.ClearAdapterGuard(ctx, dbsqlc.ClearAdapterGuardParams{TenantKey: tenant, ID: r.AdapterID, Now: now}); err != nil {
				return nil, err
			}
			n++
		}
		if n > 0 {
			return nil, q.NotifyWork(ctx, tenant)
		}
		return nil, nil
	})
	return n, err
}

// Unsubscribe honours a one-click unsubscribe: the address is suppressed
// (reason unsubscribe) and the enrollment stopped. Repeats change nothing.
func (s *Store) Unsubscribe(ctx context.Context, tenant string, enrollment uuid.UUID, source string) error {
	var evs []event
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		e, err := q.GetEnrollmentForUpdate(ctx, dbsqlc.GetEnrollmentForUpdateParams{TenantKey: tenant, ID: enrollment})
		if err != nil {
			return evs, mapErr(err, "enrollment")
		}
		now := s.clock.Now()
		if err := q.UpsertSuppressionIfAbsent(ctx, dbsqlc.UpsertSuppressionIfAbsentParams{TenantKey: tenant, ID: dripdrop.NewID(), Kind: "email",
			Value: strings.ToLower(e.Email), Reason: "unsubscribe", Source: source, Now: now}); err != nil {
			return evs, err
		}
		ev, err := s.stopEnrollment(ctx, q, tenant, e.ID, "unsubscribed")
		if err != nil || ev.name == "" {
			return evs, err
		}
		evs = append(evs, ev)
		return evs, q.InsertMessageEvent(ctx, dbsqlc.InsertMessageEventParams{TenantKey: tenant, ID: dripdrop.NewID(), Type: "unsubscribed",
			EnrollmentID: &e.ID, SequenceVersionID: &e.SequenceVersionID, Reason: &source, Data: []byte("{}"), OccurredAt: now})
	})
	if err != nil {
		return err
	}
	return nil
}

// RecordBareSend marks a claimed execution sent with one durable commit and
// nothing else: the baseline the hot-path benchmark compares the full send
// path against (same claim, same SMTP, no policies, rendering or
// bookkeeping). The engine never calls it.
func (s *Store) RecordBareSend(ctx context.Context, tenant string, id uuid.UUID) error {
	_, err := s.q.RecordBareSend(ctx, dbsqlc.RecordBareSendParams{TenantKey: tenant, ID: id, Now: s.clock.Now()})
	return err
}

// ExplainClaim runs one claim of up to limit executions of tenant under
// EXPLAIN (ANALYZE, BUFFERS) and rolls it back: the plan and its measured
// cost, for benchmarks that prove the claim costs O(claimed).
func (s *Store) ExplainClaim(ctx context.Context, tenant string, limit int) (string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	for _, set := range claimSettings {
		if _, err := tx.Exec(ctx, set); err != nil {
			return "", err
		}
	}
	now := s.clock.Now()
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+dbsqlc.ClaimReadySQL,
		[]uuid.UUID{}, []int{}, now, tenant, limit+16, limit, now.Add(time.Minute))
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// NextDueIn reports how long until the earliest pending ready-queue entry of
// the tenants comes due; ok is false when none is pending.
func (s *Store) NextDueIn(ctx context.Context, tenants []string) (wait time.Duration, ok bool, err error) {
	secs, err := s.q.NextDueIn(ctx, dbsqlc.NextDueInParams{Now: s.clock.Now(), TenantKeys: tenants})
	if err != nil || secs < 0 {
		return 0, false, err
	}
	return time.Duration(secs * float64(time.Second)), true, nil
}
