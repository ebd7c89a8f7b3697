package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogHandlerTextLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := LogHandler(slog.New(slog.NewTextHandler(&buf, nil)))
	md := fullMeta(sent)
	md["channel"] = "email"
	md["out_message_id"] = nil
	h(context.Background(), Event{Name: sent, Measurements: map[string]float64{"count": 1}, Metadata: md})
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", out)
	}
	for _, want := range []string{"msg=telemetry", "event=" + sent, "count=1", "channel=email", `out_message_id=""`, "tenant_key=v-tenant_key"} {
		if !strings.Contains(out, want) {
			t.Errorf("line lacks %q: %q", want, out)
		}
	}
	// Metadata keys appear sorted, after the measurements.
	last := strings.Index(out, "count=")
	for _, k := range []string{"adapter_provider", "channel", "enrollment_id", "out_message_id", "provider_message_id",
		"sequence_key", "step_execution_id", "step_key", "tenant_key"} {
		i := strings.Index(out, " "+k+"=")
		if i < 0 || i < last {
			t.Fatalf("key %s missing or out of order in %q", k, out)
		}
		last = i
	}
}

func TestLogHandlerJSONKeepsNumbers(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	h := LogHandler(slog.New(slog.NewJSONHandler(&buf, nil)))
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	h(context.Background(), Event{Name: "dripdrop.dispatch.retry", Measurements: map[string]float64{"count": 1},
		Metadata: map[string]any{"attempt": 3, "defer_until": at, "reason": "4xx"}})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["attempt"] != 3.0 || got["defer_until"] != "2026-01-02T02:04:05.000000006Z" || got["count"] != 1.0 || got["event"] != "dripdrop.dispatch.retry" {
		t.Fatalf("record %v", got)
	}
}

type stringer struct{}

func (stringer) String() string { return "stringer" }

type ptrStringer struct{ s string }

func (p *ptrStringer) String() string { return p.s }

func TestFormat(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	s, n := "str", 42
	var nilTime *time.Time
	var nilStr *string
	var nilStringer *ptrStringer
	tests := []struct {
		in   any
		want string
	}{
		{nil, ""},
		{"x", "x"},
		{at, "2026-03-04T05:06:07.000000008Z"},
		{&at, "2026-03-04T05:06:07.000000008Z"},
		{nilTime, ""},
		{&s, "str"},
		{nilStr, ""},
		{&n, "42"},
		{stringer{}, "stringer"},
		{&ptrStringer{"p"}, "p"},
		{nilStringer, ""},
		{errors.New("e"), "e"},
		{true, "true"},
		{2.5, "2.5"},
	}
	for _, tt := range tests {
		if got := format(tt.in); got != tt.want {
			t.Errorf("format(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
