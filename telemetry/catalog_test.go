package telemetry

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// seedEvent is one event of the original catalog (testdata/seed_catalog.txt,
// a verbatim copy of the seed).
type seedEvent struct {
	name string
	keys []string
}

func parseSeed(t *testing.T) []seedEvent {
	t.Helper()
	raw, err := os.ReadFile("testdata/seed_catalog.txt")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^\s*•\s*\[(:dripdrop(?:, :\w+)+)\] - .*?Metadata: (:\w+(?:, :\w+)*)\.\s*$`)
	var out []seedEvent
	bullets := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.Contains(l, "• [:dripdrop") {
			bullets++
		}
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ev := seedEvent{name: strings.NewReplacer(":", "", ", ", ".").Replace(m[1])}
		for _, k := range strings.Split(m[2], ", ") {
			ev.keys = append(ev.keys, strings.TrimPrefix(k, ":"))
		}
		out = append(out, ev)
	}
	if bullets != len(out) {
		t.Fatalf("parsed %d of the %d seed event lines", len(out), bullets)
	}
	return out
}

func TestCatalogMatchesSeed(t *testing.T) {
	t.Parallel()
	seed := parseSeed(t)
	if len(seed) != 15 {
		t.Fatalf("parsed %d seed events, want 15", len(seed))
	}
	for _, ev := range seed {
		t.Run(ev.name, func(t *testing.T) {
			spec, ok := Lookup(ev.name)
			if !ok {
				t.Fatal("missing from the catalog")
			}
			if spec.Extension {
				t.Error("seed event marked as an extension")
			}
			if spec.Kind != Counter || !slices.Equal(spec.Measurements, []string{"count"}) {
				t.Errorf("kind %s measurements %v, want counter [count]", spec.Kind, spec.Measurements)
			}
			if len(spec.Metadata) != len(ev.keys)+len(spec.ExtraKeys) || !slices.Equal(spec.Metadata[len(ev.keys):], spec.ExtraKeys) {
				t.Fatalf("metadata %v, seed says %v (extra keys %v, at the end)", spec.Metadata, ev.keys, spec.ExtraKeys)
			}
			for i, k := range ev.keys {
				if spec.Metadata[i] != k {
					t.Errorf("metadata key %d is %q, seed says %q", i, spec.Metadata[i], k)
				}
			}
		})
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

func TestExtensions(t *testing.T) {
	t.Parallel()
	sendMeta := []string{"step_execution_id", "enrollment_id", "adapter_id", "adapter_provider", "tenant_key"}
	enrollMeta := []string{"enrollment_id", "tenant_key", "reason"}
	tests := []struct {
		name         string
		kind         Kind
		measurements []string
		metadata     []string
	}{
		{"dripdrop.policy.suppressed", Counter, count, []string{"step_execution_id", "enrollment_id", "tenant_key", "scope"}},
		{"dripdrop.policy.quiet_hours", Counter, count, []string{"step_execution_id", "tenant_key", "timezone", "defer_until"}},
		{"dripdrop.template.missing_variable", Counter, count, []string{"step_execution_id", "tenant_key", "variable", "field"}},
		{"dripdrop.dispatch.failed", Counter, count, []string{"step_execution_id", "enrollment_id", "adapter_id", "tenant_key", "reason", "smtp_code", "permanent"}},
		{"dripdrop.dispatch.retry", Counter, count, []string{"step_execution_id", "adapter_id", "tenant_key", "attempt", "defer_until", "reason"}},
		{"dripdrop.dispatch.adapter_error", Counter, count, []string{"adapter_id", "tenant_key", "reason", "consecutive"}},
		{"dripdrop.dispatch.deferred", Counter, count, []string{"step_execution_id", "adapter_id", "tenant_key", "reason", "defer_until"}},
		{"dripdrop.dispatch.send.start", Span, []string{"system_time"}, sendMeta},
		{"dripdrop.dispatch.send.stop", Span, []string{"duration"}, sendMeta},
		{"dripdrop.dispatch.send.exception", Span, []string{"duration"}, append(slices.Clone(sendMeta), "kind", "reason")},
		{"dripdrop.ingest.unmatched_event", Counter, count, []string{"provider", "provider_message_id", "provider_event_id", "tenant_key"}},
		{"dripdrop.ingest.duplicate_event", Counter, count, []string{"provider", "provider_message_id", "tenant_key"}},
		{"dripdrop.health.bounce_threshold", Threshold, []string{"rate"}, []string{"adapter_id", "tenant_key", "sent_count", "bounce_count"}},
		{"dripdrop.health.complaint_threshold", Threshold, []string{"rate"}, []string{"adapter_id", "tenant_key", "sent_count", "complaint_count"}},
		{"dripdrop.enrollment.paused", Counter, count, enrollMeta},
		{"dripdrop.enrollment.resumed", Counter, count, enrollMeta},
		{"dripdrop.enrollment.cancelled", Counter, count, enrollMeta},
		{"dripdrop.enrollment.completed", Counter, count, enrollMeta},
		{"dripdrop.enrollment.stopped", Counter, count, enrollMeta},
		{"dripdrop.sequence.variant_promoted", Counter, count, []string{"sequence_id", "sequence_version_id", "step_id", "step_key", "variant", "metric", "sent", "successes", "tenant_key"}},
		{"dripdrop.ingest.reply_categorized", Counter, count, []string{"inbound_id", "enrollment_id", "step_execution_id", "category", "previous_category", "source", "tenant_key"}},
		{"dripdrop.enrollment.routed", Counter, count, []string{"enrollment_id", "new_enrollment_id", "sequence_id", "trigger", "category", "tenant_key"}},
		{"dripdrop.telemetry.subscription_disabled", Counter, count, []string{"subscription_id", "tenant_key", "reason"}},
		{"dripdrop.mailbox.sync_failed", Counter, count, []string{"adapter_id", "tenant_key", "reason", "state", "retry_at"}},
		{"dripdrop.mailbox.sync_recovered", Counter, count, []string{"adapter_id", "tenant_key", "failures"}},
		{"dripdrop.adapter.reconnect_required", Counter, count, []string{"adapter_id", "tenant_key", "provider", "reason"}},
	}
	ext := 0
	for _, s := range Catalog() {
		if s.Extension {
			ext++
		}
	}
	if ext != len(tests) {
		t.Errorf("%d extensions in the catalog, want %d", ext, len(tests))
	}
	for _, tt := range tests {
		s, ok := Lookup(tt.name)
		switch {
		case !ok:
			t.Errorf("%s missing", tt.name)
		case !s.Extension || s.Kind != tt.kind || !slices.Equal(s.Measurements, tt.measurements) || !slices.Equal(s.Metadata, tt.metadata):
			t.Errorf("%s: extension=%v kind=%s measurements=%v metadata=%v; want extension, %s %v %v",
				tt.name, s.Extension, s.Kind, s.Measurements, s.Metadata, tt.kind, tt.measurements, tt.metadata)
		}
	}
}

// lowCardinality are the only metadata keys allowed as default labels.
var lowCardinality = []string{"channel", "adapter_provider", "reason", "from", "to", "source", "health_state",
	"intent", "provider", "scope", "permanent", "kind", "field", "category", "metric", "trigger"}

func TestCatalogLabelsAndPII(t *testing.T) {
	t.Parallel()
	pii := []string{"email", "first_name", "last_name", "name", "body", "body_text", "body_html", "subject",
		"address", "to", "from_address"}
	highCard := regexp.MustCompile(`(^tenant_key$|_ids?$|_count$|^cap$|defer_until|text|token|return_at|scheduled_for|attempt|_pct$|_seconds$|score|variable|timezone|smtp_code)`)
	for _, s := range Catalog() {
		t.Run(s.Name, func(t *testing.T) {
			if !strings.HasPrefix(s.Name, "dripdrop.") || s.Description == "" || len(s.Metadata) == 0 {
				t.Errorf("incomplete spec %+v", s)
			}
			want := map[Kind][]string{Counter: {"count"}, Threshold: {"rate"}}[s.Kind]
			if s.Kind == Span {
				want = []string{"duration"}
				if strings.HasSuffix(s.Name, ".start") {
					want = []string{"system_time"}
				}
			}
			if !slices.Equal(s.Measurements, want) {
				t.Errorf("kind %q measurements %v, want %v", s.Kind, s.Measurements, want)
			}
			for _, k := range s.Metadata {
				if slices.Contains(pii, k) && !(s.Name == "dripdrop.health.state_changed" && k == "to") {
					t.Errorf("metadata key %q is PII", k)
				}
			}
			if len(slices.Compact(slices.Sorted(slices.Values(s.Metadata)))) != len(s.Metadata) {
				t.Errorf("duplicate metadata key in %v", s.Metadata)
			}
			for _, l := range s.Labels {
				if !slices.Contains(s.Metadata, l) {
					t.Errorf("label %q is not a metadata key", l)
				}
				if highCard.MatchString(l) || !slices.Contains(lowCardinality, l) {
					t.Errorf("label %q is high-cardinality", l)
				}
			}
		})
	}
}

func TestLookupAndCatalogReturnCopies(t *testing.T) {
	t.Parallel()
	s, _ := Lookup("dripdrop.dispatch.sent")
	s.Metadata[0], s.Labels[0], s.Measurements[0] = "x", "x", "x"
	c := Catalog()
	c[0].Metadata[0] = "y"
	again, _ := Lookup("dripdrop.dispatch.sent")
	if again.Metadata[0] != "enrollment_id" || again.Labels[0] != "channel" || again.Measurements[0] != "count" {
		t.Fatalf("Lookup shares the catalog's slices: %+v", again)
	}
	if first, _ := Lookup(Events()[0]); first.Metadata[0] == "y" {
		t.Fatal("Catalog shares the catalog's slices")
	}
	if _, ok := Lookup("dripdrop.nope"); ok {
		t.Fatal("unknown name found")
	}
	if names := Events(); len(names) != len(c) || !slices.Equal(names, Events()) {
		t.Fatal("Events is not stable or disagrees with Catalog")
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	const name = "dripdrop.policy.min_gap"
	full := fullMeta(name)
	tests := []struct {
		desc    string
		name    string
		m       map[string]float64
		md      map[string]any
		wantErr string
	}{
		{"exact keys", name, map[string]float64{"count": 1}, full, ""},
		{"unknown event", "dripdrop.nope", map[string]float64{"count": 1}, full, "unknown event"},
		{"missing metadata key", name, map[string]float64{"count": 1}, without(full, "defer_until"), "missing [defer_until]"},
		{"extra metadata key", name, map[string]float64{"count": 1}, with(full, "email", "a@b.c"), "unexpected [email]"},
		{"wrong measurement", name, map[string]float64{"duration": 1}, full, "measurements: missing [count], unexpected [duration]"},
		{"nil measurements", name, nil, full, "missing [count]"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			err := Check(tt.name, tt.m, tt.md)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if err := Check("dripdrop.nope", nil, nil); !errors.Is(err, ErrUnknownEvent) {
		t.Fatalf("err = %v, want ErrUnknownEvent", err)
	}
}

// fullMeta returns metadata with every catalog key of name set to a value
// derived from the key.
func fullMeta(name string) map[string]any {
	s, ok := Lookup(name)
	if !ok {
		panic("unknown event " + name)
	}
	m := make(map[string]any, len(s.Metadata))
	for _, k := range s.Metadata {
		m[k] = "v-" + k
	}
	return m
}

// measurementsOf returns valid measurements for name.
func measurementsOf(name string) map[string]float64 {
	s, _ := Lookup(name)
	m := map[string]float64{}
	for _, k := range s.Measurements {
		m[k] = 1
	}
	return m
}

func with(m map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[k] = v
	return out
}

func without(m map[string]any, k string) map[string]any {
	out := with(m, k, nil)
	delete(out, k)
	return out
}
