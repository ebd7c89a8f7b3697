package db

import (
	"bytes"
	"context"
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
	provCaps   map[string]int // provider_caps (nil: none)
	provSent   map[string]int // today's sends of the capped providers
}

// ReserveClaimed is phase one of a send for one claim's executions of one
// tenant, of any number of adapters, in one transaction: it locks the
// claim's adapters in id order (FOR NO KEY UPDATE, each once), loads the
// executions, their policy inputs and suppressions with one statement
// each, evaluates every policy per execution in claim order with
// policy.Evaluate over in-memory counters (each reservation counts against
// the adapter's next), and reserves every allowed send with one set-based
// statement (state sending, Message-ID, lease; adapters' last_send_at; each
// adapter's counters for its local day). Refusals are recorded per
// execution. After an adapter-level block (policy.ScopeAdapter) the rest of
// that adapter's executions are released for a later claim. Nothing here
// talks to the network, so the statement count is the same for one send
// or a claim of a hundred: three round trips (the locks and the rows; the
// policy inputs, suppressions and threads; the reservation with the outbox
// rows and COMMIT). See docs/sending.md.
//
// Each Claimed names the adapter the claim saw; an execution that has
// moved to another adapter since is released for the next claim. The
// result has one Reservation per claim, in order. All claims must be of
// one tenant.
func (s *Store) ReserveClaimed(ctx context.Context, claims []Claimed, lease time.Duration) (_ []Reservation, err error) {
	defer wrapErr(&err, "reserve")
	r, err := newReservation(s, claims, lease)
	if err != nil || len(claims) == 0 {
		return r.out, err
	}
	err = s.txPipe(ctx, s.beginHot(ctx), func(p *pipe) ([]event, error) {
		r.reset(p)
		if err := r.load(ctx); err != nil {
			return nil, err
		}
		if err := r.evaluate(ctx); err != nil {
			return nil, err
		}
		return r.evs, r.write(ctx)
	})
	if err != nil {
		return nil, err
	}
	return r.out, nil
}

// reservation is one ReserveClaimed call: what it loaded, what the policies
// decided, and what it writes.
type reservation struct {
	s          *Store
	tenant     string
	claims     []Claimed
	index      map[uuid.UUID]int // execution id → position in claims
	adapterIDs []uuid.UUID       // the claim's adapters, first seen first
	sorted     []uuid.UUID       // the executions in id order (the lock order)
	lease      time.Duration

	p   *pipe
	now time.Time
	out []Reservation
	evs []event

	rows       []dbsqlc.LoadSendsLockedRow
	batches    map[uuid.UUID]*adapterBatch
	suppressed map[string]bool // "email:…" / "domain:…"
	threads    map[threadKey][]dbsqlc.ThreadsOfRow

	reserve      dbsqlc.ReserveSendsParams
	provUsage    dbsqlc.AddProviderUsageParams // reserved sends to capped providers
	reserved     []int                         // positions in claims of the allowed sends, with their rows
	reservedRows []dbsqlc.LoadSendRow
	release      []uuid.UUID // claims left for a later claim
	variantIDs   []uuid.UUID // first variant assignments (variants.go)
	variantKeys  []string
}

func newReservation(s *Store, claims []Claimed, lease time.Duration) (*reservation, error) {
	r := &reservation{s: s, claims: claims, lease: lease, out: make([]Reservation, len(claims)),
		index: make(map[uuid.UUID]int, len(claims)), sorted: make([]uuid.UUID, len(claims))}
	if len(claims) == 0 {
		return r, nil
	}
	r.tenant = claims[0].Tenant
	seen := map[uuid.UUID]bool{}
	for i, c := range claims {
		if c.Tenant != r.tenant {
			return r, fmt.Errorf("a reservation is of one tenant (%q and %q)", r.tenant, c.Tenant)
		}
		r.index[c.ID], r.sorted[i] = i, c.ID
		if !seen[c.AdapterID] {
			seen[c.AdapterID] = true
			r.adapterIDs = append(r.adapterIDs, c.AdapterID)
		}
	}
	slices.SortFunc(r.sorted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return r, nil
}

// reset starts (or restarts) the reservation in the transaction p.
func (r *reservation) reset(p *pipe) {
	r.p, r.evs = p, nil
	for i := range r.out {
		r.out[i] = Reservation{Outcome: Released}
	}
	r.reserve, r.reserved, r.reservedRows, r.release = dbsqlc.ReserveSendsParams{}, nil, nil, nil
	r.variantIDs, r.variantKeys = nil, nil
	r.provUsage = dbsqlc.AddProviderUsageParams{}
}

// load locks the adapters and executions, opens the adapters and reads the
// policy inputs: the first two round trips.
func (r *reservation) load(ctx context.Context) error {
	var ads []dbsqlc.Adapter
	b := &pgx.Batch{}
	queueRows(b, &ads, func(q *dbsqlc.Queries) error {
		_, err := q.LockAdapters(ctx, dbsqlc.LockAdaptersParams{TenantKey: r.tenant, Ids: r.adapterIDs})
		return err
	})
	queueRows(b, &r.rows, func(q *dbsqlc.Queries) error {
		_, err := q.LoadSendsLocked(ctx, dbsqlc.LoadSendsLockedParams{TenantKey: r.tenant, Ids: r.sorted})
		return err
	})
	if err := r.p.run(ctx, b); err != nil {
		return err
	}
	r.now = r.s.clock.Now()
	if err := r.openAdapters(ctx, ads); err != nil {
		return err
	}
	return r.loadInputs(ctx)
}

// openAdapters makes each adapter's batch and opens its credentials.
// Credentials that cannot be opened (a changed encryption key) block their
// adapter, not the claim: its executions go back and it is looked at again
// in a minute.
func (r *reservation) openAdapters(ctx context.Context, ads []dbsqlc.Adapter) error {
	r.batches = make(map[uuid.UUID]*adapterBatch, len(ads))
	for _, ad := range ads {
		loc, err := time.LoadLocation(ad.Timezone)
		if err != nil {
			loc = time.UTC
		}
		b := &adapterBatch{ad: ad, loc: loc, day: dayOf(r.now, loc),
			preBlocked: ad.DeletedAt == nil && ad.NextSendAt != nil && ad.NextSendAt.After(r.now),
			forVersion: map[uuid.UUID]int{}, share: map[uuid.UUID]int{}, provCaps: providerCaps(ad.ProviderCaps)}
		if b.provCaps != nil {
			b.provSent = map[string]int{}
		}
		r.batches[ad.ID] = b
		if b.preBlocked || ad.DeletedAt != nil || len(ad.Credentials) == 0 {
			continue
		}
		if b.creds, err = r.s.openCredentials(r.tenant, ad); err != nil {
			r.s.log.Error("cannot open an adapter's credentials; it is skipped for a minute", "tenant", r.tenant, "adapter", ad.ID, "err", err)
			b.preBlocked = true
			if err := r.p.q.SetAdapterNextSend(ctx, dbsqlc.SetAdapterNextSendParams{TenantKey: r.tenant, ID: ad.ID, NextSendAt: r.now.Add(time.Minute)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchOf is the batch of the adapter the claim of row saw.
func (r *reservation) batchOf(id uuid.UUID) *adapterBatch {
	return r.batches[r.claims[r.index[id]].AdapterID]
}

// loadInputs reads the policy inputs, suppressions and the threads that
// follow-ups continue, for the whole claim: one statement each, whatever
// its size, in one round trip.
func (r *reservation) loadInputs(ctx context.Context) error {
	var in dbsqlc.BatchPolicyInputsParams
	pairs := map[[2]uuid.UUID]bool{}
	var emails, domains []string
	var threadEnrollments []uuid.UUID
	var threadNos []int
	for _, row := range r.rows {
		b := r.batchOf(row.ID)
		if b == nil || b.preBlocked {
			continue
		}
		if k := [2]uuid.UUID{b.ad.ID, row.SequenceVersionID}; !pairs[k] {
			pairs[k] = true
			in.AdapterIds, in.Days, in.VersionIds = append(in.AdapterIds, b.ad.ID), append(in.Days, b.day), append(in.VersionIds, row.SequenceVersionID)
		}
		emails, domains = append(emails, strings.ToLower(row.Email)), append(domains, dripdrop.EmailDomain(row.Email))
		if row.Followup && row.AdapterOverrideID == nil {
			threadEnrollments, threadNos = append(threadEnrollments, row.EnrollmentID), append(threadNos, row.ThreadNo)
		}
	}
	r.suppressed, r.threads = map[string]bool{}, map[threadKey][]dbsqlc.ThreadsOfRow{}
	if len(pairs) == 0 {
		return nil
	}
	var usage []dbsqlc.BatchPolicyInputsRow
	var provUsage []dbsqlc.ProviderUsageRow
	var supp []dbsqlc.SuppressedAmongRow
	var sent []dbsqlc.ThreadsOfRow
	in.TenantKey, in.Now = r.tenant, r.now
	b := &pgx.Batch{}
	queueRows(b, &usage, func(q *dbsqlc.Queries) error { _, err := q.BatchPolicyInputs(ctx, in); return err })
	queueRows(b, &supp, func(q *dbsqlc.Queries) error {
		_, err := q.SuppressedAmong(ctx, dbsqlc.SuppressedAmongParams{TenantKey: r.tenant, Emails: emails, Domains: domains})
		return err
	})
	// Provider caps (docs/preflight.md): today's sends of capped
	// providers, read in the same round trip, only for capped adapters.
	var capped dbsqlc.ProviderUsageParams
	for _, id := range r.adapterIDs {
		if bt := r.batches[id]; bt != nil && bt.provCaps != nil && !bt.preBlocked {
			capped.AdapterIds, capped.Days = append(capped.AdapterIds, id), append(capped.Days, bt.day)
		}
	}
	if len(capped.AdapterIds) > 0 {
		capped.TenantKey = r.tenant
		queueRows(b, &provUsage, func(q *dbsqlc.Queries) error { _, err := q.ProviderUsage(ctx, capped); return err })
	}
	if len(threadEnrollments) > 0 {
		queueRows(b, &sent, func(q *dbsqlc.Queries) error {
			_, err := q.ThreadsOf(ctx, dbsqlc.ThreadsOfParams{TenantKey: r.tenant, EnrollmentIds: threadEnrollments, ThreadNos: threadNos})
			return err
		})
	}
	if err := r.p.run(ctx, b); err != nil {
		return err
	}
	for _, u := range usage {
		b := r.batches[u.AdapterID]
		b.sentToday, b.forVersion[u.SequenceVersionID], b.share[u.SequenceVersionID] = u.SentToday, u.SentForVersion, u.MaxSharePct
		b.room = u.Room
	}
	for _, pu := range provUsage {
		if bt := r.batches[pu.AdapterID]; bt != nil && bt.provSent != nil {
			bt.provSent[pu.Provider] = pu.Sent
		}
	}
	for _, sp := range supp {
		r.suppressed[sp.Kind+":"+sp.Value] = true
	}
	for _, m := range sent {
		if m.ThreadNo != nil {
			k := threadKey{m.EnrollmentID, *m.ThreadNo}
			r.threads[k] = append(r.threads[k], m)
		}
	}
	return nil
}

// evaluate decides every loaded execution in claim order.
func (r *reservation) evaluate(ctx context.Context) error {
	for _, row := range r.rows {
		if err := r.decide(ctx, dbsqlc.LoadSendRow(row)); err != nil {
			return err
		}
	}
	return nil
}

// decide handles one execution: left for a later claim, cancelled, given
// the pool's policy, refused by a policy, or allowed (counted against its
// adapter's next execution).
func (r *reservation) decide(ctx context.Context, sc dbsqlc.LoadSendRow) error {
	i := r.index[sc.ID]
	res := &r.out[i]
	b := r.batchOf(sc.ID)
	if b == nil || b.preBlocked || b.blocked != nil || sc.State != "scheduled" || sc.AdapterID != r.claims[i].AdapterID ||
		sc.EnrollmentState == dripdrop.EnrollmentPaused || sc.ScheduledFor.After(r.now) || b.room <= 0 {
		// Gone, blocked since the claim or by this batch, moved, paused, no
		// longer scheduled or no longer due (an out-of-office reply moved
		// it after the claim), or its adapter's places are all taken by
		// sends in flight (in any process: claims made at the same moment
		// did not know of each other): left for a later claim.
		r.release = append(r.release, sc.ID)
		return nil
	}
	q, ad, now := r.p.q, b.ad, r.now
	if sc.EnrollmentState != dripdrop.EnrollmentActive {
		res.Outcome = Cancelled
		code, msg := "enrollment_"+string(sc.EnrollmentState), "the enrollment is "+string(sc.EnrollmentState)
		return q.FinishExecution(ctx, dbsqlc.FinishExecutionParams{TenantKey: r.tenant, ID: sc.ID, State: "cancelled", ErrorCode: &code, Error: &msg, Now: now})
	}
	// The sender must be usable; a lost pin gets the pool policy.
	if !policy.SenderUsable(ad.DeletedAt != nil, ad.Active, policy.Adapter{HealthState: ad.HealthState, RestingUntil: ad.RestingUntil, ReconnectRequired: ad.ReconnectRequired}, now) {
		return r.s.unusableSender(ctx, q, r.tenant, sc, now, res, &r.evs)
	}
	scope := ""
	switch {
	case r.suppressed["email:"+strings.ToLower(sc.Email)]:
		scope = "email"
	case r.suppressed["domain:"+dripdrop.EmailDomain(sc.Email)]:
		scope = "domain"
	}
	in := policyInputFrom(sc, ad, b.loc, now, policyFacts{sentToday: b.sentToday, sentForVersion: b.forVersion[sc.SequenceVersionID],
		maxSharePct: b.share[sc.SequenceVersionID], scope: scope})
	if prov := deref(sc.RecipientProvider); prov != "" && b.provCaps[prov] > 0 {
		in.ProviderCap, in.SentTodayForProvider = b.provCaps[prov], b.provSent[prov]
	}
	if v := policy.Evaluate(in).Binding; v != nil {
		res.Verdict = v
		if v.Scope() == policy.ScopeAdapter {
			until := v.DeferUntil
			b.blocked = &until
		}
		return r.s.applyVerdict(ctx, q, r.tenant, sc, ad, *v, now, res, &r.evs)
	}
	r.allow(b, sc, i)
	return nil
}

// allow reserves sc: it counts against its adapter's room, day and
// version, and goes into the set-based reservation.
func (r *reservation) allow(b *adapterBatch, sc dbsqlc.LoadSendRow, i int) {
	b.room--
	b.sentToday++
	b.forVersion[sc.SequenceVersionID]++
	if prov := deref(sc.RecipientProvider); prov != "" && b.provCaps[prov] > 0 {
		b.provSent[prov]++
		pu := &r.provUsage
		pu.AdapterIds, pu.Days, pu.Providers = append(pu.AdapterIds, b.ad.ID), append(pu.Days, b.day), append(pu.Providers, prov)
	}
	last := r.now
	b.ad.LastSendAt = &last
	b.reserved = true
	msgID := deref(sc.OutMessageID)
	if msgID == "" {
		msgID = dripdrop.NewMessageID(b.ad.FromAddress)
	}
	threadNo := -1
	if sc.AdapterOverrideID == nil {
		threadNo = sc.ThreadNo
	}
	rs := &r.reserve
	rs.Ids = append(rs.Ids, sc.ID)
	rs.OutMessageIds = append(rs.OutMessageIds, msgID)
	rs.ThreadNos = append(rs.ThreadNos, threadNo)
	rs.SequenceVersionIds = append(rs.SequenceVersionIds, sc.SequenceVersionID)
	rs.AdapterIds = append(rs.AdapterIds, b.ad.ID)
	rs.ReservedDays = append(rs.ReservedDays, b.day)
	r.assignVariant(sc)
	r.reserved, r.reservedRows = append(r.reserved, i), append(r.reservedRows, sc)
}

// write queues the released claims and the reservation with the outbox
// rows and COMMIT, and builds the jobs of the reserved sends.
func (r *reservation) write(ctx context.Context) error {
	if len(r.release) > 0 {
		release := r.release
		queueExec(&r.p.tail, func(q *dbsqlc.Queries) error {
			return q.ReleaseClaims(ctx, dbsqlc.ReleaseClaimsParams{TenantKey: r.tenant, Ids: release})
		})
	}
	if len(r.reserved) == 0 {
		return nil
	}
	leaseUntil := r.now.Add(r.lease)
	rs := &r.reserve
	rs.TenantKey, rs.Now, rs.LeaseExpiresAt, rs.Recent = r.tenant, r.now, leaseUntil, r.now.Add(-time.Second)
	r.blockAdapters(leaseUntil)
	reserve := *rs
	if r.s.onCitus(ctx) {
		// Two router statements on Citus (the usage insert apart), in the
		// same round trip.
		queueExec(&r.p.tail, func(q *dbsqlc.Queries) error {
			return q.ReserveSendsSteps(ctx, dbsqlc.ReserveSendsStepsParams(reserve))
		})
		queueExec(&r.p.tail, func(q *dbsqlc.Queries) error {
			return q.AddDailyUsage(ctx, dbsqlc.AddDailyUsageParams{TenantKey: reserve.TenantKey, AdapterIds: reserve.AdapterIds,
				ReservedDays: reserve.ReservedDays, SequenceVersionIds: reserve.SequenceVersionIds})
		})
	} else {
		queueExec(&r.p.tail, func(q *dbsqlc.Queries) error { return q.ReserveSends(ctx, reserve) })
	}
	r.writeVariants(ctx)
	if len(r.provUsage.AdapterIds) > 0 {
		pu := r.provUsage
		pu.TenantKey = r.tenant
		queueExec(&r.p.tail, func(q *dbsqlc.Queries) error { return q.AddProviderUsage(ctx, pu) })
	}
	return r.buildJobs(ctx, leaseUntil)
}

// blockAdapters sets each reserving adapter's next_send_at. An adapter with
// a minimum gap has one send in flight at a time: it is blocked until the
// conversation ends (or the lease expires); the record then starts the gap
// from the hand-over (a failure: from its end, afterSend). A block found
// later in the batch stands (applyVerdict set it).
func (r *reservation) blockAdapters(leaseUntil time.Time) {
	rs := &r.reserve
	for _, id := range r.adapterIDs {
		b := r.batches[id]
		if b == nil || !b.reserved {
			continue
		}
		var next *time.Time
		if gapOf(b.ad).HasGap() {
			next = &leaseUntil
		}
		if b.blocked != nil && (next == nil || b.blocked.After(*next)) {
			next = b.blocked
		}
		rs.Adapters = append(rs.Adapters, id)
		rs.Blocked = append(rs.Blocked, next != nil)
		if next != nil {
			rs.NextSendAts = append(rs.NextSendAts, *next)
		} else {
			rs.NextSendAts = append(rs.NextSendAts, r.now)
		}
	}
}

// buildJobs makes the SendJob of every reserved send.
func (r *reservation) buildJobs(ctx context.Context, leaseUntil time.Time) error {
	firstSubject := map[uuid.UUID]string{}
	rs := &r.reserve
	for k, i := range r.reserved {
		sc, b := r.reservedRows[k], r.batches[rs.AdapterIds[k]]
		var thread []dbsqlc.ThreadsOfRow
		if sc.Followup && rs.ThreadNos[k] >= 0 {
			thread = r.threads[threadKey{sc.EnrollmentID, rs.ThreadNos[k]}]
		}
		job := r.s.buildJob(r.tenant, sc, b.ad, rs.OutMessageIds[k], leaseUntil, sc.Attempt+1, thread, b.creds)
		if strings.TrimSpace(job.Subject) == "" && job.ReplySubject == "" {
			// A new thread (or an override step) without its own subject
			// starts from the version's first subject.
			subject, ok := firstSubject[sc.SequenceVersionID]
			if !ok {
				first, err := r.p.q.GetFirstStep(ctx, dbsqlc.GetFirstStepParams{TenantKey: r.tenant, SequenceVersionID: sc.SequenceVersionID})
				if err != nil {
					return err
				}
				subject, firstSubject[sc.SequenceVersionID] = first.Subject, first.Subject
			}
			job.Subject = subject
		}
		job.Day = b.day
		job.MinGapSeconds, job.GapJitterSeconds = b.ad.MinGapSeconds, b.ad.GapJitterSeconds
		job.AdapterFailures = b.ad.AdapterFailures + b.ad.AuthFailures
		r.out[i] = Reservation{Outcome: Reserved, Job: job}
	}
	return nil
}
