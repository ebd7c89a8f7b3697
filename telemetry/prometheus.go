package telemetry

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus is the default metrics recipe: one counter per catalog event
// (dripdrop_<name>_total, labels = the event's low-cardinality Labels), a
// gauge per threshold event, a histogram of send latency, and the outbox
// metrics. It registers on the registry it is given, never the global one.
type Prometheus struct {
	counters map[string]*prometheus.CounterVec
	labels   map[string][]string
	rates    map[string]*prometheus.GaugeVec
	sendDur  *prometheus.HistogramVec

	published, fanout, noMatch *prometheus.CounterVec
	failures, redeliver        *prometheus.CounterVec
	janitor                    *prometheus.CounterVec
	notifyMissed               prometheus.Counter
	lag                        prometheus.Gauge
}

// PromOption configures the recipe.
type PromOption func(*promConfig)

type promConfig struct{ extra []string }

// WithHighCardinalityLabels adds metadata keys such as tenant_key or
// adapter_id as labels. Off by default: with many tenants or adapters the
// series count explodes.
func WithHighCardinalityLabels(keys ...string) PromOption {
	return func(c *promConfig) { c.extra = append(c.extra, keys...) }
}

// MetricName is the Prometheus counter name of an event.
func MetricName(event string) string {
	return strings.ReplaceAll(event, ".", "_") + "_total"
}

// NewPrometheus registers the recipe's metrics on reg.
func NewPrometheus(reg prometheus.Registerer, opts ...PromOption) (*Prometheus, error) {
	var cfg promConfig
	for _, o := range opts {
		o(&cfg)
	}
	p := &Prometheus{counters: map[string]*prometheus.CounterVec{}, labels: map[string][]string{}, rates: map[string]*prometheus.GaugeVec{}}
	var cs []prometheus.Collector
	for _, s := range catalog {
		labels := slices.Clone(s.Labels)
		for _, k := range cfg.extra {
			if slices.Contains(s.Metadata, k) && !slices.Contains(labels, k) {
				labels = append(labels, k)
			}
		}
		p.labels[s.Name] = labels
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricName(s.Name), Help: s.Description}, labels)
		p.counters[s.Name] = c
		cs = append(cs, c)
		if s.Kind == Threshold {
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: strings.ReplaceAll(s.Name, ".", "_") + "_rate", Help: "last observed rate: " + s.Description}, labels)
			p.rates[s.Name] = g
			cs = append(cs, g)
		}
	}
	p.sendDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dripdrop_dispatch_send_duration_seconds", Help: "SMTP conversation latency",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"outcome"})
	p.published = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_outbox_events_published_total", Help: "events written to the telemetry outbox"}, []string{"event_type"})
	p.fanout = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_outbox_events_fanout_total", Help: "deliveries created when fanning out outbox events"}, []string{"event_type"})
	p.noMatch = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_outbox_events_no_match_total", Help: "outbox events no subscription matched"}, []string{"event_type"})
	p.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_outbox_failures_total", Help: "outbox worker failures by stage"}, []string{"stage"})
	p.redeliver = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_outbox_redeliver_requests_total", Help: "customer-driven replays"}, []string{"scope"})
	p.janitor = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dripdrop_janitor_rows_deleted_total", Help: "rows deleted by the janitor"}, []string{"table"})
	p.notifyMissed = prometheus.NewCounter(prometheus.CounterOpts{Name: "dripdrop_notify_missed_total", Help: "work found by the fallback poll that LISTEN/NOTIFY did not announce"})
	p.lag = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dripdrop_outbox_publisher_lag_seconds", Help: "age of the oldest pending outbox event"})
	cs = append(cs, p.sendDur, p.published, p.fanout, p.noMatch, p.failures, p.redeliver, p.janitor, p.notifyMissed, p.lag)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Handler records events; attach it with AttachMany(id, Events(), h).
func (p *Prometheus) Handler() Handler {
	return func(_ context.Context, e Event) {
		c, ok := p.counters[e.Name]
		if !ok {
			return
		}
		labels := p.labels[e.Name]
		values := make([]string, len(labels))
		for i, k := range labels {
			v := format(e.Metadata[k])
			if len(v) > 64 {
				v = v[:64]
			}
			values[i] = v
		}
		c.WithLabelValues(values...).Inc()
		if g, ok := p.rates[e.Name]; ok {
			g.WithLabelValues(values...).Set(e.Measurements["rate"])
		}
		switch e.Name {
		case "dripdrop.dispatch.send.stop":
			p.sendDur.WithLabelValues("ok").Observe(e.Measurements["duration"])
		case "dripdrop.dispatch.send.exception":
			p.sendDur.WithLabelValues("error").Observe(e.Measurements["duration"])
		}
	}
}

// OutboxMetrics is the observability surface of the telemetry outbox and
// its workers. Adding a metric is additive: existing implementations get a
// no-op default.
type OutboxMetrics interface {
	OutboxEventsPublished(eventType string)
	OutboxEventsFanOut(eventType string, matched int)
	OutboxEventsNoMatch(eventType string)
	// OutboxFailures: stage in {"lease", "list_subscriptions", "insert_delivery", "deliver", "update_status"}.
	OutboxFailures(stage string)
	// RedeliverRequests: scope in {"single", "since"}.
	RedeliverRequests(scope string)
	JanitorRowsDeleted(table string, count int)
	// NotifyMissed counts work found by the fallback poll that no
	// notification announced.
	NotifyMissed()
	SetPublisherLag(seconds float64)
}

// OutboxEventsPublished implements OutboxMetrics.
func (p *Prometheus) OutboxEventsPublished(t string) { p.published.WithLabelValues(t).Inc() }

// OutboxEventsFanOut implements OutboxMetrics.
func (p *Prometheus) OutboxEventsFanOut(t string, matched int) {
	p.fanout.WithLabelValues(t).Add(float64(matched))
}

// OutboxEventsNoMatch implements OutboxMetrics.
func (p *Prometheus) OutboxEventsNoMatch(t string) { p.noMatch.WithLabelValues(t).Inc() }

// OutboxFailures implements OutboxMetrics.
func (p *Prometheus) OutboxFailures(stage string) { p.failures.WithLabelValues(stage).Inc() }

// RedeliverRequests implements OutboxMetrics.
func (p *Prometheus) RedeliverRequests(scope string) { p.redeliver.WithLabelValues(scope).Inc() }

// JanitorRowsDeleted implements OutboxMetrics.
func (p *Prometheus) JanitorRowsDeleted(table string, n int) {
	p.janitor.WithLabelValues(table).Add(float64(n))
}

// NotifyMissed implements OutboxMetrics.
func (p *Prometheus) NotifyMissed() { p.notifyMissed.Inc() }

// SetPublisherLag implements OutboxMetrics.
func (p *Prometheus) SetPublisherLag(s float64) { p.lag.Set(s) }

// NoOp swallows every call.
type NoOp struct{}

func (NoOp) OutboxEventsPublished(string)   {}
func (NoOp) OutboxEventsFanOut(string, int) {}
func (NoOp) OutboxEventsNoMatch(string)     {}
func (NoOp) OutboxFailures(string)          {}
func (NoOp) RedeliverRequests(string)       {}
func (NoOp) JanitorRowsDeleted(string, int) {}
func (NoOp) NotifyMissed()                  {}
func (NoOp) SetPublisherLag(float64)        {}

// Log writes one key=value line per metric call (message "metrics").
type Log struct{ L *slog.Logger }

func (l Log) OutboxEventsPublished(t string) {
	l.L.Info("metrics", "metric", "outbox_events_published", "event_type", t)
}
func (l Log) OutboxEventsFanOut(t string, n int) {
	l.L.Info("metrics", "metric", "outbox_events_fanout", "event_type", t, "matched", n)
}
func (l Log) OutboxEventsNoMatch(t string) {
	l.L.Info("metrics", "metric", "outbox_events_no_match", "event_type", t)
}
func (l Log) OutboxFailures(stage string) {
	l.L.Info("metrics", "metric", "outbox_failures", "stage", stage)
}
func (l Log) RedeliverRequests(scope string) {
	l.L.Info("metrics", "metric", "redeliver_requests", "scope", scope)
}
func (l Log) JanitorRowsDeleted(table string, n int) {
	l.L.Info("metrics", "metric", "janitor_rows_deleted", "table", table, "count", n)
}
func (l Log) NotifyMissed()             { l.L.Info("metrics", "metric", "notify_missed") }
func (l Log) SetPublisherLag(s float64) { l.L.Info("metrics", "metric", "publisher_lag", "seconds", s) }

var (
	_ OutboxMetrics = (*Prometheus)(nil)
	_ OutboxMetrics = NoOp{}
	_ OutboxMetrics = Log{}
)
