// Package dispatch runs the sending engine: workers claim due step
// executions, reserve each send under its adapter's lock (policies
// included), talk SMTP outside any transaction, and record the outcome.
// A leader replica runs the scheduled duties (stale-send rescue, …).
package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/smtpreply"
	"github.com/dripdrop/dripdrop/spintax"
	"github.com/dripdrop/dripdrop/telemetry"
)

// Emitter receives telemetry (a *telemetry.Bus).
type Emitter interface {
	Emit(ctx context.Context, name string, measurements map[string]float64, metadata map[string]any)
}

// Config configures a Dispatcher.
type Config struct {
	Store     *db.Store
	Transport Transport
	Telemetry Emitter
	Metrics   telemetry.OutboxMetrics // NotifyMissed, DispatchPhase; nil = no-op
	Logger    *slog.Logger

	// Workers is the send concurrency (default 256). Sends hold no database
	// connection, so it is independent of the database pool: a send
	// borrows a connection only for its reservation and its record.
	Workers      int
	PollInterval time.Duration // fallback poll (default 1 s)
	Lease        time.Duration // how long a send may stay "sending" before rescue (default 10 min)
	SendTimeout  time.Duration // deadline of one SMTP conversation (default 2 min; must be < Lease)
	// PublicBaseURL and UnsubscribeKey enable one-click unsubscribe links
	// (RFC 8058) served at PublicBaseURL/u/{token}.
	PublicBaseURL  string
	UnsubscribeKey []byte
	// OnSent, when set, is called after a send is recorded (dev mode's live log).
	OnSent func(job *db.SendJob)
}

// DefaultWorkers is the default send concurrency: independent of the
// database pool, since a send holds no connection during its conversation
// (docs/sending.md#fairness-and-concurrency).
const DefaultWorkers = 256

// claimHold is how long a claim keeps other workers off an execution until
// its reservation commits; a crashed claimer's rows come back after it.
const claimHold = 30 * time.Second

// Dispatcher claims and sends due executions.
type Dispatcher struct {
	cfg     Config
	store   *db.Store
	log     *slog.Logger
	tel     Emitter
	metrics telemetry.OutboxMetrics
	cache   *spintax.Cache
	rec     *recorder
	wg      sync.WaitGroup
	// freed is signalled when a send ends (a slot is free again).
	freed    chan struct{}
	finished atomic.Int64 // sends ended since the last claim
	notified atomic.Bool

	mu        sync.Mutex
	inflight  int               // sends holding a slot: reserving or talking SMTP
	recording int               // sends past their conversation, being recorded
	busy      map[uuid.UUID]int // sends not finished (recording included) per adapter (max_in_flight)
	rotation  int               // first tenant of the next claim round

	tenantMu   sync.Mutex
	tenantList []string
	tenantsAt  time.Time

	// The agenda: which tenants have queued work and when it comes due
	// (the store's clock), so that a tick asks only tenants with due work
	// (docs/sending.md#fairness-and-concurrency). It is read whole from
	// the ready queue at most once per poll interval (synced) and kept
	// between by each claim's answer and by pokes: a notification of new
	// work, or a send of the tenant that ended (its record or retry may
	// have queued more).
	agendaMu sync.Mutex
	agenda   map[string]time.Time
	poked    map[string]bool
	synced   time.Time // wall clock of the last full read; zero: never
}

// New validates the configuration and returns a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Minute
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 2 * time.Minute
	}
	if cfg.SendTimeout >= cfg.Lease {
		return nil, errors.New("dispatch: the send timeout must be shorter than the lease, or a slow send could be rescued and sent twice")
	}
	d := &Dispatcher{cfg: cfg, store: cfg.Store, log: cfg.Logger, tel: cfg.Telemetry, metrics: cfg.Metrics,
		cache: spintax.NewCache(4096), rec: &recorder{store: cfg.Store}, freed: make(chan struct{}, 1), busy: map[uuid.UUID]int{}}
	if d.log == nil {
		d.log = slog.Default()
	}
	d.rec.log = d.log
	if d.metrics == nil {
		d.metrics = telemetry.NoOp{}
	}
	d.rec.metrics = d.metrics
	if d.tel == nil {
		d.tel = (*telemetry.Bus)(nil)
	}
	return d, nil
}

// minClaim is how many sends must end before a claim while others are in
// flight: a freed slot (or adapter in-flight place) waits briefly for
// company rather than claiming one execution at a time in lockstep with
// the sends.
func (d *Dispatcher) minClaim() int { return max(1, min(10, d.cfg.Workers/2)) }

// batchWait is how long after the last send ended a claim waits for
// minClaim company.
const batchWait = 5 * time.Millisecond

// Run claims and sends until ctx ends, then stops claiming and waits for
// in-flight sends to finish (they are bounded by SendTimeout). It wakes on
// a notification of new work, when a send ends and frees a slot, and on
// the fallback poll.
func (d *Dispatcher) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	lctx, stopListen := context.WithCancel(ctx)
	listening := make(chan struct{})
	defer func() { stopListen(); <-listening }() // Run's goroutines end before it returns
	go func() {
		defer close(listening)
		d.store.Listen(lctx, func(tenant string) {
			d.poke(tenant)
			d.notified.Store(true)
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	outage := &db.Outage{Logger: d.log, Loop: "dispatcher"}
	for {
		byNotify := false
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return nil
		case <-wake:
			byNotify = true
		case <-d.freed:
			// Claim when enough sends have ended (slots or adapters' in-flight
			// places came free) for a batch, or briefly after the last one.
			if free, inflight := d.free(); free > 0 && inflight > 0 && int(d.finished.Load()) < d.minClaim() {
				resetTimer(timer, batchWait)
				continue
			}
		case <-timer.C:
		}
		notified := d.notified.Swap(false) || byNotify
		d.finished.Store(0)
		n, fresh, err := d.tick(ctx, false)
		if ctx.Err() == nil && outage.Note(err) {
			d.log.Error("dispatch tick failed", "err", err)
		}
		if fresh > 0 && !notified {
			d.metrics.NotifyMissed() // new work the fallback poll found first
		}
		wait := d.cfg.PollInterval
		if free, _ := d.free(); n > 0 && free > 0 {
			wait = batchWait // more may be due and slots are free
		} else if err == nil {
			wait = d.untilDue(wait)
		}
		resetTimer(timer, wait)
	}
}

// untilDue shortens the poll to when the agenda's next queued work comes
// due by the clock (a send scheduled for later, a gap ending), so such work
// goes out on time rather than up to a poll interval late.
func (d *Dispatcher) untilDue(poll time.Duration) time.Duration {
	now := d.store.Now()
	d.agendaMu.Lock()
	defer d.agendaMu.Unlock()
	wait := poll
	for _, at := range d.agenda {
		wait = min(wait, at.Sub(now))
	}
	return max(wait, time.Millisecond)
}

// poke puts a tenant on the agenda as due now.
func (d *Dispatcher) poke(tenant string) {
	d.agendaMu.Lock()
	defer d.agendaMu.Unlock()
	if d.poked == nil {
		d.poked = map[string]bool{}
	}
	d.poked[tenant] = true
}

// dueTenants are the agenda's tenants with work due now, by key. The
// agenda is read whole from the ready queue first when full is set or the
// last full read is a poll interval old: work that came due without a
// notification (another engine's retry, a rescued lease) is found within
// a poll interval, as by the fallback poll.
func (d *Dispatcher) dueTenants(ctx context.Context, full bool) ([]string, error) {
	d.agendaMu.Lock()
	poked := d.poked
	d.poked = nil
	stale := full || d.agenda == nil || time.Since(d.synced) >= d.cfg.PollInterval
	d.agendaMu.Unlock()
	var read map[string]time.Time
	if stale {
		tenants, err := d.tenants(ctx)
		if err == nil {
			read, err = d.store.NextDue(ctx, tenants)
		}
		if err != nil {
			for t := range poked { // kept for the next tick
				d.poke(t)
			}
			return nil, err
		}
	}
	now := d.store.Now()
	d.agendaMu.Lock()
	defer d.agendaMu.Unlock()
	if stale {
		d.agenda, d.synced = read, time.Now()
	}
	for t := range poked {
		d.agenda[t] = time.Time{}
	}
	var due []string
	for t, at := range d.agenda {
		if !at.After(now) {
			due = append(due, t)
		}
	}
	slices.Sort(due)
	return due, nil
}

// noteNext keeps the agenda after a claim: each tenant asked is due next
// when its earliest queued work is (the claim read it), and off the agenda
// when it has none. A poke that arrived meanwhile wins at the next tick.
func (d *Dispatcher) noteNext(reqs []db.ClaimRequest, next map[string]time.Time) {
	d.agendaMu.Lock()
	defer d.agendaMu.Unlock()
	for _, r := range reqs {
		if at, ok := next[r.Tenant]; ok {
			d.agenda[r.Tenant] = at
		} else {
			delete(d.agenda, r.Tenant)
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// free reports free send slots and sends in flight. A send gives its slot
// back when its SMTP conversation ends: recording it is the database's
// work, and holding a slot through it would idle a conversation for every
// record's commit. Records still pending count against the slots beyond
// one full set of them, so a slow database holds the conversations back
// instead of piling up records.
func (d *Dispatcher) free() (free, inflight int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return min(d.cfg.Workers-d.inflight, 2*d.cfg.Workers-d.inflight-d.recording), d.inflight
}

// Tick claims as many due executions as there are free workers, across
// the tenants with due work (the agenda, read whole first), and starts
// sending them. It returns how many it claimed.
func (d *Dispatcher) Tick(ctx context.Context) (int, error) {
	n, _, err := d.tick(ctx, true)
	return n, err
}

// tick runs claim rounds until the slots are full or every tenant with
// due work was asked once. Tenants are served in rotating order with equal
// shares of the free slots (docs/sending.md#fairness-and-concurrency), all
// tenants of a round in one round trip. It also counts claimed work that
// was due when written ("fresh").
func (d *Dispatcher) tick(ctx context.Context, full bool) (total, fresh int, err error) {
	tenants, err := d.dueTenants(ctx, full)
	if err != nil || len(tenants) == 0 {
		return 0, 0, err
	}
	d.mu.Lock()
	start := d.rotation % len(tenants)
	d.rotation++
	d.mu.Unlock()
	for asked := 0; asked < len(tenants); {
		free, _ := d.free()
		if free <= 0 {
			break
		}
		round := min(free, len(tenants)-asked)
		share, extra := free/round, free%round
		reqs := make([]db.ClaimRequest, round)
		for i := range reqs {
			reqs[i] = db.ClaimRequest{Tenant: tenants[(start+asked+i)%len(tenants)], Limit: share}
			if i < extra {
				reqs[i].Limit++
			}
		}
		asked += round
		d.mu.Lock()
		busy := maps.Clone(d.busy)
		d.mu.Unlock()
		began := time.Now()
		claimed, next, err := d.store.ClaimDue(ctx, reqs, busy, claimHold)
		d.metrics.DispatchPhase("claim", time.Since(began).Seconds())
		if err == nil {
			d.noteNext(reqs, next)
		}
		// One reservation per tenant of the claim, whatever its adapters.
		groups := map[string][]db.Claimed{}
		var order []string
		for _, c := range claimed {
			if c.DueOnWrite {
				fresh++
			}
			if groups[c.Tenant] == nil {
				order = append(order, c.Tenant)
			}
			groups[c.Tenant] = append(groups[c.Tenant], c)
		}
		for _, t := range order {
			d.start(ctx, groups[t])
		}
		total += len(claimed)
		if err != nil {
			return total, fresh, err
		}
	}
	return total, fresh, nil
}

// start reserves one tenant's claimed executions together and sends each
// reserved one in its own goroutine. Every execution holds a slot and one
// of its adapter's in-flight places until its send ends (or at once when
// it was not reserved).
func (d *Dispatcher) start(ctx context.Context, batch []db.Claimed) {
	d.mu.Lock()
	d.inflight += len(batch)
	for _, c := range batch {
		d.busy[c.AdapterID]++
	}
	d.mu.Unlock()
	d.wg.Add(len(batch))
	signal := func() {
		select {
		case d.freed <- struct{}{}:
		default:
		}
	}
	// done ends sends that still hold their slot.
	done := func(adapters ...uuid.UUID) {
		d.finished.Add(int64(len(adapters)))
		d.mu.Lock()
		d.inflight -= len(adapters)
		for _, a := range adapters {
			if d.busy[a]--; d.busy[a] <= 0 {
				delete(d.busy, a)
			}
		}
		d.mu.Unlock()
		signal()
		for range adapters {
			d.wg.Done()
		}
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		res := d.reserve(ctx, batch)
		var unused []uuid.UUID
		for i, c := range batch {
			if res == nil || res[i].Outcome != db.Reserved {
				unused = append(unused, c.AdapterID)
			}
		}
		if len(unused) > 0 {
			d.poke(batch[0].Tenant) // a deferral or a lost race may have queued it later
			done(unused...)
		}
		for i, c := range batch {
			if res != nil && res[i].Outcome == db.Reserved {
				job := res[i].Job
				go func() {
					var released bool
					// release gives the slot back when the conversation
					// has ended; the adapter's place is kept until the
					// send is recorded.
					release := func() {
						if released {
							return
						}
						released = true
						d.finished.Add(1)
						d.mu.Lock()
						d.inflight--
						d.recording++
						d.mu.Unlock()
						signal()
					}
					defer func() {
						release()
						d.poke(c.Tenant) // its record or retry may have queued more
						d.mu.Lock()
						d.recording--
						if d.busy[c.AdapterID]--; d.busy[c.AdapterID] <= 0 {
							delete(d.busy, c.AdapterID)
						}
						d.mu.Unlock()
						signal()
						d.wg.Done()
					}()
					d.send(ctx, job, release)
				}()
			}
		}
	}()
}

// reserve runs phase one for one tenant's claimed executions; nil when
// the reservation failed (the claims are released for a retry).
func (d *Dispatcher) reserve(ctx context.Context, batch []db.Claimed) []db.Reservation {
	began := time.Now()
	res, err := d.store.ReserveClaimed(ctx, batch, d.cfg.Lease)
	d.metrics.DispatchPhase("reserve", time.Since(began).Seconds())
	if err != nil {
		tenant := batch[0].Tenant
		d.log.Error("reserve failed; the executions will be retried", "tenant", tenant, "executions", len(batch), "err", err)
		for _, c := range batch {
			if rerr := d.store.ReleaseClaim(ctx, tenant, c.ID); rerr != nil {
				d.log.Error("releasing a claim", "execution", c.ID, "err", rerr)
			}
		}
		return nil
	}
	return res
}

// tenants lists tenant keys, re-read at most once a second.
func (d *Dispatcher) tenants(ctx context.Context) ([]string, error) {
	d.tenantMu.Lock()
	defer d.tenantMu.Unlock()
	if time.Since(d.tenantsAt) < time.Second && d.tenantList != nil {
		return d.tenantList, nil
	}
	list, err := d.store.TenantKeys(ctx)
	if err != nil {
		return nil, err
	}
	d.tenantList, d.tenantsAt = list, time.Now()
	return list, nil
}

// Drain waits for every started send to finish.
func (d *Dispatcher) Drain() { d.wg.Wait() }

func (d *Dispatcher) emit(ctx context.Context, name string, m map[string]float64, md map[string]any) {
	d.tel.Emit(ctx, name, m, md)
}

// send renders, delivers and records one reserved send; it calls release
// when the SMTP conversation has ended, before the outcome is recorded (a
// send that fails before talking SMTP keeps its slot until it ends).
func (d *Dispatcher) send(ctx context.Context, job *db.SendJob, release func()) {
	tenant, id := job.TenantKey, job.ExecutionID
	msg, err := d.render(ctx, job)
	if err != nil {
		var mv *spintax.MissingVariableError
		code := "render_failed"
		if errors.As(err, &mv) {
			code = "missing_variable"
		}
		if errors.Is(err, ErrHeaderInjection) {
			code = "header_injection_blocked"
		}
		d.recordFailure(ctx, job, &SendError{}, code, err.Error())
		return
	}
	// Date is the engine's clock when the message is built for hand-over
	// (never the wall clock: an injected clock dates the message too).
	msg.Date = d.store.Now()
	raw, err := msg.Build()
	if err != nil {
		code := "build_failed"
		if errors.Is(err, ErrHeaderInjection) {
			code = "header_injection_blocked"
		}
		d.recordFailure(ctx, job, &SendError{}, code, err.Error())
		return
	}
	meta := map[string]any{"step_execution_id": id.String(), "enrollment_id": job.EnrollmentID.String(),
		"adapter_id": job.AdapterID.String(), "adapter_provider": job.Provider, "tenant_key": tenant}
	start := time.Now()
	d.emit(ctx, "dripdrop.dispatch.send.start", map[string]float64{"system_time": float64(start.UnixNano()) / 1e9}, meta)
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	clockStart := d.store.Now()
	receipt, err := d.cfg.Transport.Send(sctx, Delivery{TenantKey: job.TenantKey, AdapterID: job.AdapterID, Auth: job.Auth, Credentials: job.Credentials, From: job.FromAddress, To: job.Contact.Email, Data: raw})
	cancel()
	release()
	dur := time.Since(start).Seconds()
	if err != nil {
		d.sendFailed(ctx, job, err, dur, meta)
		return
	}
	// When the message was handed over, on the store's clock: the reply's
	// wait before the clock's now, in whole seconds (gaps are in seconds)
	// and never more than the conversation took on that clock (an
	// injected clock that stood still saw no wait at all).
	handedOver := d.store.Now()
	if !receipt.HandedOver.IsZero() {
		wait := min(time.Since(receipt.HandedOver), handedOver.Sub(clockStart))
		handedOver = handedOver.Add(-max(wait, 0).Truncate(time.Second))
	}
	d.emit(ctx, "dripdrop.dispatch.send.stop", map[string]float64{"duration": dur}, meta)
	if d.recordSent(ctx, job, receipt.ProviderID, handedOver, msg.Subject) && d.cfg.OnSent != nil {
		d.cfg.OnSent(job)
	}
}

// sendFailed is the one place a failed SMTP conversation is handled: it
// classifies the failure, reports it and records it (retry, bounce or
// permanent failure).
func (d *Dispatcher) sendFailed(ctx context.Context, job *db.SendJob, err error, dur float64, meta map[string]any) {
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Temporary: true, Message: err.Error()}
	}
	kind := "permanent"
	if se.Temporary {
		kind = "temporary"
	}
	em := map[string]any{"kind": kind, "reason": errorCode(se)}
	for k, v := range meta {
		em[k] = v
	}
	d.emit(ctx, "dripdrop.dispatch.send.exception", map[string]float64{"duration": dur}, em)
	if se.AdapterFault {
		// The sender's failure, not the recipient's (docs/sending.md). The
		// line carries ids and codes; the reply's text only with its
		// addresses redacted (logs never carry an address).
		d.log.Warn("adapter error; the execution is requeued and the adapter backs off", "tenant", job.TenantKey, "adapter", job.AdapterID, "execution", job.ExecutionID,
			"reason", se.Reason, "smtp_code", se.Code, "enhanced", se.EnhancedString(), "reply", smtpreply.Redact(se.Message))
		if ferr := d.store.AdapterFailed(ctx, job, se.Reason, se.Reason == "auth", se.Error()); ferr != nil {
			d.log.Error("recording an adapter failure", "execution", job.ExecutionID, "err", ferr)
		}
		return
	}
	d.recordFailure(ctx, job, se, errorCode(se), se.Error())
}

// recordFailure writes a failed send; if that fails, the lease expires and
// the rescuer retries the execution (nothing went out, so nothing doubles).
func (d *Dispatcher) recordFailure(ctx context.Context, job *db.SendJob, se *SendError, code, msg string) {
	if err := d.store.MarkFailed(ctx, job, se.Temporary, se.Bounce(), se.Code, code, msg); err != nil {
		d.log.Error("recording a failure", "execution", job.ExecutionID, "err", err)
	}
}

// Record retry backoff: a send the server accepted is recorded again until
// shortly before its lease ends (docs/sending.md#the-path-of-one-step).
const (
	recordRetryFirst = 50 * time.Millisecond
	recordRetryMax   = 5 * time.Second
)

// recordSent records an accepted message. The server has it, so a failed
// record is retried with backoff until shortly before the lease ends: only
// a crashed process leaves it to the rescuer (which would send it again).
// It reports whether the send was recorded by this worker.
func (d *Dispatcher) recordSent(ctx context.Context, job *db.SendJob, providerID string, handedOver time.Time, subject string) bool {
	left := job.Lease.Sub(d.store.Now())
	deadline := time.Now().Add(left - min(left/10, 30*time.Second))
	wait := recordRetryFirst
	for attempt := 1; ; attempt++ {
		ok, err := d.rec.record(ctx, db.Sent{Job: job, ProviderID: providerID, Subject: subject, HandedOver: handedOver})
		if err == nil {
			return ok
		}
		if time.Now().Add(wait).After(deadline) {
			d.log.Error("recording a send failed until its lease nearly ended; the rescuer will resend it with the same Message-ID",
				"execution", job.ExecutionID, "message_id", job.MessageID, "attempts", attempt, "err", err)
			return false
		}
		d.log.Warn("recording a send failed; retrying", "execution", job.ExecutionID, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		<-t.C
		wait = min(wait*2, recordRetryMax)
	}
}

func errorCode(se *SendError) string {
	switch {
	case se.AdapterFault:
		return "adapter_" + se.Reason
	case se.Bounce():
		return "bounced"
	case se.Code >= 500:
		return "smtp_permanent"
	case se.Code >= 400:
		return "smtp_temporary"
	case se.Temporary:
		return "connection"
	}
	return "smtp_permanent"
}

// render resolves the step's templates for this execution: one choice
// stream seeded by (execution id, attempt window), fields in the order
// subject, body_text, body_html, so retries render byte-identical text.
func (d *Dispatcher) render(ctx context.Context, job *db.SendJob) (*Message, error) {
	r := spintax.NewRenderer(spintax.Seed(job.ExecutionID, job.AttemptWindow))
	field := func(name, src string) (string, error) {
		t, err := d.cache.Parse(src, job.Spintax)
		if err != nil {
			// Malformed spintax falls back to the original text.
			text := src
			if len(text) > 256 {
				text = text[:256]
			}
			reason := "malformed"
			var se *spintax.SyntaxError
			if errors.As(err, &se) {
				reason = se.Reason
			}
			job.Diagnostics = append(job.Diagnostics, db.Diagnostic{Name: "dripdrop.template.spintax_error", Metadata: map[string]any{
				"reason": reason, "text": text, "step_execution_id": job.ExecutionID.String(), "attempt_window": job.AttemptWindow}})
			if t, err = spintax.ParseVariablesOnly(src); err != nil {
				return src, nil
			}
		}
		for _, w := range t.Warnings() {
			job.Diagnostics = append(job.Diagnostics, db.Diagnostic{Name: "dripdrop.template.spintax_warning", Metadata: map[string]any{
				"reason": w.Reason, "token": w.Token, "step_execution_id": job.ExecutionID.String(), "attempt_window": job.AttemptWindow}})
		}
		out, err := r.Render(t, job.Contact)
		var mv *spintax.MissingVariableError
		if errors.As(err, &mv) {
			job.Diagnostics = append(job.Diagnostics, db.Diagnostic{Name: "dripdrop.template.missing_variable", Metadata: map[string]any{
				"step_execution_id": job.ExecutionID.String(), "tenant_key": job.TenantKey, "variable": mv.Name, "field": name}})
		}
		return out, err
	}
	m := &Message{MessageID: job.MessageID, FromName: job.FromName, FromAddr: job.FromAddress, To: job.Contact.Email,
		InReplyTo: job.InReplyTo, References: job.References,
		ListUnsubscribeMailto: job.FromAddress + "?subject=unsubscribe", ListUnsubscribe: job.ListUnsubscribe}
	if d.cfg.PublicBaseURL != "" && len(d.cfg.UnsubscribeKey) > 0 {
		m.ListUnsubscribeURL = strings.TrimRight(d.cfg.PublicBaseURL, "/") + "/u/" + dripdrop.UnsubscribeToken(d.cfg.UnsubscribeKey, job.TenantKey, job.EnrollmentID)
	}
	var err error
	if job.ReplySubject != "" {
		m.Subject = job.ReplySubject
		if !strings.HasPrefix(strings.ToLower(m.Subject), "re:") {
			m.Subject = "Re: " + m.Subject
		}
	} else if m.Subject, err = field("subject", job.Subject); err != nil {
		return nil, err
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, ErrHeaderInjection
	}
	if m.Text, err = field("body_text", job.BodyText); err != nil {
		return nil, err
	}
	if job.BodyHTML != nil {
		if m.HTML, err = field("body_html", *job.BodyHTML); err != nil {
			return nil, err
		}
	}
	return m, nil
}
