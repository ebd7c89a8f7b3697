package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"time"
)

// LogHandler returns a handler that writes one line per event at info
// level: message "telemetry", attribute event=<name>, then each
// measurement and each metadata key, both sorted by key. Times are
// formatted as RFC 3339 with nanoseconds in UTC, nil values as the empty
// string. With slog.NewTextHandler the line is key=value pairs.
func LogHandler(l *slog.Logger) Handler {
	if l == nil {
		l = slog.Default()
	}
	return func(ctx context.Context, e Event) {
		attrs := make([]slog.Attr, 0, 1+len(e.Measurements)+len(e.Metadata))
		attrs = append(attrs, slog.String("event", e.Name))
		for _, k := range slices.Sorted(maps.Keys(e.Measurements)) {
			attrs = append(attrs, slog.Float64(k, e.Measurements[k]))
		}
		for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
			attrs = append(attrs, slog.Attr{Key: k, Value: logValue(e.Metadata[k])})
		}
		l.LogAttrs(ctx, slog.LevelInfo, "telemetry", attrs...)
	}
}

// logValue keeps numbers and booleans typed (for JSON handlers) and
// renders everything else with format.
func logValue(v any) slog.Value {
	switch v.(type) {
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return slog.AnyValue(v)
	}
	return slog.StringValue(format(v))
}

// format renders a metadata value as a log or label value: nil and nil
// pointers as "", times as RFC 3339 UTC with nanoseconds, Stringers and
// errors through their methods, other pointers through what they point at,
// anything else through fmt.
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
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return ""
	}
	switch x := v.(type) {
	case fmt.Stringer:
		return x.String()
	case error:
		return x.Error()
	}
	if rv.Kind() == reflect.Pointer {
		return format(rv.Elem().Interface())
	}
	return fmt.Sprint(v)
}
