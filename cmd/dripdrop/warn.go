package main

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/dripdrop/dripdrop/telemetry"
)

// warnEvents are logged at WARN: sends that failed for good, adapter
// errors, and adapters put to rest (docs/operations.md#logs).
var warnEvents = []string{"dripdrop.dispatch.failed", "dripdrop.dispatch.adapter_error", "dripdrop.health.state_changed"}

// warnKeys are the metadata logged with them: ids and codes, never
// addresses or message text.
var warnKeys = []string{"tenant_key", "adapter_id", "enrollment_id", "step_execution_id", "reason", "smtp_code", "permanent", "consecutive", "from", "to", "source"}

// attachWarnLog logs warnEvents (those the catalog has) at WARN.
func attachWarnLog(bus *telemetry.Bus, log *slog.Logger) error {
	var names []string
	for _, n := range telemetry.Events() {
		if slices.Contains(warnEvents, n) {
			names = append(names, n)
		}
	}
	return bus.AttachMany("warn-log", names, func(ctx context.Context, e telemetry.Event) {
		if e.Name == "dripdrop.health.state_changed" && e.Metadata["to"] != "resting" {
			return
		}
		attrs := []slog.Attr{slog.String("event", e.Name)}
		for _, k := range warnKeys {
			v, ok := e.Metadata[k]
			if !ok || v == nil {
				continue
			}
			if s, isStr := v.(string); isStr && strings.Contains(s, "@") {
				continue // never an address
			}
			attrs = append(attrs, slog.Any(k, v))
		}
		msg := map[string]string{
			"dripdrop.dispatch.failed":        "send failed permanently",
			"dripdrop.dispatch.adapter_error": "adapter error: sends of this adapter are held back",
			"dripdrop.health.state_changed":   "adapter resting: its sends are deferred",
		}[e.Name]
		log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
	})
}
