package db

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/variant"
)

// Step variants (docs/sequences.md#variants): the store keeps a step's
// variants with the step, records the variant each execution was given the
// first time it is reserved (variant.Choose: the promoted winner, else the
// weighted hash of enrollment and step) and renders that variant's subject
// and body; the auto-winner rule (variant.Winner) is evaluated after a
// reply and by the leader's variant_sweep.

// stepVariantsJSON is a step's variants and auto-winner as stored.
func stepVariantsJSON(st dripdrop.Step) (variants json.RawMessage, autoWinner []byte) {
	vs := st.Variants
	if vs == nil {
		vs = []dripdrop.Variant{}
	}
	variants, _ = json.Marshal(vs)
	if st.AutoWinner != nil {
		autoWinner, _ = json.Marshal(st.AutoWinner)
	}
	return variants, autoWinner
}

// decodeVariants reads a stored variants array (nil when it has none).
func decodeVariants(raw []byte) []dripdrop.Variant {
	if len(raw) <= 2 {
		return nil
	}
	var vs []dripdrop.Variant
	if err := json.Unmarshal(raw, &vs); err != nil || len(vs) == 0 {
		return nil
	}
	return vs
}

// stepVariantFields fills a step's variant fields from its row.
func stepVariantFields(st *dripdrop.Step, r dbsqlc.Step) {
	st.Variants = decodeVariants(r.Variants)
	if st.Variants == nil {
		st.Variants = []dripdrop.Variant{}
	}
	if len(r.AutoWinner) > 0 {
		var aw dripdrop.AutoWinner
		if json.Unmarshal(r.AutoWinner, &aw) == nil {
			st.AutoWinner = &aw
		}
	}
	st.Winner, st.PromotedAt = r.WinnerVariant, r.PromotedAt
}

// chooseVariant is the variant of a reserved execution: the one it was
// given before (a retry), else variant.Choose over the step's weights and
// winner. ok is false for a step without variants.
func chooseVariant(sc dbsqlc.LoadSendRow) (v dripdrop.Variant, fresh, ok bool) {
	vs := decodeVariants(sc.Variants)
	if len(vs) == 0 {
		return v, false, false
	}
	st := dripdrop.Step{Variants: vs}
	if sc.Variant != nil {
		if i := st.VariantIndex(*sc.Variant); i >= 0 {
			return vs[i], false, true
		}
	}
	winner := -1
	if sc.WinnerVariant != nil {
		winner = st.VariantIndex(*sc.WinnerVariant)
	}
	return vs[variant.Choose(sc.EnrollmentID, sc.StepID, st.Weights(), winner)], true, true
}

// assignVariant chooses the variant of a send being reserved and queues
// the recording of a first assignment; it returns the variant's key ("" for
// a step without variants).
func (r *reservation) assignVariant(sc dbsqlc.LoadSendRow) string {
	v, fresh, ok := chooseVariant(sc)
	if !ok {
		return ""
	}
	if fresh {
		r.variantIDs, r.variantKeys = append(r.variantIDs, sc.ID), append(r.variantKeys, v.Key)
	}
	return v.Key
}

// writeVariants queues the first assignments of this reservation.
func (r *reservation) writeVariants(ctx context.Context) {
	if len(r.variantIDs) == 0 {
		return
	}
	p := dbsqlc.SetExecutionVariantsParams{TenantKey: r.tenant, Ids: r.variantIDs, Variants: r.variantKeys}
	queueExec(&r.p.tail, func(q *dbsqlc.Queries) error { return q.SetExecutionVariants(ctx, p) })
}

// applyVariant puts the chosen variant's templates into a job: a field the
// variant leaves out is the step's own.
func applyVariant(job *SendJob, sc dbsqlc.LoadSendRow) {
	v, _, ok := chooseVariant(sc)
	if !ok {
		return
	}
	job.Variant = v.Key
	if v.Subject != nil {
		job.Subject = *v.Subject
	}
	if v.BodyText != nil {
		job.BodyText = *v.BodyText
	}
	if v.BodyHTML != nil {
		h := *v.BodyHTML
		job.BodyHTML = &h
	}
}

// VariantStats are one variant's numbers at one step.
type VariantStats struct {
	Key     string `json:"key"`
	Weight  int    `json:"weight"`
	Winner  bool   `json:"winner"`
	Sent    int    `json:"sent"`
	Replies int    `json:"replies"`
	// Positive counts replies categorised interested.
	Positive     int `json:"positive_replies"`
	Bounces      int `json:"bounces"`
	Unsubscribes int `json:"unsubscribes"`
	// ReplyRate and PositiveRate are the rates with their Wilson intervals
	// at the step's confidence (0.95 without an auto-winner).
	ReplyRate    Rate `json:"reply_rate"`
	PositiveRate Rate `json:"positive_reply_rate"`
}

// Rate is a proportion with its Wilson score interval.
type Rate struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

func rateOf(successes, n int, confidence float64) Rate {
	lo, hi := variant.Wilson(successes, n, confidence)
	v := 0.0
	if n > 0 {
		v = float64(successes) / float64(n)
	}
	return Rate{Value: v, Low: lo, High: hi}
}

// variantArms reads the per-variant counts of steps, keyed by step id and
// variant key.
func variantArms(ctx context.Context, q *dbsqlc.Queries, tenant string, steps []uuid.UUID) (map[uuid.UUID]map[string]dbsqlc.StatsVariantsRow, error) {
	out := map[uuid.UUID]map[string]dbsqlc.StatsVariantsRow{}
	if len(steps) == 0 {
		return out, nil
	}
	rows, err := q.StatsVariants(ctx, dbsqlc.StatsVariantsParams{TenantKey: tenant, StepIds: steps})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if out[r.StepID] == nil {
			out[r.StepID] = map[string]dbsqlc.StatsVariantsRow{}
		}
		out[r.StepID][r.Variant] = r
	}
	return out, nil
}

// stepVariantStats is a step's variant rows, in the step's order.
func stepVariantStats(st dripdrop.Step, arms map[string]dbsqlc.StatsVariantsRow) []VariantStats {
	conf := dripdrop.DefaultConfidence
	if st.AutoWinner != nil {
		conf = st.AutoWinner.Confidence
	}
	out := make([]VariantStats, 0, len(st.Variants))
	for _, v := range st.Variants {
		a := arms[v.Key]
		out = append(out, VariantStats{Key: v.Key, Weight: v.Weight, Winner: st.Winner != nil && *st.Winner == v.Key,
			Sent: a.Sent, Replies: a.Replies, Positive: a.Positive, Bounces: a.Bounces, Unsubscribes: a.Unsubscribes,
			ReplyRate: rateOf(a.Replies, a.Sent, conf), PositiveRate: rateOf(a.Positive, a.Sent, conf)})
	}
	return out
}

// winnerOf applies the auto-winner rule to a step's counts.
func winnerOf(st dripdrop.Step, arms map[string]dbsqlc.StatsVariantsRow) (int, []variant.Arm, bool) {
	if st.AutoWinner == nil || st.Winner != nil || len(st.Variants) < 2 {
		return -1, nil, false
	}
	in := make([]variant.Arm, len(st.Variants))
	for i, v := range st.Variants {
		a := arms[v.Key]
		in[i].Sent = a.Sent
		if st.AutoWinner.Metric == dripdrop.MetricPositiveReplyRate {
			in[i].Successes = a.Positive
		} else {
			in[i].Successes = a.Replies
		}
	}
	w, ok := variant.Winner(in, variant.Rule{MinSent: st.AutoWinner.MinSent, Confidence: st.AutoWinner.Confidence})
	return w, in, ok
}

// evaluateWinner applies the rule to one step inside q's transaction and
// promotes a winner it finds (once: a step's winner never changes),
// returning dripdrop.sequence.variant_promoted.
func (s *Store) evaluateWinner(ctx context.Context, q *dbsqlc.Queries, tenant string, row dbsqlc.Step, now time.Time) ([]event, error) {
	st := stepFromRow(row)
	if st.AutoWinner == nil || st.Winner != nil {
		return nil, nil
	}
	arms, err := variantArms(ctx, q, tenant, []uuid.UUID{st.ID})
	if err != nil {
		return nil, err
	}
	w, in, ok := winnerOf(st, arms[st.ID])
	if !ok {
		return nil, nil
	}
	key := st.Variants[w].Key
	n, err := q.PromoteVariant(ctx, dbsqlc.PromoteVariantParams{TenantKey: tenant, ID: st.ID, Variant: &key, Now: now})
	if err != nil || n == 0 {
		return nil, err
	}
	sc, err := q.StepContext(ctx, dbsqlc.StepContextParams{TenantKey: tenant, ID: st.ID})
	if err != nil {
		return nil, err
	}
	lo, _ := variant.Wilson(in[w].Successes, in[w].Sent, st.AutoWinner.Confidence)
	bound := 0.0
	for i, a := range in {
		if i != w {
			_, hi := variant.Wilson(a.Successes, a.Sent, st.AutoWinner.Confidence)
			bound = max(bound, hi)
		}
	}
	data := map[string]any{"step_key": st.Key, "variant": key, "metric": st.AutoWinner.Metric, "min_sent": st.AutoWinner.MinSent,
		"confidence": st.AutoWinner.Confidence, "winner_low": lo, "others_high": bound, "arms": in}
	if err := s.audit(ctx, q, tenant, "sequence", sc.SequenceID, "variant_promoted", SourceEngine, data); err != nil {
		return nil, err
	}
	return []event{evVariantPromoted(tenant, sc, key, st.AutoWinner.Metric, in[w])}, nil
}

// evaluateWinnerOf evaluates the step of a correlated execution when it
// has an auto-winner rule and no winner yet.
func (s *Store) evaluateWinnerOf(ctx context.Context, q *dbsqlc.Queries, tenant string, step uuid.UUID, now time.Time) ([]event, error) {
	row, err := q.GetStep(ctx, dbsqlc.GetStepParams{TenantKey: tenant, ID: step})
	if err != nil {
		return nil, err
	}
	if len(row.AutoWinner) == 0 || row.WinnerVariant != nil {
		return nil, nil
	}
	return s.evaluateWinner(ctx, q, tenant, row, now)
}

// VariantSweep evaluates the auto-winner rule of every step of the
// tenant's active versions that has one and no winner yet (a leader duty,
// every minute: sends change the counts as well as replies), and returns
// how many steps it promoted.
func (s *Store) VariantSweep(ctx context.Context, tenant string) (n int, err error) {
	defer wrapErr(&err, "variant sweep")
	steps, err := s.q.StepsAwaitingWinner(ctx, tenant)
	if err != nil {
		return 0, err
	}
	for _, row := range steps {
		err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
			evs, err := s.evaluateWinner(ctx, q, tenant, row, s.clock.Now())
			n += len(evs)
			return evs, err
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// byCategoryZero counts every reply category at zero.
func byCategoryZero() map[string]int {
	m := make(map[string]int, len(ingest.Categories))
	for _, c := range ingest.Categories {
		m[string(c)] = 0
	}
	return m
}
