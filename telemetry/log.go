package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// LogHandler writes one structured line per event (message "telemetry",
// attributes event=<name>, the measurements, then the metadata keys sorted).
func LogHandler(l *slog.Logger) Handler {
	return func(ctx context.Context, e Event) {
		attrs := make([]slog.Attr, 0, 1+len(e.Measurements)+len(e.Metadata))
		attrs = append(attrs, slog.String("event", e.Name))
		for _, k := range sortedKeys(e.Measurements) {
			attrs = append(attrs, slog.Float64(k, e.Measurements[k]))
		}
		for _, k := range sortedKeys(e.Metadata) {
			attrs = append(attrs, slog.String(k, format(e.Metadata[k])))
		}
		l.LogAttrs(ctx, slog.LevelInfo, "telemetry", attrs...)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// format renders a metadata value as a label or log value.
func format(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *time.Time:
		if x == nil {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	case *string:
		if x == nil {
			return ""
		}
		return *x
	case *float64:
		if x == nil {
			return ""
		}
		return fmt.Sprint(*x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}
