package forecast

import (
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/policy"
)

// Result is a forecast (docs/forecast.md).
type Result struct {
	Start     time.Time        `json:"start"`
	End       time.Time        `json:"end"`
	Days      []Day            `json:"days"`
	Sequences []SequenceResult `json:"sequences"`
	// NotEnrolled counts hypothetical contacts the pool could not take
	// (pool exhausted at their enrollment time).
	NotEnrolled int `json:"not_enrolled"`
}

// Day is one calendar day. Sends count on the sending adapter's local date.
type Day struct {
	Date         string `json:"date"`
	Sends        int    `json:"sends"`
	FirstTouches int    `json:"first_touches"`
	FollowUps    int    `json:"follow_ups"`
	// Binding is the constraint that held back the most adapters with due
	// work that day (null: every adapter sent all it had).
	Binding  *Binding     `json:"binding"`
	Adapters []AdapterDay `json:"adapters,omitempty"`
}

// AdapterDay is one adapter's day.
type AdapterDay struct {
	AdapterID    uuid.UUID `json:"adapter_id"`
	Name         string    `json:"name"`
	Hypothetical bool      `json:"hypothetical,omitempty"`
	Sends        int       `json:"sends"`
	FirstTouches int       `json:"first_touches"`
	FollowUps    int       `json:"follow_ups"`
	Binding      string    `json:"binding,omitempty"`
}

// Binding names a policy and an adapter it held back.
type Binding struct {
	Policy      string    `json:"policy"`
	AdapterID   uuid.UUID `json:"adapter_id"`
	AdapterName string    `json:"adapter_name"`
	Adapters    int       `json:"adapters"` // how many adapters it held back that day
}

// SequenceResult is the completion forecast of one sequence.
type SequenceResult struct {
	SequenceKey  string      `json:"sequence_key"`
	Enrolled     Completion  `json:"enrolled"`
	Hypothetical *Completion `json:"hypothetical,omitempty"`
	// Variants counts the forecast's sends per step variant (steps with
	// variants only), assigned by the engine's rule.
	Variants []VariantSends `json:"variants,omitempty"`
}

// VariantSends is how many sends of one version's step get one variant
// within the horizon (contacts enrolled in the simulation included: their
// ids are not known yet, so their split follows the weights, not their
// future ids).
type VariantSends struct {
	Version  int    `json:"version"`
	Position int    `json:"position"`
	Variant  string `json:"variant"`
	Sends    int    `json:"sends"`
}

// Completion summarises when contacts finish their last step. P50/P90 are
// null when that share does not finish within the horizon.
type Completion struct {
	Contacts  int        `json:"contacts"`
	Completed int        `json:"completed"`
	P50       *time.Time `json:"p50"`
	P90       *time.Time `json:"p90"`
}

func (m *sim) result(r Request) *Result {
	res := &Result{Start: tm(m.start), End: tm(m.end), NotEnrolled: m.notEnroll}
	first, last := never, 0
	for _, a := range m.adapters {
		first = min(first, civil(tm(m.start), a.pa.Location))
		last = max(last, civil(tm(m.end-1), a.pa.Location))
	}
	if len(m.adapters) == 0 {
		first, last = civil(tm(m.start), time.UTC), civil(tm(m.end-1), time.UTC)
	}
	for d := first; d <= last; d++ {
		day := Day{Date: time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)}
		bound := map[policy.Name]int{}
		example := map[policy.Name]*simAdapter{}
		i := d - m.baseDay
		for _, a := range m.adapters {
			if i < 0 || i >= len(a.stats) {
				continue
			}
			st := a.stats[i]
			day.Sends += int(st.sends)
			day.FirstTouches += int(st.first)
			day.FollowUps += int(st.follow)
			if st.binding != "" {
				bound[st.binding]++
				if example[st.binding] == nil {
					example[st.binding] = a
				}
			}
			if r.PerAdapter && (st.sends > 0 || st.binding != "") {
				day.Adapters = append(day.Adapters, AdapterDay{AdapterID: a.id, Name: a.name, Hypothetical: a.hypothetical,
					Sends: int(st.sends), FirstTouches: int(st.first), FollowUps: int(st.follow), Binding: string(st.binding)})
			}
		}
		var top policy.Name
		for _, p := range policy.Order {
			if bound[p] > bound[top] {
				top = p
			}
		}
		if top != "" {
			a := example[top]
			day.Binding = &Binding{Policy: string(top), AdapterID: a.id, AdapterName: a.name, Adapters: bound[top]}
		}
		res.Days = append(res.Days, day)
	}
	type acc struct{ enrolled, hypo []int64 }
	accs := make([]acc, len(m.groups))
	for _, e := range m.enr {
		g := &accs[m.versions[e.ver].group]
		if e.hypo {
			g.hypo = append(g.hypo, e.done)
		} else {
			g.enrolled = append(g.enrolled, e.done)
		}
	}
	hypoSeq := map[string]bool{}
	for _, e := range r.Changes.Enroll {
		hypoSeq[e.SequenceKey] = true
	}
	for gi, key := range m.groups {
		sr := SequenceResult{SequenceKey: key, Enrolled: completion(accs[gi].enrolled)}
		if hypoSeq[key] {
			c := completion(accs[gi].hypo)
			sr.Hypothetical = &c
		}
		sr.Variants = m.variantResult(gi)
		if sr.Enrolled.Contacts == 0 && sr.Hypothetical == nil {
			continue
		}
		res.Sequences = append(res.Sequences, sr)
	}
	return res
}

func completion(done []int64) Completion {
	c := Completion{Contacts: len(done)}
	var ts []int64
	for _, d := range done {
		if d > 0 {
			ts = append(ts, d)
		}
	}
	c.Completed = len(ts)
	slices.Sort(ts)
	pct := func(p float64) *time.Time {
		rank := int(math.Ceil(p*float64(len(done)))) - 1
		if len(done) == 0 || rank >= len(ts) {
			return nil
		}
		t := tm(ts[max(rank, 0)])
		return &t
	}
	c.P50, c.P90 = pct(0.5), pct(0.9)
	return c
}
