// Package telemetry is dripdrop's event catalog and its backends: an
// in-process bus with panic-safe handlers, a log/slog handler, a Prometheus
// recipe and the outbox metrics. It is a leaf package: it imports only the
// standard library and the Prometheus client.
//
// # Events
//
// Every event dripdrop emits is listed in the catalog (Events, Catalog,
// Lookup). Names are dotted strings: the Elixir-style event
// [:dripdrop, :dispatch, :sent] is "dripdrop.dispatch.sent".
//
// Measurements are stable and always float64:
//
//   - counters carry {"count": 1};
//   - threshold checks carry {"rate": r}, a fraction in [0, 1];
//   - spans carry {"duration": d} in SECONDS on stop and exception, and
//     {"system_time": t} (Unix time in seconds) on start.
//
// # Metadata and PII
//
// Metadata keys are exactly those of the event's Spec. Metadata never
// carries e-mail addresses, personal names, subjects or message bodies;
// identifiers (ids, tenant keys, provider message ids) and short machine
// reasons only. Metric labels are further restricted to the low-cardinality
// keys of Spec.Labels unless an operator opts in.
package telemetry

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Kind is the shape of an event's measurements.
type Kind string

// Kinds of events.
const (
	// Counter events carry {"count": 1}.
	Counter Kind = "counter"
	// Threshold events carry {"rate": r}.
	Threshold Kind = "threshold"
	// Span events carry {"system_time"} on start and {"duration"} (seconds)
	// on stop and exception.
	Span Kind = "span"
)

// Spec describes one catalog event.
type Spec struct {
	// Name is the dotted event name, e.g. "dripdrop.dispatch.sent".
	Name string
	Kind Kind
	// Measurements are the keys of the event's measurements map.
	Measurements []string
	// Metadata are the keys of the event's metadata map, in catalog order.
	Metadata []string
	// ExtraKeys are the keys of Metadata that this engine adds, at its end,
	// to an event of the original cold-outbound catalog (inbound_message's
	// fault: whose failure a bounce reports).
	ExtraKeys []string
	// Labels are the low-cardinality metadata keys the Prometheus recipe
	// uses as labels by default. Ids, tenant keys, times, counts and free
	// text are never default labels.
	Labels []string
	// Extension marks events beyond the original 15-event cold-outbound
	// catalog.
	Extension bool
	// InProcess marks events that reach only in-process handlers, logs and
	// metrics: the spans of an SMTP conversation, which report no committed
	// change. Every other event is written to the outbox by the transaction
	// whose change it reports, and so reaches the event feed, the stream and
	// webhook subscriptions.
	InProcess   bool
	Description string
}

func (s Spec) clone() Spec {
	s.Measurements = slices.Clone(s.Measurements)
	s.Metadata = slices.Clone(s.Metadata)
	s.ExtraKeys = slices.Clone(s.ExtraKeys)
	s.Labels = slices.Clone(s.Labels)
	return s
}

// count is the measurement set of every Counter event.
var count = []string{"count"}

// catalog is the single source of truth; Events, Catalog, Lookup, Check,
// the Prometheus recipe and docs/telemetry.md all derive from it.
var catalog = []Spec{
	// The cold-outbound catalog (seeds/000).
	{Name: "dripdrop.dispatch.adapter_pinned", Kind: Counter, Measurements: count,
		Metadata:    []string{"enrollment_id", "sequence_version_id", "adapter_id", "tenant_key"},
		Description: "enrollment pinned to a pool adapter"},
	{Name: "dripdrop.dispatch.pool_exhausted", Kind: Counter, Measurements: count,
		Metadata:    []string{"pool_id", "sequence_version_id", "evicted_adapter_ids", "tenant_key"},
		Description: "no eligible pool member"},
	{Name: "dripdrop.dispatch.sent", Kind: Counter, Measurements: count,
		Metadata:    []string{"enrollment_id", "step_execution_id", "sequence_key", "step_key", "channel", "adapter_provider", "provider_message_id", "out_message_id", "tenant_key"},
		Labels:      []string{"channel", "adapter_provider"},
		Description: "provider accepted a dispatch and the sent event is persisted"},
	{Name: "dripdrop.policy.adapter_resting", Kind: Counter, Measurements: count,
		Metadata:    []string{"adapter_id", "step_execution_id", "tenant_key", "defer_until"},
		Description: "outbound adapter is resting"},
	{Name: "dripdrop.policy.ramp_cap", Kind: Counter, Measurements: count,
		Metadata:    []string{"adapter_id", "step_execution_id", "tenant_key", "sent_count", "cap"},
		Description: "adapter effective daily cap hit"},
	{Name: "dripdrop.policy.sub_cap", Kind: Counter, Measurements: count,
		Metadata:    []string{"adapter_id", "sequence_version_id", "step_execution_id", "tenant_key", "sent_count", "cap", "max_share_pct"},
		Description: "sequence share cap hit"},
	{Name: "dripdrop.policy.min_gap", Kind: Counter, Measurements: count,
		Metadata:    []string{"adapter_id", "step_execution_id", "tenant_key", "defer_until", "min_gap_seconds"},
		Description: "adapter minimum-send gap hit"},
	{Name: "dripdrop.health.state_changed", Kind: Counter, Measurements: count,
		Metadata:    []string{"adapter_id", "tenant_key", "from", "to", "reason", "source"},
		Labels:      []string{"from", "to", "reason", "source"},
		Description: "adapter health transition"},
	{Name: "dripdrop.health.external_signal", Kind: Counter, Measurements: count,
		Metadata:    []string{"adapter_id", "tenant_key", "health_state", "health_score", "source"},
		Labels:      []string{"health_state", "source"},
		Description: "host health signal accepted"},
	{Name: "dripdrop.ingest.inbound_message", Kind: Counter, Measurements: count,
		Metadata: []string{"provider", "provider_message_id", "provider_event_id", "step_execution_id", "tenant_key", "intent", "fault"},
		Labels:   []string{"provider", "intent"}, ExtraKeys: []string{"fault"},
		Description: "inbound message persisted (fault: whose failure a bounce reports, recipient or sender; null otherwise)"},
	{Name: "dripdrop.ingest.ooo_rescheduled", Kind: Counter, Measurements: count,
		Metadata:    []string{"enrollment_id", "return_at", "scheduled_for", "tenant_key"},
		Description: "out-of-office reply moved scheduled executions"},
	{Name: "dripdrop.enrollment.paused_pin_unavailable", Kind: Counter, Measurements: count,
		Metadata:    []string{"enrollment_id", "adapter_id", "tenant_key"},
		Description: "pinned adapter became terminally unavailable"},
	{Name: "dripdrop.enrollment.sender_reassigned", Kind: Counter, Measurements: count,
		Metadata:    []string{"enrollment_id", "old_adapter_id", "new_adapter_id", "reason", "tenant_key"},
		Labels:      []string{"reason"},
		Description: "adapter pin changed"},
	{Name: "dripdrop.template.spintax_error", Kind: Counter, Measurements: count,
		Metadata:    []string{"reason", "text", "step_execution_id", "attempt_window"},
		Labels:      []string{"reason"},
		Description: "malformed spintax fell back to the original text (text truncated to 256 bytes)"},
	{Name: "dripdrop.template.spintax_warning", Kind: Counter, Measurements: count,
		Metadata:    []string{"reason", "token", "step_execution_id", "attempt_window"},
		Labels:      []string{"reason"},
		Description: "recoverable spintax issue"},

	// Extensions.
	{Name: "dripdrop.policy.suppressed", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"step_execution_id", "enrollment_id", "tenant_key", "scope"},
		Labels:      []string{"scope"},
		Description: "recipient or its domain suppressed: execution skipped, enrollment stopped"},
	{Name: "dripdrop.policy.quiet_hours", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"step_execution_id", "tenant_key", "timezone", "defer_until"},
		Description: "outside the sending window: deferred to its next opening"},
	{Name: "dripdrop.template.missing_variable", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"step_execution_id", "tenant_key", "variable", "field"},
		Labels:      []string{"field"},
		Description: "a variable without fallback was missing: the execution failed permanently"},
	{Name: "dripdrop.dispatch.failed", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"step_execution_id", "enrollment_id", "adapter_id", "tenant_key", "reason", "smtp_code", "permanent"},
		Labels:      []string{"reason", "permanent"},
		Description: "an execution failed for good"},
	{Name: "dripdrop.dispatch.retry", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"step_execution_id", "adapter_id", "tenant_key", "attempt", "defer_until", "reason"},
		Labels:      []string{"reason"},
		Description: "temporary failure: retried later with the same Message-ID"},
	{Name: "dripdrop.dispatch.adapter_error", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"adapter_id", "tenant_key", "reason", "consecutive"},
		Labels:      []string{"reason"},
		Description: "the sender failed (connection, TLS, AUTH, policy): the execution is requeued without using an attempt, the adapter backs off"},
	{Name: "dripdrop.adapter.reconnect_required", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"adapter_id", "tenant_key", "provider", "reason"},
		Labels:      []string{"provider"},
		Description: "an OAuth2 mailbox's grant died (invalid_grant: revoked, password changed, consent withdrawn): the adapter rests until it is reconnected"},
	{Name: "dripdrop.dispatch.deferred", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"step_execution_id", "adapter_id", "tenant_key", "reason", "defer_until"},
		Labels:      []string{"reason"},
		Description: "a policy deferred an execution (once per decision)"},
	{Name: "dripdrop.dispatch.send.start", Kind: Span, Measurements: []string{"system_time"}, Extension: true, InProcess: true,
		Metadata:    []string{"step_execution_id", "enrollment_id", "adapter_id", "adapter_provider", "tenant_key"},
		Labels:      []string{"adapter_provider"},
		Description: "SMTP conversation begins"},
	{Name: "dripdrop.dispatch.send.stop", Kind: Span, Measurements: []string{"duration"}, Extension: true, InProcess: true,
		Metadata:    []string{"step_execution_id", "enrollment_id", "adapter_id", "adapter_provider", "tenant_key"},
		Labels:      []string{"adapter_provider"},
		Description: "SMTP conversation accepted (duration in seconds)"},
	{Name: "dripdrop.dispatch.send.exception", Kind: Span, Measurements: []string{"duration"}, Extension: true, InProcess: true,
		Metadata:    []string{"step_execution_id", "enrollment_id", "adapter_id", "adapter_provider", "tenant_key", "kind", "reason"},
		Labels:      []string{"adapter_provider", "kind"},
		Description: "SMTP conversation failed (kind temporary|permanent)"},
	{Name: "dripdrop.ingest.unmatched_event", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"provider", "provider_message_id", "provider_event_id", "tenant_key"},
		Labels:      []string{"provider"},
		Description: "inbound message correlated to no execution (stored anyway)"},
	{Name: "dripdrop.ingest.duplicate_event", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"provider", "provider_message_id", "tenant_key"},
		Labels:      []string{"provider"},
		Description: "inbound message already ingested: acknowledged, nothing changed"},
	{Name: "dripdrop.health.bounce_threshold", Kind: Threshold, Measurements: []string{"rate"}, Extension: true,
		Metadata:    []string{"adapter_id", "tenant_key", "sent_count", "bounce_count"},
		Description: "bounce rate reached the threshold"},
	{Name: "dripdrop.health.complaint_threshold", Kind: Threshold, Measurements: []string{"rate"}, Extension: true,
		Metadata:    []string{"adapter_id", "tenant_key", "sent_count", "complaint_count"},
		Description: "complaint rate reached the threshold"},
	{Name: "dripdrop.enrollment.paused", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"enrollment_id", "tenant_key", "reason"}, Labels: []string{"reason"}, Description: "enrollment paused"},
	{Name: "dripdrop.enrollment.resumed", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"enrollment_id", "tenant_key", "reason"}, Labels: []string{"reason"}, Description: "enrollment resumed"},
	{Name: "dripdrop.enrollment.cancelled", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"enrollment_id", "tenant_key", "reason"}, Labels: []string{"reason"}, Description: "enrollment cancelled"},
	{Name: "dripdrop.enrollment.completed", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"enrollment_id", "tenant_key", "reason"}, Labels: []string{"reason"}, Description: "last step sent"},
	{Name: "dripdrop.enrollment.stopped", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"enrollment_id", "tenant_key", "reason"}, Labels: []string{"reason"}, Description: "enrollment stopped (replied, bounced, complained, unsubscribed, suppressed)"},
	{Name: "dripdrop.sequence.variant_promoted", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"sequence_id", "sequence_version_id", "step_id", "step_key", "variant", "metric", "sent", "successes", "tenant_key"},
		Labels:      []string{"metric"},
		Description: "a step's auto-winner promoted a variant (its Wilson lower bound above every other variant's upper bound); new assignments get it"},
	{Name: "dripdrop.ingest.reply_categorized", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"inbound_id", "enrollment_id", "step_execution_id", "category", "previous_category", "source", "tenant_key"},
		Labels:      []string{"category", "source"},
		Description: "a human reply was categorised (source engine) or its category corrected (operator, crm)"},
	{Name: "dripdrop.enrollment.routed", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"enrollment_id", "new_enrollment_id", "sequence_id", "trigger", "category", "tenant_key"},
		Labels:      []string{"trigger", "category"},
		Description: "a branch enrolled the contact into another sequence (trigger on_reply with its category, on_auto_reply, on_completed_without_reply)"},
	{Name: "dripdrop.telemetry.subscription_disabled", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"subscription_id", "tenant_key", "reason"}, Labels: []string{"reason"},
		Description: "webhook subscription disabled (reason gone: the receiver answered 410; failing: 5 days of failed deliveries)"},
	{Name: "dripdrop.mailbox.sync_failed", Kind: Counter, Measurements: count, Extension: true,
		Metadata: []string{"adapter_id", "tenant_key", "reason", "state", "retry_at"}, Labels: []string{"reason"},
		Description: "a mailbox's sync started failing (or the reason changed): state failing or throttled, retried with backoff; emitted on changes only"},
	{Name: "dripdrop.mailbox.sync_recovered", Kind: Counter, Measurements: count, Extension: true,
		Metadata:    []string{"adapter_id", "tenant_key", "failures"},
		Description: "a failing mailbox synced again; emitted once per recovery"},
}

// index maps an event name to its position in catalog.
var index = func() map[string]int {
	m := make(map[string]int, len(catalog))
	for i, s := range catalog {
		if _, dup := m[s.Name]; dup {
			panic("telemetry: duplicate catalog event " + s.Name)
		}
		m[s.Name] = i
	}
	return m
}()

// Events lists every catalog event name in catalog order (the 15 original
// events first, then the extensions). The slice is a fresh copy.
func Events() []string {
	out := make([]string, len(catalog))
	for i, s := range catalog {
		out[i] = s.Name
	}
	return out
}

// Catalog returns a deep copy of every spec, in the order of Events.
func Catalog() []Spec {
	out := make([]Spec, len(catalog))
	for i, s := range catalog {
		out[i] = s.clone()
	}
	return out
}

// Lookup returns a copy of the spec of the named event.
func Lookup(name string) (Spec, bool) {
	i, ok := index[name]
	if !ok {
		return Spec{}, false
	}
	return catalog[i].clone(), true
}

// Check reports whether an emission matches the catalog: the name is known
// and the measurement and metadata keys are exactly the spec's (values are
// not checked). The error names the missing and unexpected keys.
func Check(name string, measurements map[string]float64, metadata map[string]any) error {
	i, ok := index[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownEvent, name)
	}
	s := &catalog[i]
	if err := diffKeys(s.Measurements, slices.Collect(maps.Keys(measurements))); err != nil {
		return fmt.Errorf("telemetry: %s measurements: %w", name, err)
	}
	if err := diffKeys(s.Metadata, slices.Collect(maps.Keys(metadata))); err != nil {
		return fmt.Errorf("telemetry: %s metadata: %w", name, err)
	}
	return nil
}

func diffKeys(want, got []string) error {
	var missing, extra []string
	for _, k := range want {
		if !slices.Contains(got, k) {
			missing = append(missing, k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			extra = append(extra, k)
		}
	}
	if missing == nil && extra == nil {
		return nil
	}
	slices.Sort(extra)
	return fmt.Errorf("missing %v, unexpected %v (catalog: %v)", missing, extra, want)
}

// CatalogMarkdown renders the catalog as the Markdown table embedded in
// docs/telemetry.md: event, kind, measurements, metadata, default
// Prometheus labels, extension.
func CatalogMarkdown() string {
	var b strings.Builder
	b.WriteString("| event | kind | measurements | metadata | default Prometheus labels | extension | feed |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, s := range catalog {
		ext, feed := "no", "yes"
		if s.Extension {
			ext = "yes"
		}
		if s.InProcess {
			feed = "no (in-process)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s |\n", s.Name, s.Kind,
			strings.Join(s.Measurements, ", "), strings.Join(s.Metadata, ", "), strings.Join(s.Labels, ", "), ext, feed)
	}
	return b.String()
}
