package dispatch

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// Leader holds a TTL lease in PostgreSQL; while it does, it runs the
// scheduled duties on robfig/cron schedules, timed by the store's clock.
// Other replicas stand by and take over when the lease lapses.
type Leader struct {
	Store  *db.Store
	Holder string        // unique per process (default hostname-pid-random)
	TTL    time.Duration // lease length (default 30 s); renewed every TTL/3
	Logger *slog.Logger
	// Schedules (robfig/cron specs); defaults in DefaultSchedules.
	Schedules map[string]string
	// Duties adds duties run by the leader alongside the built-in ones; each
	// needs a schedule in Schedules (e.g. "telemetry_janitor": "@every 1h").
	Duties map[string]func(context.Context) error
	// Resolution is how often the schedules are compared with the store's
	// clock (default 1 s).
	Resolution time.Duration

	leader atomic.Bool
	// domainsBusy is set while a domain sweep runs: it asks the DNS, so it
	// runs beside the other duties instead of holding them up.
	domainsBusy atomic.Bool
	background  sync.WaitGroup // the domain sweep; Run waits for it
}

// Duties and their default schedules (docs/sending.md).
var DefaultSchedules = map[string]string{
	"rescue_stale_sending": "@every 30s",
	"health_sweep":         "@every 1m", // thresholds, recovery, probing, graduation (docs/health.md)
	"idempotency_janitor":  "@every 1h",
	"variant_sweep":        "@every 1m", // auto-winner rule of steps with variants (docs/sequences.md)
	"route_sweep":          "@every 1m", // branches: completions without a reply, due routes (docs/sequences.md)
	"domain_sweep":         "@every 1m", // sender-domain preflight: new domains, then daily (docs/preflight.md)
}

const leaseName = "dripdrop-leader"

// IsLeader reports whether this process currently leads.
func (l *Leader) IsLeader() bool { return l.leader.Load() }

// Run campaigns and runs duties until ctx ends, then resigns.
func (l *Leader) Run(ctx context.Context) {
	defer l.background.Wait()
	if l.TTL <= 0 {
		l.TTL = 30 * time.Second
	}
	if l.Holder == "" {
		host, _ := os.Hostname()
		// The random tail of the id: its head is a timestamp, which
		// replicas started in the same minute would share.
		id := dripdrop.NewID().String()
		l.Holder = host + "-" + strconv.Itoa(os.Getpid()) + "-" + id[len(id)-12:]
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	outage := &db.Outage{Logger: l.Logger, Loop: "leader"}
	duties := map[string]func(context.Context) error{
		"rescue_stale_sending": l.rescue,
		"health_sweep":         l.health,
		"idempotency_janitor":  l.janitor,
		"variant_sweep":        l.variants,
		"route_sweep":          l.routes,
		"domain_sweep":         l.domains,
	}
	for name, fn := range l.Duties {
		duties[name] = fn
	}
	var jobs []*duty
	for name, fn := range duties {
		spec := DefaultSchedules[name]
		if s, ok := l.Schedules[name]; ok {
			spec = s
		}
		sched, err := cron.ParseStandard(spec)
		if err != nil {
			l.Logger.Error("bad duty schedule", "duty", name, "spec", spec, "err", err)
			continue
		}
		jobs = append(jobs, &duty{name: name, fn: fn, sched: sched})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.runDuties(ctx, jobs, outage)
	}()
	defer func() {
		<-done
		if l.leader.Swap(false) {
			_ = l.Store.ResignLeadership(context.WithoutCancel(ctx), leaseName, l.Holder)
		}
	}()
	tick := time.NewTicker(l.TTL / 3)
	defer tick.Stop()
	for {
		ok, err := l.Store.TryLeadership(ctx, leaseName, l.Holder, l.TTL)
		if ctx.Err() == nil && outage.Note(err) {
			l.Logger.Warn("leadership check failed", "err", err)
		}
		if was := l.leader.Swap(ok && err == nil); was != (ok && err == nil) {
			l.Logger.Info("leadership changed", "leader", ok, "holder", l.Holder)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// duty is one scheduled duty and when it runs next.
type duty struct {
	name  string
	fn    func(context.Context) error
	sched cron.Schedule
	next  time.Time
}

// runDuties runs the duties on their robfig/cron schedules, read against
// the store's clock (the injected clock in tests and forecasts, so a test
// that moves the clock a minute on sees the minute's duties run): every
// Resolution it looks at the clock and runs, one after another, the duties
// that came due while this replica leads. A duty that came due several
// times meanwhile runs once.
func (l *Leader) runDuties(ctx context.Context, jobs []*duty, outage *db.Outage) {
	res := l.Resolution
	if res <= 0 {
		res = time.Second
	}
	now := l.Store.Now()
	for _, j := range jobs {
		j.next = j.sched.Next(now)
	}
	t := time.NewTicker(res)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := l.Store.Now()
		for _, j := range jobs {
			if now.Before(j.next) {
				continue
			}
			j.next = j.sched.Next(now)
			if !l.IsLeader() {
				continue
			}
			if err := j.fn(ctx); ctx.Err() == nil && outage.Note(err) {
				l.Logger.Error("leader duty failed", "duty", j.name, "err", err)
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

func (l *Leader) forTenants(ctx context.Context, fn func(tenant string) error) error {
	tenants, err := l.Store.TenantKeys(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if err := fn(t); err != nil {
			return err
		}
	}
	return nil
}

func (l *Leader) rescue(ctx context.Context) error {
	return l.forTenants(ctx, func(t string) error {
		n, err := l.Store.RescueStale(ctx, t)
		if n > 0 {
			l.Logger.Warn("rescued stale sends; they will be retried with the same Message-ID", "tenant", t, "count", n)
		}
		return err
	})
}

// health runs the health rules over every adapter (docs/health.md).
func (l *Leader) health(ctx context.Context) error {
	return l.forTenants(ctx, func(t string) error {
		n, err := l.Store.HealthSweep(ctx, t)
		if n > 0 {
			l.Logger.Info("health sweep changed adapters", "tenant", t, "changed", n)
		}
		return err
	})
}

// domains starts the sender-domain sweep (docs/preflight.md) in the
// background unless one still runs: DNS answers can take seconds, and the
// rescue and health duties must not wait for them.
func (l *Leader) domains(ctx context.Context) error {
	if !l.domainsBusy.CompareAndSwap(false, true) {
		return nil
	}
	l.background.Add(1)
	go func() {
		defer l.background.Done()
		defer l.domainsBusy.Store(false)
		ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		err := l.forTenants(ctx, func(t string) error {
			n, err := l.Store.DomainSweep(ctx, t)
			if n > 0 {
				l.Logger.Info("domain sweep checked sender domains", "tenant", t, "checked", n)
			}
			return err
		})
		if err != nil && ctx.Err() == nil {
			l.Logger.Warn("domain sweep failed", "err", err)
		}
	}()
	return nil
}

func (l *Leader) janitor(ctx context.Context) error {
	return l.forTenants(ctx, func(t string) error {
		_, err := l.Store.PruneIdempotencyKeys(ctx, t, 24*time.Hour)
		return err
	})
}

// variants promotes the steps whose auto-winner rule now holds.
func (l *Leader) variants(ctx context.Context) error {
	return l.forTenants(ctx, func(t string) error {
		n, err := l.Store.VariantSweep(ctx, t)
		if n > 0 {
			l.Logger.Info("variant sweep promoted winners", "tenant", t, "promoted", n)
		}
		return err
	})
}

// routes carries out the branches that are due.
func (l *Leader) routes(ctx context.Context) error {
	return l.forTenants(ctx, func(t string) error {
		n, err := l.Store.RouteSweep(ctx, t)
		if n > 0 {
			l.Logger.Info("route sweep enrolled routed contacts", "tenant", t, "enrolled", n)
		}
		return err
	})
}
