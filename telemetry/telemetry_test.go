package telemetry

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCatalogMatchesSeed checks, event by event and key by key, that the
// catalog carries every event of the original dripdrop catalog.
func TestCatalogMatchesSeed(t *testing.T) {
	raw, err := os.ReadFile("testdata/seed_catalog.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`\[(:dripdrop(?:, :\w+)+)\] - .*?Metadata: (.*)\.\s*$`)
	seen := 0
	for _, l := range strings.Split(string(raw), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		seen++
		name := strings.NewReplacer(":", "", ", ", ".").Replace(m[1])
		var keys []string
		for _, k := range strings.Split(m[2], ",") {
			keys = append(keys, strings.TrimPrefix(strings.TrimSpace(k), ":"))
		}
		spec, ok := Lookup(name)
		if !ok {
			t.Errorf("seed event %s is missing from the catalog", name)
			continue
		}
		if spec.Extension || !slices.Equal(spec.Metadata, keys) || !slices.Equal(spec.Measurements, []string{"count"}) {
			t.Errorf("%s: metadata %v measurements %v extension %v; seed says %v, [count], false", name, spec.Metadata, spec.Measurements, spec.Extension, keys)
		}
	}
	if seen != 15 {
		t.Fatalf("parsed %d seed events, want 15", seen)
	}
	core := 0
	for _, s := range Catalog() {
		if !s.Extension {
			core++
		}
	}
	if core != 15 {
		t.Fatalf("%d non-extension events, want exactly the 15 of the seed", core)
	}
}

func TestCatalogIsLowCardinalityAndPIIFree(t *testing.T) {
	pii := []string{"email", "first_name", "last_name", "name", "body", "body_text", "body_html", "subject", "address", "from_address"}
	highCard := regexp.MustCompile(`(_id|_ids|tenant_key|defer_until|_count|^cap$|text|token|return_at|scheduled_for|attempt|rate|max_share_pct|min_gap_seconds|health_score|variable|timezone)$`)
	names := map[string]bool{}
	for _, s := range Catalog() {
		if names[s.Name] {
			t.Errorf("%s listed twice", s.Name)
		}
		names[s.Name] = true
		if !strings.HasPrefix(s.Name, "dripdrop.") || len(s.Metadata) == 0 || len(s.Measurements) == 0 || s.Description == "" {
			t.Errorf("%s: incomplete spec", s.Name)
		}
		for _, k := range s.Metadata {
			if slices.Contains(pii, k) {
				t.Errorf("%s carries PII key %s", s.Name, k)
			}
		}
		for _, l := range s.Labels {
			if !slices.Contains(s.Metadata, l) {
				t.Errorf("%s: label %s is not a metadata key", s.Name, l)
			}
			if highCard.MatchString(l) {
				t.Errorf("%s: label %s is high-cardinality", s.Name, l)
			}
		}
	}
}

func meta(name string) map[string]any {
	s, _ := Lookup(name)
	m := map[string]any{}
	for _, k := range s.Metadata {
		m[k] = "v-" + k
	}
	return m
}

func TestBusAttachDetach(t *testing.T) {
	b := NewBus()
	var got []string
	h := func(_ context.Context, e Event) { got = append(got, e.Name) }
	if err := b.Attach("a", "dripdrop.dispatch.sent", h); err != nil {
		t.Fatal(err)
	}
	if err := b.Attach("a", "dripdrop.dispatch.sent", h); err == nil {
		t.Fatal("duplicate id accepted")
	}
	if err := b.Attach("x", "dripdrop.nope", h); err == nil {
		t.Fatal("unknown event accepted")
	}
	if err := b.AttachMany("m", []string{"dripdrop.policy.min_gap", "dripdrop.policy.ramp_cap"}, h); err != nil {
		t.Fatal(err)
	}
	b.Emit(context.Background(), "dripdrop.dispatch.sent", map[string]float64{"count": 1}, nil)
	b.Emit(context.Background(), "dripdrop.policy.min_gap", map[string]float64{"count": 1}, nil)
	b.Emit(context.Background(), "dripdrop.policy.sub_cap", map[string]float64{"count": 1}, nil)
	if strings.Join(got, ",") != "dripdrop.dispatch.sent,dripdrop.policy.min_gap" {
		t.Fatalf("delivered %v", got)
	}
	if !b.Detach("m") || b.Detach("m") {
		t.Fatal("Detach result")
	}
	b.Emit(context.Background(), "dripdrop.policy.min_gap", nil, nil)
	if len(got) != 2 {
		t.Fatal("detached handler still called")
	}
	var nilBus *Bus
	nilBus.Emit(context.Background(), "dripdrop.dispatch.sent", nil, nil) // must not panic
}

func TestPanickingHandlerIsDetachedAndReported(t *testing.T) {
	var reported []string
	b := NewBus(WithErrorReporter(func(id, name string, r any) { reported = append(reported, id+"/"+name+"/"+fmt.Sprint(r)) }))
	calls := 0
	_ = b.Attach("bad", "dripdrop.dispatch.sent", func(context.Context, Event) { panic("boom") })
	_ = b.Attach("good", "dripdrop.dispatch.sent", func(context.Context, Event) { calls++ })
	b.Emit(context.Background(), "dripdrop.dispatch.sent", nil, nil)
	b.Emit(context.Background(), "dripdrop.dispatch.sent", nil, nil)
	if calls != 2 {
		t.Fatalf("good handler called %d times, want 2", calls)
	}
	if len(reported) != 1 || reported[0] != "bad/dripdrop.dispatch.sent/boom" {
		t.Fatalf("reported %v", reported)
	}
}

func TestStrictBusRejectsWrongKeys(t *testing.T) {
	b := NewBus(WithStrict(true))
	b.Emit(context.Background(), "dripdrop.policy.min_gap", nil, meta("dripdrop.policy.min_gap"))
	for name, md := range map[string]map[string]any{
		"missing key": {"adapter_id": "a"},
		"extra key":   func() map[string]any { m := meta("dripdrop.policy.min_gap"); m["email"] = "x"; return m }(),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: strict bus accepted it", name)
				}
			}()
			b.Emit(context.Background(), "dripdrop.policy.min_gap", nil, md)
		}()
	}
}

func TestBusConcurrency(t *testing.T) {
	b := NewBus()
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				b.Emit(context.Background(), "dripdrop.dispatch.sent", nil, nil)
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				id := fmt.Sprint("h", i, "-", j)
				_ = b.Attach(id, "dripdrop.dispatch.sent", func(context.Context, Event) { mu.Lock(); n++; mu.Unlock() })
				b.Detach(id)
			}
		}()
	}
	wg.Wait()
	if len(b.ids) != 0 || len((*b.table.Load())["dripdrop.dispatch.sent"]) != 0 {
		t.Fatal("handlers left attached")
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	h := LogHandler(slog.New(slog.NewTextHandler(&buf, nil)))
	h(context.Background(), Event{Name: "dripdrop.dispatch.sent", Measurements: map[string]float64{"count": 1}, Metadata: meta("dripdrop.dispatch.sent")})
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "event=dripdrop.dispatch.sent") || !strings.Contains(out, "count=1") {
		t.Fatalf("log line %q", out)
	}
	for _, k := range meta("dripdrop.dispatch.sent") {
		if !strings.Contains(out, fmt.Sprint(k)) {
			t.Fatalf("log line lacks %v: %q", k, out)
		}
	}
}

func TestPrometheusRecipe(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := NewPrometheus(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBus()
	if err := b.AttachMany("prom", Events(), p.Handler()); err != nil {
		t.Fatal(err)
	}
	md := meta("dripdrop.dispatch.sent")
	md["channel"], md["adapter_provider"] = "email", "smtp"
	md["tenant_key"] = "acme@example.com" // would leak if it were a label
	b.Emit(context.Background(), "dripdrop.dispatch.sent", map[string]float64{"count": 1}, md)
	b.Emit(context.Background(), "dripdrop.dispatch.sent", map[string]float64{"count": 1}, md)
	c := p.counters["dripdrop.dispatch.sent"].WithLabelValues("email", "smtp")
	if v := testutil.ToFloat64(c); v != 2 {
		t.Fatalf("dripdrop_dispatch_sent_total = %v, want 2", v)
	}
	b.Emit(context.Background(), "dripdrop.dispatch.send.stop", map[string]float64{"duration": 0.02}, meta("dripdrop.dispatch.send.stop"))
	b.Emit(context.Background(), "dripdrop.health.bounce_threshold", map[string]float64{"rate": 0.025}, meta("dripdrop.health.bounce_threshold"))
	p.NotifyMissed()
	p.SetPublisherLag(3)
	p.OutboxFailures("lease")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "@") || l.GetName() == "tenant_key" || l.GetName() == "adapter_id" {
					t.Errorf("%s has a high-cardinality/PII label %s=%s", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, want := range []string{"dripdrop_dispatch_sent_total", "dripdrop_dispatch_send_duration_seconds", "dripdrop_health_bounce_threshold_rate",
		"dripdrop_notify_missed_total", "dripdrop_outbox_publisher_lag_seconds", "dripdrop_outbox_failures_total"} {
		if !found[want] {
			t.Errorf("metric %s not exported", want)
		}
	}
	// Opt-in high-cardinality labels.
	reg2 := prometheus.NewRegistry()
	p2, err := NewPrometheus(reg2, WithHighCardinalityLabels("tenant_key"))
	if err != nil {
		t.Fatal(err)
	}
	p2.Handler()(context.Background(), Event{Name: "dripdrop.dispatch.sent", Metadata: md})
	if v := testutil.ToFloat64(p2.counters["dripdrop.dispatch.sent"].WithLabelValues("email", "smtp", "acme@example.com")); v != 1 {
		t.Fatalf("opt-in tenant label: %v", v)
	}
}

var update = flag.Bool("update", false, "rewrite docs/telemetry.md's generated table")

// TestDocsTable: docs/telemetry.md carries the catalog table generated from
// the code (go test ./telemetry -run Docs -update rewrites it).
func TestDocsTable(t *testing.T) {
	const path = "../docs/telemetry.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- catalog:begin -->\n", "<!-- catalog:end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatal("docs/telemetry.md lacks the catalog markers")
	}
	want := CatalogMarkdown()
	if got := string(doc[i+len(begin) : j]); got != want {
		if *update {
			out := append(append(append([]byte{}, doc[:i+len(begin)]...), want...), doc[j:]...)
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("docs/telemetry.md's catalog table is stale: run go test ./telemetry -run Docs -update")
	}
}

func BenchmarkEmitNoHandlers(b *testing.B) {
	bus := NewBus()
	md := meta("dripdrop.dispatch.sent")
	for b.Loop() {
		bus.Emit(context.Background(), "dripdrop.dispatch.sent", map[string]float64{"count": 1}, md)
	}
}

func BenchmarkEmitOneHandler(b *testing.B) {
	bus := NewBus()
	n := 0
	_ = bus.Attach("h", "dripdrop.dispatch.sent", func(context.Context, Event) { n++ })
	md := meta("dripdrop.dispatch.sent")
	for b.Loop() {
		bus.Emit(context.Background(), "dripdrop.dispatch.sent", map[string]float64{"count": 1}, md)
	}
}
