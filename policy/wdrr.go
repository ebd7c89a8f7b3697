package policy

// Smooth weighted round robin (docs/sending.md), the pick that pins an enrollment to
// one member of its pool.
//
// Counters are persisted by the caller per (pool, sequence version, member),
// so picks continue correctly across restarts and replicas; the caller
// serialises picks per pool. Pick is pure: it returns the winner and the new
// counters, and the caller stores them in the same transaction as the pin.

// WeightScale is the fixed-point scale of effective weights: a member of
// weight w with no health score has effective weight w × WeightScale.
const WeightScale = 1000

// Candidate is one pool member considered by Pick.
type Candidate struct {
	MemberOrder int // position in member-id order (the caller sorts by member id)
	Weight      int // configured weight (> 0)
	// HealthScore scales the weight when set (0..1); a score of 0 makes the
	// member ineligible.
	HealthScore *float64
	Eligible    bool
	Counter     int64
}

// EffectiveWeight is weight × WeightScale, scaled by the health score.
func (c Candidate) EffectiveWeight() int64 {
	w := int64(c.Weight) * WeightScale
	if c.HealthScore != nil {
		s := *c.HealthScore
		if s < 0 {
			s = 0
		}
		if s > 1 {
			s = 1
		}
		w = int64(float64(w)*s + 0.5)
	}
	return w
}

// Pick runs one smooth-WDRR round over cands (in member-id order) and
// returns the index of the winner, or -1 when no candidate is eligible.
// The counters of eligible members are updated in place; ineligible members
// keep theirs.
func Pick(cands []Candidate) int {
	var total int64
	winner := -1
	for i := range cands {
		c := &cands[i]
		w := c.EffectiveWeight()
		if !c.Eligible || w <= 0 {
			continue
		}
		c.Counter += w
		total += w
		if winner < 0 {
			winner = i
			continue
		}
		best := &cands[winner]
		bw := best.EffectiveWeight()
		switch {
		case c.Counter > best.Counter:
			winner = i
		case c.Counter == best.Counter && w > bw:
			winner = i
		case c.Counter == best.Counter && w == bw && c.MemberOrder < best.MemberOrder:
			winner = i
		}
	}
	if winner >= 0 {
		cands[winner].Counter -= total
	}
	return winner
}
