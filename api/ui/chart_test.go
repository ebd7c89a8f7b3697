package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db"
)

func days(n int, start time.Time) []db.DayCount {
	out := make([]db.DayCount, n)
	for i := range out {
		out[i] = db.DayCount{Day: start.AddDate(0, 0, i), Sent: 10}
	}
	return out
}

func TestStateSpans(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ds := days(10, start)
	at := func(day, hour int) time.Time { return start.AddDate(0, 0, day).Add(time.Duration(hour) * time.Hour) }
	ts := []Transition{
		{At: at(2, 14), From: "active", To: "resting"},
		{At: at(3, 14), From: "resting", To: "probing"},
		{At: at(3, 20), From: "probing", To: "ramping"}, // same day: the day ends ramping
		{At: at(8, 0), From: "ramping", To: "active"},   // exactly at the start of day 8
	}
	got := stateSpans(ds, time.UTC, ts, "active")
	want := []StateSpan{{0, 2, "active"}, {2, 3, "resting"}, {3, 8, "ramping"}, {8, 10, "active"}}
	if len(got) != len(want) {
		t.Fatalf("spans %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("spans %v, want %v", got, want)
		}
	}
	// No transitions: the current state throughout.
	if got := stateSpans(ds, time.UTC, nil, "probing"); len(got) != 1 || got[0] != (StateSpan{0, 10, "probing"}) {
		t.Fatalf("no transitions: %v", got)
	}
}

func TestAdapterChartMarkup(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ds := days(30, start)
	ds[5].Bounced, ds[6].Complained = 1, 1
	svg := string(adapterChart(ds, []StateSpan{{0, 10, "active"}, {10, 30, "resting"}}, 0.02, 0.003))
	for sel, want := range map[string]int{
		`class="bar sent"`:             30,
		`class="threshold bounce"`:     1,
		`class="threshold complaint"`:  1,
		`class="band band-active"`:     3, // one per panel
		`class="band band-resting"`:    3,
		`class="rate bounce"`:          1,
		`class="point bounce"`:         30,
		`<title>Mar 6: 10 sent, 1 bou`: 1,
	} {
		if got := strings.Count(svg, sel); got != want {
			t.Errorf("%s: %d, want %d", sel, got, want)
		}
	}
	if !strings.Contains(svg, "threshold 2%") || !strings.Contains(svg, "threshold 0.3%") {
		t.Errorf("threshold labels missing")
	}
	if adapterChart(nil, nil, 0.02, 0.003) != "" {
		t.Errorf("an empty series draws a chart")
	}
}

func TestMeterAndPct(t *testing.T) {
	t.Parallel()
	five := 5
	if m := string(meter(4, &five, "capacity")); !strings.Contains(m, `width="128.0"`) || !strings.Contains(m, `aria-label="4 of 5"`) {
		t.Errorf("meter 4/5: %s", m)
	}
	if m := string(meter(9, &five, "capacity")); !strings.Contains(m, `width="160.0"`) {
		t.Errorf("meter over the cap is not full: %s", m)
	}
	if m := string(meter(3, nil, "capacity")); !strings.Contains(m, "uncapped") {
		t.Errorf("uncapped meter: %s", m)
	}
	for v, want := range map[float64]string{0.02: "2%", 0.003: "0.3%", 0: "0%", 1: "100%", 0.1234: "12.34%"} {
		if got := pct(v); got != want {
			t.Errorf("pct(%v) = %s, want %s", v, got, want)
		}
	}
}
