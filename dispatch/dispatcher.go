// Package dispatch runs the sending engine: workers claim due step
// executions, reserve each send under its adapter's lock (policies
// included), talk SMTP outside any transaction, and record the outcome.
// A leader replica runs the scheduled duties (stale-send rescue, …).
package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
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
	Metrics   telemetry.OutboxMetrics // NotifyMissed; nil = no-op
	Logger    *slog.Logger

	Workers      int           // concurrent sends (default 8)
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

// claimHold is how long a claim keeps other workers off an execution until
// its reservation commits; a crashed claimer's rows come back after it.
const claimHold = 30 * time.Second

// Dispatcher claims and sends due executions.
type Dispatcher struct {
	cfg      Config
	store    *db.Store
	log      *slog.Logger
	tel      Emitter
	metrics  telemetry.OutboxMetrics
	cache    *spintax.Cache
	slots    chan struct{}
	inflight sync.WaitGroup
	notified atomic.Bool

	tenantMu   sync.Mutex
	tenantList []string
	tenantsAt  time.Time
}

// New validates the configuration and returns a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
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
		cache: spintax.NewCache(4096), slots: make(chan struct{}, cfg.Workers)}
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.metrics == nil {
		d.metrics = telemetry.NoOp{}
	}
	if d.tel == nil {
		d.tel = (*telemetry.Bus)(nil)
	}
	return d, nil
}

// Run claims and sends until ctx ends, then stops claiming and waits for
// in-flight sends to finish (they are bounded by SendTimeout).
func (d *Dispatcher) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	lctx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	go d.store.Listen(lctx, func(string) {
		d.notified.Store(true)
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	timer := time.NewTimer(0)
	defer timer.Stop()
	outage := &db.Outage{Logger: d.log, Loop: "dispatcher"}
	for {
		byNotify := false
		select {
		case <-ctx.Done():
			d.inflight.Wait()
			return nil
		case <-wake:
			byNotify = true
		case <-timer.C:
		}
		notified := d.notified.Swap(false) || byNotify
		n, fresh, err := d.tick(ctx)
		if ctx.Err() == nil && outage.Note(err) {
			d.log.Error("dispatch tick failed", "err", err)
		}
		if fresh > 0 && !notified {
			d.metrics.NotifyMissed() // new work the fallback poll found first
		}
		wait := d.cfg.PollInterval
		if n > 0 && len(d.slots) < cap(d.slots) {
			wait = 10 * time.Millisecond // more may be due; free slots remain
		}
		timer.Reset(wait)
	}
}

// Tick claims as many due executions as there are free workers, across
// tenants, and starts sending them. It returns how many it claimed.
func (d *Dispatcher) Tick(ctx context.Context) (int, error) {
	n, _, err := d.tick(ctx)
	return n, err
}

// tick also counts claimed work that was due when written ("fresh").
func (d *Dispatcher) tick(ctx context.Context) (total, fresh int, err error) {
	tenants, err := d.tenants(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range tenants {
		free := cap(d.slots) - len(d.slots)
		if free <= 0 {
			break
		}
		claimed, err := d.store.Claim(ctx, t, free, claimHold)
		if err != nil {
			return total, fresh, err
		}
		for _, c := range claimed {
			if c.DueOnWrite {
				fresh++
			}
			id := c.ID
			d.slots <- struct{}{}
			d.inflight.Add(1)
			go func() {
				defer func() { <-d.slots; d.inflight.Done() }()
				d.process(context.WithoutCancel(ctx), t, id)
			}()
		}
		total += len(claimed)
	}
	return total, fresh, nil
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
func (d *Dispatcher) Drain() { d.inflight.Wait() }

func (d *Dispatcher) emit(ctx context.Context, name string, m map[string]float64, md map[string]any) {
	d.tel.Emit(ctx, name, m, md)
}

// process runs one execution through reserve → render → send → record.
func (d *Dispatcher) process(ctx context.Context, tenant string, id uuid.UUID) {
	res, err := d.store.Reserve(ctx, tenant, id, d.cfg.Lease)
	if err != nil {
		d.log.Error("reserve failed; the execution will be retried", "tenant", tenant, "execution", id, "err", err)
		if rerr := d.store.ReleaseClaim(ctx, tenant, id); rerr != nil {
			d.log.Error("releasing a claim", "execution", id, "err", rerr)
		}
		return
	}
	if res.Outcome != db.Reserved {
		return
	}
	job := res.Job
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
		if ferr := d.store.MarkFailed(ctx, job, false, false, 0, code, err.Error()); ferr != nil {
			d.log.Error("recording a failure", "execution", id, "err", ferr)
		}
		return
	}
	raw, err := msg.Build()
	if err != nil {
		code := "build_failed"
		if errors.Is(err, ErrHeaderInjection) {
			code = "header_injection_blocked"
		}
		if ferr := d.store.MarkFailed(ctx, job, false, false, 0, code, err.Error()); ferr != nil {
			d.log.Error("recording a failure", "execution", id, "err", ferr)
		}
		return
	}
	meta := map[string]any{"step_execution_id": id.String(), "enrollment_id": job.EnrollmentID.String(),
		"adapter_id": job.AdapterID.String(), "adapter_provider": job.Provider, "tenant_key": tenant}
	start := time.Now()
	d.emit(ctx, "dripdrop.dispatch.send.start", map[string]float64{"system_time": float64(start.UnixNano()) / 1e9}, meta)
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	providerID, err := d.cfg.Transport.Send(sctx, Delivery{AdapterID: job.AdapterID, Credentials: job.Credentials, From: job.FromAddress, To: job.Contact.Email, Data: raw})
	cancel()
	dur := time.Since(start).Seconds()
	if err != nil {
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
			// The sender's failure, not the recipient's (SPEC §6.1).
			d.log.Warn("adapter error; the execution is requeued and the adapter backs off", "tenant", tenant, "adapter", job.AdapterID, "execution", id, "reason", se.Reason, "err", se.Error())
			if ferr := d.store.AdapterFailed(ctx, job, se.Reason, se.Reason == "auth", se.Error()); ferr != nil {
				d.log.Error("recording an adapter failure", "execution", id, "err", ferr)
			}
			return
		}
		if ferr := d.store.MarkFailed(ctx, job, se.Temporary, se.Bounce(), se.Code, errorCode(se), se.Error()); ferr != nil {
			d.log.Error("recording a failure", "execution", id, "err", ferr)
		}
		return
	}
	d.emit(ctx, "dripdrop.dispatch.send.stop", map[string]float64{"duration": dur}, meta)
	ok, err := d.store.MarkSent(ctx, job, providerID, msg.Subject)
	if err != nil {
		// The message went out but is not recorded: the lease expires and
		// the rescuer resends it with the same Message-ID (SPEC §6.1).
		d.log.Error("recording a send failed; it will be rescued", "execution", id, "message_id", job.MessageID, "err", err)
		return
	}
	if ok && d.cfg.OnSent != nil {
		d.cfg.OnSent(job)
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
			d.emit(ctx, "dripdrop.template.spintax_error", map[string]float64{"count": 1}, map[string]any{
				"reason": reason, "text": text, "step_execution_id": job.ExecutionID.String(), "attempt_window": job.AttemptWindow})
			if t, err = spintax.ParseVariablesOnly(src); err != nil {
				return src, nil
			}
		}
		for _, w := range t.Warnings() {
			d.emit(ctx, "dripdrop.template.spintax_warning", map[string]float64{"count": 1}, map[string]any{
				"reason": w.Reason, "token": w.Token, "step_execution_id": job.ExecutionID.String(), "attempt_window": job.AttemptWindow})
		}
		out, err := r.Render(t, job.Contact)
		var mv *spintax.MissingVariableError
		if errors.As(err, &mv) {
			d.emit(ctx, "dripdrop.template.missing_variable", map[string]float64{"count": 1}, map[string]any{
				"step_execution_id": job.ExecutionID.String(), "tenant_key": job.TenantKey, "variable": mv.Name, "field": name})
		}
		return out, err
	}
	m := &Message{MessageID: job.MessageID, FromName: job.FromName, FromAddr: job.FromAddress, To: job.Contact.Email,
		Date: time.Now(), InReplyTo: job.InReplyTo, References: job.References,
		ListUnsubscribeMailto: job.FromAddress + "?subject=unsubscribe"}
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
