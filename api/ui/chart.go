package ui

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop/db"
)

// Charts are SVG drawn here, in Go: no JavaScript, testable as markup. The
// palette is Okabe–Ito (colour-blind safe) and every series also has a
// text label, a legend and a data table next to the chart. Colours live in
// static/style.css by class, so the SVG carries only classes.

// StateSpan is a run of days an adapter spent in one health state.
type StateSpan struct {
	From, To int // day indices, To exclusive
	State    string
}

// Transition is one health state change, for bands and history.
type Transition struct {
	At     time.Time
	From   string
	To     string
	Reason string
	Source string
}

// stateSpans derives the health state at the end of each day from the
// transitions (oldest first) and the current state, merged into runs.
func stateSpans(days []db.DayCount, loc *time.Location, ts []Transition, current string) []StateSpan {
	var spans []StateSpan
	for i, d := range days {
		end := time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day()+1, 0, 0, 0, 0, loc)
		state := current
		if len(ts) > 0 {
			state = ts[0].From
			for _, t := range ts {
				if t.At.Before(end) {
					state = t.To
				}
			}
		}
		if state == "" {
			state = current
		}
		if n := len(spans); n > 0 && spans[n-1].State == state {
			spans[n-1].To = i + 1
			continue
		}
		spans = append(spans, StateSpan{From: i, To: i + 1, State: state})
	}
	return spans
}

type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, a ...any) { fmt.Fprintf(&b.Builder, format, a...) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// adapterChart draws 30 days of sends (bars), bounce rate and complaint rate
// (lines, one panel each, with their threshold as a dashed line) over
// health-state bands.
func adapterChart(days []db.DayCount, spans []StateSpan, bounceThreshold, complaintThreshold float64) template.HTML {
	const (
		w, left, right = 760.0, 56.0, 12.0
		panelH, gap    = 110.0, 34.0
		top            = 22.0
	)
	n := len(days)
	if n == 0 {
		return ""
	}
	plotW := w - left - right
	step := plotW / float64(n)
	h := top + 3*panelH + 2*gap + 40
	var b svgBuf
	b.f(`<svg class="chart adapter-chart" role="img" aria-labelledby="chart-title chart-desc" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, w, h, w, h)
	b.f(`<title id="chart-title">Sends, hard-bounce rate and complaint rate, last %d days</title>`, n)
	b.f(`<desc id="chart-desc">Bars: sends per day. Lines: daily bounce and complaint rates with dashed threshold lines. Background bands: health state at the end of each day.</desc>`)
	maxSent := 0
	bounceRate := make([]float64, n)
	complaintRate := make([]float64, n)
	for i, d := range days {
		maxSent = max(maxSent, d.Sent)
		if d.Sent > 0 {
			bounceRate[i] = float64(d.Bounced) / float64(d.Sent)
			complaintRate[i] = float64(d.Complained) / float64(d.Sent)
		}
	}
	panels := []struct {
		title, class string
		y0           float64
	}{
		{"Sends per day", "sent", top},
		{"Hard-bounce rate", "bounce", top + panelH + gap},
		{"Complaint rate", "complaint", top + 2*(panelH+gap)},
	}
	for _, p := range panels {
		for _, s := range spans {
			b.f(`<rect class="band band-%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s</title></rect>`,
				esc(s.State), left+float64(s.From)*step, p.y0, float64(s.To-s.From)*step, panelH, esc(s.State))
		}
		b.f(`<text class="panel-title" x="%.1f" y="%.1f">%s</text>`, left, p.y0-6, p.title)
		b.f(`<line class="axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, left, p.y0+panelH, w-right, p.y0+panelH)
	}
	// Sends.
	y0 := panels[0].y0
	scale := float64(max(maxSent, 1))
	b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end">%d</text>`, left-4, y0+8, max(maxSent, 1))
	b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end">0</text>`, left-4, y0+panelH)
	for i, d := range days {
		bh := float64(d.Sent) / scale * panelH
		b.f(`<rect class="bar sent" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d sent, %d bounced, %d complaints</title></rect>`,
			left+float64(i)*step+1, y0+panelH-bh, math.Max(step-2, 1), bh, d.Day.Format("Jan 2"), d.Sent, d.Bounced, d.Complained)
	}
	ratePanel := func(y0 float64, rates []float64, threshold float64, class string) {
		top := math.Max(threshold*1.6, 0)
		for _, r := range rates {
			top = math.Max(top, r)
		}
		if top == 0 {
			top = 0.01
		}
		y := func(v float64) float64 { return y0 + panelH - v/top*panelH }
		b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-4, y0+8, pct(top))
		b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end">0%%</text>`, left-4, y0+panelH)
		b.f(`<line class="threshold %s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>threshold %s</title></line>`, class, left, y(threshold), w-right, y(threshold), pct(threshold))
		b.f(`<text class="threshold-label" x="%.1f" y="%.1f" text-anchor="end">threshold %s</text>`, w-right-2, y(threshold)-3, pct(threshold))
		pts := make([]string, n)
		for i, r := range rates {
			pts[i] = fmt.Sprintf("%.1f,%.1f", left+(float64(i)+0.5)*step, y(r))
		}
		b.f(`<polyline class="rate %s" points="%s"/>`, class, strings.Join(pts, " "))
		for i, r := range rates {
			if days[i].Sent > 0 {
				b.f(`<circle class="point %s" cx="%.1f" cy="%.1f" r="2.5"><title>%s: %s</title></circle>`, class, left+(float64(i)+0.5)*step, y(r), days[i].Day.Format("Jan 2"), pct(r))
			}
		}
	}
	ratePanel(panels[1].y0, bounceRate, bounceThreshold, "bounce")
	ratePanel(panels[2].y0, complaintRate, complaintThreshold, "complaint")
	// Date ticks every 7 days.
	last := panels[2].y0 + panelH
	for i := 0; i < n-3; i += 7 {
		b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, left+(float64(i)+0.5)*step, last+14, days[i].Day.Format("Jan 2"))
	}
	b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, left+(float64(n-1)+0.5)*step, last+14, "today")
	b.f(`</svg>`)
	return template.HTML(b.String())
}

// meter draws a horizontal used/limit bar (today's sent against its cap).
func meter(used int, limit *int, class string) template.HTML {
	const w, h = 160.0, 12.0
	frac := 0.0
	label := fmt.Sprintf("%d sent, uncapped", used)
	if limit != nil {
		label = fmt.Sprintf("%d of %d", used, *limit)
		if *limit > 0 {
			frac = math.Min(float64(used)/float64(*limit), 1)
		} else {
			frac = 1
		}
	}
	return template.HTML(fmt.Sprintf(`<svg class="meter %s" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f"><rect class="meter-track" x="0" y="0" width="%.0f" height="%.0f"/><rect class="meter-fill" x="0" y="0" width="%.1f" height="%.0f"/></svg>`,
		esc(class), esc(label), w, h, w, h, w, h, frac*w, h))
}

// FunnelStep is one bar of a funnel.
type FunnelStep struct {
	Label     string
	Scheduled int
	Sent      int
	Failed    int
}

// funnel draws, per step, the contacts sent to as a share of the version's
// enrollments (with scheduled and failed as text).
func funnel(total int, steps []FunnelStep) template.HTML {
	const w, left, barH, rowH = 760.0, 150.0, 18.0, 28.0
	h := rowH*float64(len(steps)) + 10
	var b svgBuf
	b.f(`<svg class="chart funnel" role="img" aria-label="Funnel by step" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, w, h, w, h)
	scale := float64(max(total, 1))
	plotW := w - left - 230
	for i, s := range steps {
		y := float64(i)*rowH + 5
		b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="end">%s</text>`, left-8, y+barH-5, esc(s.Label))
		b.f(`<rect class="funnel-track" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, left, y, plotW, barH)
		b.f(`<rect class="funnel-bar sent" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s: %d sent of %d enrolled</title></rect>`,
			left, y, math.Min(float64(s.Sent)/scale, 1)*plotW, barH, esc(s.Label), s.Sent, total)
		b.f(`<text class="tick" x="%.1f" y="%.1f">%d sent · %d scheduled · %d failed</text>`, left+plotW+6, y+barH-5, s.Sent, s.Scheduled, s.Failed)
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

func pct(v float64) string {
	s := fmt.Sprintf("%.2f", v*100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}
