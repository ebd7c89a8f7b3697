// Package webhook is the fan-out worker of telemetry subscriptions (see
// docs/telemetry.md#subscriptions-webhooks-event-feed-and-stream): it turns outbox events into one delivery per matching subscription
// and delivers them with Standard Webhooks signatures, retrying on the
// Standard Webhooks schedule. Work is leased in PostgreSQL with FOR UPDATE
// SKIP LOCKED, so any number of replicas may run it.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/telemetry"
)

// Schedule is the delay before each attempt (Standard Webhooks): the first
// immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, each with
// ±10 % jitter. A delivery that fails all eight attempts is given up.
var Schedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Timeout is how long a receiver has to answer 2xx.
const Timeout = 15 * time.Second

// Config configures a Worker.
type Config struct {
	Store   *db.Store
	Metrics telemetry.OutboxMetrics // default telemetry.NoOp
	Logger  *slog.Logger
	// AllowPrivate lets deliveries reach loopback and private addresses
	// (DRIPDROP_ALLOW_PRIVATE_TARGETS; tests with local receivers).
	AllowPrivate bool
	// Poll is the fallback poll interval (default 1 s); LISTEN/NOTIFY wakes
	// the worker sooner.
	Poll time.Duration
	// Lease is how long a delivery is held by the worker sending it before
	// another may retry it (default 60 s; must exceed Timeout).
	Lease time.Duration
	// Batch bounds events fanned out and deliveries leased per tenant and
	// tick (default 100); Concurrency bounds parallel requests (default 8).
	Batch, Concurrency int
	// Jitter returns a value in [0, 1) (default math/rand).
	Jitter func() float64
}

// Worker fans out and delivers webhook events.
type Worker struct {
	cfg    Config
	client *http.Client
	wake   chan struct{}
}

// New returns a worker.
func New(cfg Config) *Worker {
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NoOp{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Jitter == nil {
		cfg.Jitter = rand.Float64
	}
	return &Worker{cfg: cfg, client: newClient(cfg.AllowPrivate), wake: make(chan struct{}, 1)}
}

func newClient(allowPrivate bool) *http.Client {
	// The outbound-destination rule is applied again to the resolved
	// address at dial time (docs/security.md#the-operators-network), so DNS rebinding cannot bypass the
	// check made when the subscription was saved.
	dialer := netguard.Guard{AllowPrivate: allowPrivate}.Dialer(net.Dialer{Timeout: 10 * time.Second})
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		},
		// A redirect is an answer, not a success: it is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Sign returns the webhook-signature header value for a message:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), with
// key the base64 after the "whsec_" prefix of secret.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Run works until ctx ends: on every outbox notification and at least
// every Poll.
func (w *Worker) Run(ctx context.Context) {
	listening := make(chan struct{})
	defer func() { <-listening }() // ctx has ended: the listener is returning
	go func() {
		defer close(listening)
		w.cfg.Store.ListenOutbox(ctx, func(string) {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		})
	}()
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	notified := true
	for ctx.Err() == nil {
		st, err := w.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("webhook tick failed", "err", err)
		}
		if !notified && st.FannedOut > 0 {
			w.cfg.Metrics.NotifyMissed()
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
			notified = true
		case <-t.C:
			select { // both ready: the notification counts
			case <-w.wake:
				notified = true
			default:
				notified = false
			}
		}
	}
}

// Stats reports what one tick did.
type Stats struct {
	FannedOut, Delivered, Failed int
}

// Tick fans out pending events and sends due deliveries of every tenant
// once, waiting for the requests it started.
func (w *Worker) Tick(ctx context.Context) (Stats, error) {
	var st Stats
	tenants, err := w.cfg.Store.TenantKeys(ctx)
	if err != nil {
		w.cfg.Metrics.OutboxFailures("lease")
		return st, err
	}
	lag := 0.0
	var errs []error
	for _, t := range tenants {
		// Lag: how long the oldest event has waited for this tick.
		if l, err := w.cfg.Store.PublisherLag(ctx, t); err == nil {
			lag = max(lag, l)
		}
		for {
			res, err := w.cfg.Store.FanOut(ctx, t, w.cfg.Batch)
			if err != nil {
				w.cfg.Metrics.OutboxFailures("insert_delivery")
				errs = append(errs, err)
				break
			}
			for _, r := range res {
				if r.Matched == 0 {
					w.cfg.Metrics.OutboxEventsNoMatch(r.Name)
				} else {
					w.cfg.Metrics.OutboxEventsFanOut(r.Name, r.Matched)
				}
			}
			st.FannedOut += len(res)
			if len(res) < w.cfg.Batch {
				break
			}
		}
		for {
			ds, err := w.cfg.Store.LeaseDeliveries(ctx, t, w.cfg.Batch, w.cfg.Lease)
			if err != nil {
				w.cfg.Metrics.OutboxFailures("lease")
				errs = append(errs, err)
				break
			}
			ok, failed := w.deliverAll(ctx, ds)
			st.Delivered += ok
			st.Failed += failed
			if len(ds) < w.cfg.Batch {
				break
			}
		}
	}
	w.cfg.Metrics.SetPublisherLag(lag)
	return st, errors.Join(errs...)
}

func (w *Worker) deliverAll(ctx context.Context, ds []db.Delivery) (ok, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, w.cfg.Concurrency)
	for _, d := range ds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := w.attempt(ctx, d)
			if err := w.cfg.Store.RecordDelivery(context.WithoutCancel(ctx), d, o); err != nil {
				w.cfg.Metrics.OutboxFailures("update_status")
				w.cfg.Logger.Warn("recording a webhook delivery failed; it will be retried when its lease lapses", "err", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if o.Success {
				ok++
			} else {
				failed++
				w.cfg.Metrics.OutboxFailures("deliver")
			}
		}()
	}
	wg.Wait()
	return ok, failed
}

// attempt sends one delivery and says what to do next.
func (w *Worker) attempt(ctx context.Context, d db.Delivery) db.DeliveryOutcome {
	var o db.DeliveryOutcome
	body, _ := json.Marshal(d.Event)
	id := strconv.FormatInt(d.Event.ID, 10)
	now := w.cfg.Store.Now()
	ts := now.Unix()
	sig, err := Sign(d.Secret, id, ts, body)
	if err != nil {
		o.Err = "bad secret"
		return w.retry(o, d, now)
	}
	rctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		o.Err = err.Error()
		return w.retry(o, d, now)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "dripdrop-webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	resp, err := w.client.Do(req)
	o.Latency = time.Since(start)
	if err != nil {
		o.Err = truncate(err.Error(), 300)
		return w.retry(o, d, now)
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	o.Latency = time.Since(start)
	o.StatusCode = resp.StatusCode
	o.Snippet = strings.ToValidUTF8(string(snippet), "\uFFFD")
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		o.Success = true
		return o
	case resp.StatusCode == http.StatusGone:
		o.Gone = true
		o.Err = "410 Gone: subscription disabled"
		return o
	}
	o.Err = "HTTP " + strconv.Itoa(resp.StatusCode)
	return w.retry(o, d, now)
}

// retry sets when the next attempt is due, or leaves RetryAt zero when the
// schedule is exhausted.
func (w *Worker) retry(o db.DeliveryOutcome, d db.Delivery, now time.Time) db.DeliveryOutcome {
	if d.Attempt >= len(Schedule) {
		return o
	}
	base := Schedule[d.Attempt]
	jitter := time.Duration((w.cfg.Jitter()*2 - 1) * 0.1 * float64(base))
	o.RetryAt = now.Add(base + jitter)
	return o
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Janitor prunes delivery logs, finished deliveries and fanned-out events
// older than retention for every tenant (a leader duty), counting rows in
// metrics by table.
func Janitor(ctx context.Context, store *db.Store, m telemetry.OutboxMetrics, retention time.Duration) error {
	if m == nil {
		m = telemetry.NoOp{}
	}
	tenants, err := store.TenantKeys(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		n, err := store.PruneTelemetry(ctx, t, retention)
		for _, table := range db.JanitorTables {
			if n[table] > 0 {
				m.JanitorRowsDeleted(table, int(n[table]))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
