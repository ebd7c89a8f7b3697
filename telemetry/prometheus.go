package telemetry

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values are stringified with the log formatting, made valid UTF-8,
// cut to maxLabelBytes on a rune boundary, and replaced by redacted when
// they look like an e-mail address (contain "@").
const (
	maxLabelBytes = 64
	redacted      = "redacted"
)

// SendDurationBuckets are the buckets, in seconds, of
// dripdrop_dispatch_send_duration_seconds: 1 ms to 60 s.
var SendDurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Prometheus is the default metrics recipe. For every catalog event it
// keeps a counter dripdrop_<area>_<event>_total (see MetricName) labelled
// by the event's Spec.Labels; threshold events also set a gauge
// dripdrop_health_<event>_ratio to the last observed rate; send spans
// observe dripdrop_dispatch_send_duration_seconds{outcome="ok"|"error"}.
// It also implements OutboxMetrics. Its metrics live on the registerer
// given to NewPrometheus, never on the global one. Safe for concurrent use.
type Prometheus struct {
	events   map[string]*promEvent // read-only after NewPrometheus
	sendDur  *prometheus.HistogramVec
	phaseDur *prometheus.HistogramVec

	published, fanout, noMatch *prometheus.CounterVec
	failures, redeliver        *prometheus.CounterVec
	janitor                    *prometheus.CounterVec
	notifyMissed               prometheus.Counter
	lag                        prometheus.Gauge
}

type promEvent struct {
	labels  []string
	counter *prometheus.CounterVec
	rate    *prometheus.GaugeVec // threshold events only
}

// PromOption configures NewPrometheus.
type PromOption func(*promConfig)

type promConfig struct{ extra []string }

// WithHighCardinalityLabels adds metadata keys such as "tenant_key" or
// "adapter_id" as labels of every event that carries them. Off by default:
// with many tenants or adapters the number of series explodes. Every key
// must be a metadata key of some catalog event.
func WithHighCardinalityLabels(keys ...string) PromOption {
	return func(c *promConfig) { c.extra = append(c.extra, keys...) }
}

// MetricName is the name of an event's counter: the dotted name with dots
// as underscores and a _total suffix ("dripdrop.dispatch.sent" →
// "dripdrop_dispatch_sent_total").
func MetricName(event string) string { return metricBase(event) + "_total" }

// RateMetricName is the name of a threshold event's gauge: a ratio (0..1),
// so it ends in _ratio ("dripdrop.health.bounce_threshold" →
// "dripdrop_health_bounce_threshold_ratio").
func RateMetricName(event string) string { return metricBase(event) + "_ratio" }

func metricBase(event string) string { return strings.ReplaceAll(event, ".", "_") }

// NewPrometheus creates the recipe's metrics and registers them on reg. On
// error nothing stays registered.
func NewPrometheus(reg prometheus.Registerer, opts ...PromOption) (*Prometheus, error) {
	var cfg promConfig
	for _, o := range opts {
		o(&cfg)
	}
	for _, k := range cfg.extra {
		if !slices.ContainsFunc(catalog, func(s Spec) bool { return slices.Contains(s.Metadata, k) }) {
			return nil, fmt.Errorf("telemetry: high-cardinality label %q is no event's metadata key", k)
		}
	}
	p := &Prometheus{events: make(map[string]*promEvent, len(catalog))}
	var cs []prometheus.Collector
	for _, s := range catalog {
		labels := slices.Clone(s.Labels)
		for _, k := range cfg.extra {
			if slices.Contains(s.Metadata, k) && !slices.Contains(labels, k) {
				labels = append(labels, k)
			}
		}
		pe := &promEvent{labels: labels, counter: prometheus.NewCounterVec(
			prometheus.CounterOpts{Name: MetricName(s.Name), Help: "Events " + s.Name + ": " + s.Description + "."}, labels)}
		cs = append(cs, pe.counter)
		if s.Kind == Threshold {
			pe.rate = prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: RateMetricName(s.Name), Help: "Last rate reported by " + s.Name + ": " + s.Description + "."}, labels)
			cs = append(cs, pe.rate)
		}
		p.events[s.Name] = pe
	}
	p.sendDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dripdrop_dispatch_send_duration_seconds", Help: "SMTP conversation latency in seconds by outcome (ok, error).",
		Buckets: slices.Clone(SendDurationBuckets),
	}, []string{"outcome"})
	p.phaseDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "dripdrop_dispatch_db_duration_seconds",
		Help:    "Duration in seconds of the dispatcher's database steps by phase (claim, reserve, record, record_wait).",
		Buckets: slices.Clone(SendDurationBuckets),
	}, []string{"phase"})
	counter := func(name, help string, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	}
	p.published = counter("dripdrop_outbox_events_published_total", "Events written to the telemetry outbox.", "event_type")
	p.fanout = counter("dripdrop_outbox_events_fanout_total", "Subscription deliveries created by outbox fan-out.", "event_type")
	p.noMatch = counter("dripdrop_outbox_events_no_match_total", "Outbox events no subscription matched.", "event_type")
	p.failures = counter("dripdrop_outbox_failures_total", "Outbox worker failures by stage.", "stage")
	p.redeliver = counter("dripdrop_outbox_redeliver_requests_total", "Customer-driven replays by scope (single, since).", "scope")
	p.janitor = counter("dripdrop_janitor_rows_deleted_total", "Rows deleted by the janitor by table.", "table")
	p.notifyMissed = prometheus.NewCounter(prometheus.CounterOpts{Name: "dripdrop_notify_missed_total",
		Help: "Work found by the fallback poll that LISTEN/NOTIFY did not announce."})
	p.lag = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dripdrop_outbox_publisher_lag_seconds",
		Help: "Age in seconds of the oldest pending outbox event."})
	cs = append(cs, p.sendDur, p.phaseDur, p.published, p.fanout, p.noMatch, p.failures, p.redeliver, p.janitor, p.notifyMissed, p.lag)
	// Every counter exists at zero before its first event, so dashboards
	// and alerts see the family (and rate() a start) from the first scrape:
	// counters with labels get one series whose labels are all empty.
	// Threshold gauges likewise start at 0.
	for _, pe := range p.events {
		pe.counter.WithLabelValues(make([]string, len(pe.labels))...)
		if pe.rate != nil {
			pe.rate.WithLabelValues(make([]string, len(pe.labels))...)
		}
	}
	for _, o := range []string{"ok", "error"} {
		p.sendDur.WithLabelValues(o)
	}
	for _, ph := range DispatchPhases {
		p.phaseDur.WithLabelValues(ph)
	}
	for _, c := range []*prometheus.CounterVec{p.published, p.fanout, p.noMatch, p.failures, p.redeliver, p.janitor} {
		c.WithLabelValues("")
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, err
		}
	}
	return p, nil
}

// Handler returns the handler that records events; attach it to every
// event with bus.AttachMany(id, Events(), p.Handler()). Missing metadata
// gives an empty label value; events outside the catalog are ignored.
func (p *Prometheus) Handler() Handler {
	return func(_ context.Context, e Event) {
		pe, ok := p.events[e.Name]
		if !ok {
			return
		}
		values := make([]string, len(pe.labels))
		for i, k := range pe.labels {
			values[i] = labelValue(e.Metadata[k])
		}
		pe.counter.WithLabelValues(values...).Inc()
		if pe.rate != nil {
			if r, ok := e.Measurements["rate"]; ok {
				pe.rate.WithLabelValues(values...).Set(r)
			}
		}
		switch e.Name {
		case "dripdrop.dispatch.send.stop":
			p.sendDur.WithLabelValues("ok").Observe(e.Measurements["duration"])
		case "dripdrop.dispatch.send.exception":
			p.sendDur.WithLabelValues("error").Observe(e.Measurements["duration"])
		}
	}
}

// labelValue stringifies a metadata value for use as a label value.
func labelValue(v any) string {
	s := strings.ToValidUTF8(format(v), "\uFFFD")
	if strings.IndexByte(s, '@') >= 0 {
		return redacted
	}
	if len(s) <= maxLabelBytes {
		return s
	}
	n := maxLabelBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// OutboxEventsPublished increments dripdrop_outbox_events_published_total.
func (p *Prometheus) OutboxEventsPublished(eventType string) {
	p.published.WithLabelValues(labelValue(eventType)).Inc()
}

// OutboxEventsFanOut adds matched (negative counts as 0) to dripdrop_outbox_events_fanout_total.
func (p *Prometheus) OutboxEventsFanOut(eventType string, matched int) {
	p.fanout.WithLabelValues(labelValue(eventType)).Add(float64(max(matched, 0)))
}

// OutboxEventsNoMatch increments dripdrop_outbox_events_no_match_total.
func (p *Prometheus) OutboxEventsNoMatch(eventType string) {
	p.noMatch.WithLabelValues(labelValue(eventType)).Inc()
}

// OutboxFailures increments dripdrop_outbox_failures_total.
func (p *Prometheus) OutboxFailures(stage string) {
	p.failures.WithLabelValues(labelValue(stage)).Inc()
}

// RedeliverRequests increments dripdrop_outbox_redeliver_requests_total.
func (p *Prometheus) RedeliverRequests(scope string) {
	p.redeliver.WithLabelValues(labelValue(scope)).Inc()
}

// JanitorRowsDeleted adds count (negative counts as 0) to dripdrop_janitor_rows_deleted_total.
func (p *Prometheus) JanitorRowsDeleted(table string, count int) {
	p.janitor.WithLabelValues(labelValue(table)).Add(float64(max(count, 0)))
}

// NotifyMissed increments dripdrop_notify_missed_total.
func (p *Prometheus) NotifyMissed() { p.notifyMissed.Inc() }

// SetPublisherLag sets dripdrop_outbox_publisher_lag_seconds.
func (p *Prometheus) SetPublisherLag(seconds float64) { p.lag.Set(seconds) }

// DispatchPhase observes dripdrop_dispatch_db_duration_seconds{phase}.
func (p *Prometheus) DispatchPhase(phase string, seconds float64) {
	p.phaseDur.WithLabelValues(phase).Observe(seconds)
}
