package forecast

import (
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/variant"
)

// hypoIDs names the synthetic ids of contacts enrolled in the simulation.
var hypoIDs = uuid.MustParse("0192c0de-0000-7000-8000-00000000f0ca")

func newSimVariants(st Step) *simVariants {
	if len(st.Variants) == 0 {
		return nil
	}
	sv := &simVariants{step: st.ID, winner: -1, sends: make([]int, len(st.Variants))}
	for i, v := range st.Variants {
		sv.keys = append(sv.keys, v.Key)
		sv.weights = append(sv.weights, v.Weight)
		if v.Key == st.Winner && st.Winner != "" {
			sv.winner = i
		}
	}
	return sv
}

// countVariant counts the send of enrollment ei's current step under the
// variant the engine gives it: the one its pending execution already has,
// else variant.Choose (the winner, else the weighted hash of the ids).
func (m *sim) countVariant(ei int32) {
	e := &m.enr[ei]
	vs := m.versions[e.ver].variants
	if int(e.pos) >= len(vs) || vs[e.pos] == nil {
		return
	}
	sv := vs[e.pos]
	if k, ok := m.given[ei]; ok {
		delete(m.given, ei)
		for i, key := range sv.keys {
			if key == k {
				sv.sends[i]++
				return
			}
		}
	}
	sv.sends[variant.Choose(m.ids[ei], sv.step, sv.weights, sv.winner)]++
}

// variantResult lists the sends per variant of a sequence's versions.
func (m *sim) variantResult(group int) []VariantSends {
	var out []VariantSends
	for _, v := range m.versions {
		if int(v.group) != group {
			continue
		}
		for pos, sv := range v.variants {
			if sv == nil {
				continue
			}
			for i, k := range sv.keys {
				out = append(out, VariantSends{Version: v.number, Position: pos + 1, Variant: k, Sends: sv.sends[i]})
			}
		}
	}
	return out
}
