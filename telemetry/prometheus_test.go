package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

func newProm(t *testing.T, opts ...PromOption) (*prometheus.Registry, *Prometheus, *Bus) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := NewPrometheus(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBus(WithStrict(true))
	must(t, b.AttachMany("prometheus", Events(), p.Handler()))
	return reg, p, b
}

func sentMeta() map[string]any {
	md := fullMeta(sent)
	md["channel"], md["adapter_provider"], md["tenant_key"] = "email", "smtp", "acme@example.com"
	return md
}

func TestPrometheusCountsSent(t *testing.T) {
	t.Parallel()
	reg, _, b := newProm(t)
	for range 2 {
		b.Emit(context.Background(), sent, map[string]float64{"count": 1}, sentMeta())
	}
	spec, _ := Lookup(sent)
	want := fmt.Sprintf(`# HELP dripdrop_dispatch_sent_total Events %s: %s.
# TYPE dripdrop_dispatch_sent_total counter
dripdrop_dispatch_sent_total{adapter_provider="",channel=""} 0
dripdrop_dispatch_sent_total{adapter_provider="smtp",channel="email"} 2
`, sent, spec.Description)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "dripdrop_dispatch_sent_total"); err != nil {
		t.Fatal(err)
	}
}

// gatherAll emits every catalog event once (send.stop 20 ms, send.exception
// 2 s, thresholds rate 0.05) on a recipe and calls every outbox method.
func gatherAll(t *testing.T, opts ...PromOption) prometheus.Gatherer {
	t.Helper()
	reg, p, b := newProm(t, opts...)
	for _, name := range Events() {
		m := measurementsOf(name)
		switch name {
		case "dripdrop.dispatch.send.stop":
			m["duration"] = 0.02
		case "dripdrop.dispatch.send.exception":
			m["duration"] = 2
		}
		if _, ok := m["rate"]; ok {
			m["rate"] = 0.05
		}
		md := fullMeta(name)
		// Values that must never become label values.
		for k, v := range map[string]string{"tenant_key": "acme@example.com", "reason": "550 5.1.1 <bob@example.com>: unknown user"} {
			if _, ok := md[k]; ok {
				md[k] = v
			}
		}
		b.Emit(context.Background(), name, m, md)
	}
	p.OutboxEventsPublished(sent)
	p.OutboxEventsFanOut(sent, 2)
	p.OutboxEventsNoMatch(sent)
	p.OutboxFailures("lease")
	p.RedeliverRequests("single")
	p.JanitorRowsDeleted("telemetry_events", 5)
	p.NotifyMissed()
	p.SetPublisherLag(3)
	return reg
}

// family returns the named family of mfs, or nil.
func family[F interface{ GetName() string }](mfs []F, name string) F {
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	var zero F
	return zero
}

func TestPrometheusCoversEveryEvent(t *testing.T) {
	t.Parallel()
	mfs, err := gatherAll(t).Gather()
	must(t, err)
	for _, s := range Catalog() {
		mf := family(mfs, MetricName(s.Name))
		series := withoutZeroSeries(mf)
		if len(series) != 1 || series[0].GetCounter().GetValue() != 1 {
			t.Errorf("%s: counter %s = %v, want one series at 1", s.Name, MetricName(s.Name), mf)
			continue
		}
		var labels []string
		for _, l := range series[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		if want := slices.Sorted(slices.Values(s.Labels)); !slices.Equal(labels, want) {
			t.Errorf("%s: labels %v, want %v", s.Name, labels, want)
		}
		if s.Kind == Threshold {
			g := family(mfs, RateMetricName(s.Name))
			if g == nil || g.GetMetric()[0].GetGauge().GetValue() != 0.05 {
				t.Errorf("%s: gauge %s = %v, want 0.05", s.Name, RateMetricName(s.Name), g)
			}
		}
	}
}

func TestPrometheusLabelsAreLowCardinality(t *testing.T) {
	t.Parallel()
	allowed := append(slices.Clone(lowCardinality), "outcome", "event_type", "stage", "scope", "table", "phase")
	mfs, err := gatherAll(t).Gather()
	must(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "@") || !slices.Contains(allowed, l.GetName()) {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestPrometheusSendDuration(t *testing.T) {
	t.Parallel()
	mfs, err := gatherAll(t).Gather()
	must(t, err)
	hist := family(mfs, "dripdrop_dispatch_send_duration_seconds")
	if hist == nil || len(hist.GetMetric()) != 2 {
		t.Fatalf("histogram %v, want two outcomes", hist)
	}
	want := map[string]struct {
		sum     float64
		under1s uint64
	}{"ok": {0.02, 1}, "error": {2, 0}}
	for _, m := range hist.GetMetric() {
		outcome := m.GetLabel()[0].GetValue()
		h, w := m.GetHistogram(), want[outcome]
		if h.GetSampleCount() != 1 || h.GetSampleSum() != w.sum {
			t.Errorf("%s: count %d sum %v, want 1 and %v", outcome, h.GetSampleCount(), h.GetSampleSum(), w.sum)
		}
		for _, bk := range h.GetBucket() {
			if bk.GetUpperBound() == 1 && bk.GetCumulativeCount() != w.under1s {
				t.Errorf("%s: %d observations ≤ 1 s, want %d", outcome, bk.GetCumulativeCount(), w.under1s)
			}
		}
	}
	if SendDurationBuckets[0] != 0.001 || SendDurationBuckets[len(SendDurationBuckets)-1] != 60 ||
		!slices.IsSorted(SendDurationBuckets) {
		t.Fatalf("buckets %v, want 1 ms … 60 s ascending", SendDurationBuckets)
	}
}

func TestPrometheusHighCardinalityOptIn(t *testing.T) {
	t.Parallel()
	_, p, b := newProm(t, WithHighCardinalityLabels("tenant_key", "adapter_id"))
	md := sentMeta()
	md["tenant_key"] = "acme"
	b.Emit(context.Background(), sent, map[string]float64{"count": 1}, md)
	// dispatch.sent has tenant_key but no adapter_id.
	if got := p.events[sent].labels; !slices.Equal(got, []string{"channel", "adapter_provider", "tenant_key"}) {
		t.Fatalf("labels %v", got)
	}
	if v := testutil.ToFloat64(p.events[sent].counter.WithLabelValues("email", "smtp", "acme")); v != 1 {
		t.Fatalf("tenant series = %v, want 1", v)
	}
	if got := p.events["dripdrop.policy.min_gap"].labels; !slices.Equal(got, []string{"tenant_key", "adapter_id"}) {
		t.Fatalf("min_gap labels %v", got)
	}
	if _, err := NewPrometheus(prometheus.NewRegistry(), WithHighCardinalityLabels("email")); err == nil {
		t.Fatal("a key no event carries was accepted")
	}
}

// failingRegisterer fails the registration after the first ok ones and
// counts the collectors that stay registered.
type failingRegisterer struct {
	prometheus.Registerer
	ok, live int
}

func (f *failingRegisterer) Register(c prometheus.Collector) error {
	if f.ok == 0 {
		return fmt.Errorf("refused")
	}
	f.ok--
	err := f.Registerer.Register(c)
	if err == nil {
		f.live++
	}
	return err
}

func (f *failingRegisterer) Unregister(c prometheus.Collector) bool {
	ok := f.Registerer.Unregister(c)
	if ok {
		f.live--
	}
	return ok
}

func TestNewPrometheusRollsBackOnError(t *testing.T) {
	t.Parallel()
	reg := &failingRegisterer{Registerer: prometheus.NewRegistry(), ok: 20}
	if _, err := NewPrometheus(reg); err == nil {
		t.Fatal("failed registration not reported")
	}
	if reg.live != 0 {
		t.Fatalf("%d collectors stayed registered", reg.live)
	}
	shared := prometheus.NewRegistry()
	if _, err := NewPrometheus(shared); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPrometheus(shared); err == nil {
		t.Fatal("second recipe on one registry accepted")
	}
}

func TestLabelValue(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 70)
	multi := strings.Repeat("a", 63) + "é" // é straddles byte 64
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"email", "email"},
		{true, "true"},
		{550, "550"},
		{long, long[:64]},
		{multi, strings.Repeat("a", 63)},
		{"bob@example.com", redacted},
		{"a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		got := labelValue(tt.in)
		if got != tt.want || len(got) > maxLabelBytes || !utf8.ValidString(got) {
			t.Errorf("labelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrometheusOutboxMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p, err := NewPrometheus(reg)
	if err != nil {
		t.Fatal(err)
	}
	var m OutboxMetrics = p
	tests := []struct {
		desc   string
		call   func()
		metric prometheus.Collector
		want   float64
	}{
		{"published", func() { m.OutboxEventsPublished(sent); m.OutboxEventsPublished(sent) }, p.published.WithLabelValues(sent), 2},
		{"fan-out adds matched", func() { m.OutboxEventsFanOut(sent, 3); m.OutboxEventsFanOut(sent, -1) }, p.fanout.WithLabelValues(sent), 3},
		{"no match", func() { m.OutboxEventsNoMatch(sent) }, p.noMatch.WithLabelValues(sent), 1},
		{"failures", func() { m.OutboxFailures("lease") }, p.failures.WithLabelValues("lease"), 1},
		{"redeliver", func() { m.RedeliverRequests("since") }, p.redeliver.WithLabelValues("since"), 1},
		{"janitor adds count", func() { m.JanitorRowsDeleted("telemetry_events", 7) }, p.janitor.WithLabelValues("telemetry_events"), 7},
		{"notify missed", func() { m.NotifyMissed(); m.NotifyMissed() }, p.notifyMissed, 2},
		{"lag is a gauge", func() { m.SetPublisherLag(12); m.SetPublisherLag(4.5) }, p.lag, 4.5},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			tt.call()
			if got := testutil.ToFloat64(tt.metric); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	names := []string{"dripdrop_outbox_events_published_total", "dripdrop_outbox_events_fanout_total",
		"dripdrop_outbox_events_no_match_total", "dripdrop_outbox_failures_total", "dripdrop_outbox_redeliver_requests_total",
		"dripdrop_janitor_rows_deleted_total", "dripdrop_notify_missed_total", "dripdrop_outbox_publisher_lag_seconds"}
	// 8 series written above, plus the 6 labelled counters' zero series.
	if n, err := testutil.GatherAndCount(reg, names...); err != nil || n != 14 {
		t.Fatalf("%d outbox series (%v), want 14", n, err)
	}
}

// withoutZeroSeries drops the all-empty-labels series every labelled
// counter starts with.
func withoutZeroSeries(mf *dto.MetricFamily) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range mf.GetMetric() {
		empty := len(m.GetLabel()) > 0
		for _, l := range m.GetLabel() {
			empty = empty && l.GetValue() == ""
		}
		if !empty {
			out = append(out, m)
		}
	}
	return out
}

// TestCountersExistAtZero: before any event, every catalog counter and the
// outbox counters are exported at 0, so alerts and rate() see them.
func TestCountersExistAtZero(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	if _, err := NewPrometheus(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	must(t, err)
	names := []string{"dripdrop_outbox_events_published_total", "dripdrop_outbox_failures_total", "dripdrop_notify_missed_total",
		"dripdrop_dispatch_send_duration_seconds", "dripdrop_dispatch_db_duration_seconds"}
	for _, s := range Catalog() {
		names = append(names, MetricName(s.Name))
	}
	for _, n := range names {
		mf := family(mfs, n)
		if mf == nil || len(mf.GetMetric()) == 0 {
			t.Errorf("%s is not exported before its first event", n)
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetCounter().GetValue() != 0 || m.GetHistogram().GetSampleCount() != 0 {
				t.Errorf("%s starts at %v", n, m)
			}
		}
	}
}

func TestLogOutboxMetrics(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var m OutboxMetrics = NewLog(slog.New(slog.NewTextHandler(&buf, nil)))
	m.OutboxEventsPublished(sent)
	m.OutboxEventsFanOut(sent, 3)
	m.OutboxEventsNoMatch(sent)
	m.OutboxFailures("lease")
	m.RedeliverRequests("single")
	m.JanitorRowsDeleted("telemetry_events", 7)
	m.NotifyMissed()
	m.SetPublisherLag(1.5)
	m.DispatchPhase("record", 0.25)
	want := []string{
		"metric=outbox_events_published event_type=" + sent,
		"metric=outbox_events_fanout event_type=" + sent + " matched=3",
		"metric=outbox_events_no_match event_type=" + sent,
		"metric=outbox_failures stage=lease",
		"metric=redeliver_requests scope=single",
		"metric=janitor_rows_deleted table=telemetry_events count=7",
		"metric=notify_missed",
		"metric=publisher_lag seconds=1.5",
		"metric=dispatch_phase phase=record seconds=0.25",
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d: %q", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], "level=INFO msg=metrics "+w) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
	var zero Log // the zero Log writes to slog.Default instead of panicking
	zero.NotifyMissed()
	NoOp{}.JanitorRowsDeleted("x", 1)
}

// DispatchPhase observes the phase's histogram; every phase is exported
// (at zero) from the start.
func TestPrometheusDispatchPhase(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	p, err := NewPrometheus(reg)
	if err != nil {
		t.Fatal(err)
	}
	p.DispatchPhase("record", 0.004)
	p.DispatchPhase("record", 28)
	p.DispatchPhase("claim", 0.002)
	mfs, err := reg.Gather()
	must(t, err)
	mf := family(mfs, "dripdrop_dispatch_db_duration_seconds")
	if mf == nil {
		t.Fatal("dripdrop_dispatch_db_duration_seconds is not exported")
	}
	got := map[string]*dto.Histogram{}
	for _, m := range mf.GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetHistogram()
	}
	if len(got) != len(DispatchPhases) {
		t.Fatalf("phases %v, want %v", got, DispatchPhases)
	}
	if h := got["record"]; h.GetSampleCount() != 2 || h.GetSampleSum() != 28.004 {
		t.Errorf("record: %d observations summing to %v, want 2 and 28.004", h.GetSampleCount(), h.GetSampleSum())
	}
	if h := got["claim"]; h.GetSampleCount() != 1 {
		t.Errorf("claim: %d observations, want 1", h.GetSampleCount())
	}
	if h := got["reserve"]; h.GetSampleCount() != 0 {
		t.Errorf("reserve: %d observations, want 0", h.GetSampleCount())
	}
}
