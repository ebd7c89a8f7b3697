package ui

import (
	"fmt"
	"html/template"
	"math"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// variantStep is one step's variants on the sequence page.
type variantStep struct {
	Key    string
	Rule   string
	Winner *string
	Rows   []variantRow
}

// variantRow is one variant: its numbers and its reply rate's Wilson
// interval drawn as a bar.
type variantRow struct {
	db.VariantStats
	Rate   db.Rate
	Metric string
	Bar    template.HTML
}

// variantSteps lists the steps of a version that have variants.
func variantSteps(v dripdrop.SequenceVersion, st db.VersionStats) []variantStep {
	defs := map[string]dripdrop.Step{}
	for _, s := range v.Steps {
		defs[s.Key] = s
	}
	var out []variantStep
	for _, s := range st.Steps {
		if len(s.Variants) == 0 {
			continue
		}
		def := defs[s.Key]
		vs := variantStep{Key: s.Key, Winner: s.Winner}
		metric := dripdrop.MetricReplyRate
		if aw := def.AutoWinner; aw != nil {
			metric = aw.Metric
			vs.Rule = fmt.Sprintf("auto-winner on %s: every variant %d+ sent, Wilson bounds at %s", aw.Metric, aw.MinSent, pct(aw.Confidence))
		}
		scale := 0.0
		for _, x := range s.Variants {
			r := x.ReplyRate
			if metric == dripdrop.MetricPositiveReplyRate {
				r = x.PositiveRate
			}
			if x.Sent > 0 {
				scale = math.Max(scale, r.High)
			}
		}
		for _, x := range s.Variants {
			r := x.ReplyRate
			if metric == dripdrop.MetricPositiveReplyRate {
				r = x.PositiveRate
			}
			vs.Rows = append(vs.Rows, variantRow{VariantStats: x, Rate: r, Metric: metric, Bar: intervalBar(x.Key, r, x.Sent, scale)})
		}
		out = append(out, vs)
	}
	return out
}

// intervalBar draws a rate's Wilson interval as a bar from its lower to its
// upper bound, with a tick at the rate, on a scale shared by the step's
// variants (0 to the largest upper bound).
func intervalBar(key string, r db.Rate, sent int, scale float64) template.HTML {
	const w, h, pad = 240.0, 16.0, 4.0
	if scale <= 0 {
		scale = 1
	}
	x := func(v float64) float64 { return pad + math.Min(v/scale, 1)*(w-2*pad) }
	label := fmt.Sprintf("variant %s: %s (interval %s to %s) over %d sent", key, pct(r.Value), pct(r.Low), pct(r.High), sent)
	if sent == 0 {
		label = fmt.Sprintf("variant %s: nothing sent yet", key)
	}
	var b svgBuf
	b.f(`<svg class="interval" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, esc(label), w, h, w, h)
	b.f(`<title>%s</title>`, esc(label))
	b.f(`<line class="interval-axis" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, pad, h/2, w-pad, h/2)
	if sent > 0 {
		b.f(`<rect class="interval-bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x(r.Low), 3.0, math.Max(x(r.High)-x(r.Low), 1), h-6)
		b.f(`<line class="interval-point" x1="%.1f" y1="1" x2="%.1f" y2="%.1f"/>`, x(r.Value), x(r.Value), h-1)
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}

// branchRow is one route of a version.
type branchRow struct {
	Trigger, Category, TargetKey, TargetID, Delay string
}

func branchRows(b dripdrop.Branches) []branchRow {
	var out []branchRow
	for _, r := range b.Refs() {
		out = append(out, branchRow{Trigger: r.Trigger, Category: r.Category, TargetKey: r.Route.SequenceKey,
			TargetID: r.Route.SequenceID.String(), Delay: delayText(r.Route.DelaySeconds)})
	}
	return out
}

func delayText(s int64) string {
	switch {
	case s == 0:
		return "at once"
	case s%86400 == 0:
		return fmt.Sprintf("after %d d", s/86400)
	case s%3600 == 0:
		return fmt.Sprintf("after %d h", s/3600)
	}
	return fmt.Sprintf("after %d s", s)
}

// branchArrows draws the version's routes: this sequence on the left, an
// arrow per route to its target on the right, labelled with the trigger
// (and category) and the delay.
func branchArrows(seqKey string, rows []branchRow) template.HTML {
	if len(rows) == 0 {
		return ""
	}
	const w, boxW, boxH, rowH, top = 760.0, 170.0, 28.0, 40.0, 8.0
	h := top*2 + rowH*float64(len(rows))
	var b svgBuf
	b.f(`<svg class="chart branches" role="img" aria-label="Branches to other sequences" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`, w, h, w, h)
	b.f(`<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path class="arrowhead" d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>`)
	srcY := h/2 - boxH/2
	b.f(`<rect class="branch-node source" x="4" y="%.1f" width="%.0f" height="%.0f" rx="6"/>`, srcY, boxW, boxH)
	b.f(`<text class="branch-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, 4+boxW/2, srcY+boxH/2+4, esc(seqKey))
	for i, r := range rows {
		y := top + float64(i)*rowH
		tx := w - boxW - 4
		b.f(`<rect class="branch-node target" x="%.1f" y="%.1f" width="%.0f" height="%.0f" rx="6"/>`, tx, y, boxW, boxH)
		b.f(`<text class="branch-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, tx+boxW/2, y+boxH/2+4, esc(r.TargetKey))
		what := r.Trigger
		if r.Category != "" {
			what += " · " + r.Category
		}
		b.f(`<line class="branch-arrow" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" marker-end="url(#arrowhead)"><title>%s → %s, %s</title></line>`,
			4+boxW, h/2, tx-2, y+boxH/2, esc(what), esc(r.TargetKey), esc(r.Delay))
		b.f(`<text class="tick" x="%.1f" y="%.1f" text-anchor="middle">%s, %s</text>`, (4+boxW+tx)/2, (h/2+y+boxH/2)/2-4, esc(what), esc(r.Delay))
	}
	b.f(`</svg>`)
	return template.HTML(b.String())
}
