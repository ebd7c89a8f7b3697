// Package variant holds the pure rules of step variants (docs/sequences.md#variants):
// which variant an enrollment gets at a step (Assign, Choose), the Wilson
// score interval of a rate (Wilson) and when one variant has won (Winner).
// It does no I/O and reads no clock; the engine (db, at reservation time)
// and the forecast call the same functions, so a forecast reproduces the
// engine's assignments exactly.
package variant

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/google/uuid"
)

// hashDomain separates this hash from every other use of SHA-256 in the
// engine; changing it would move every enrollment to another variant.
const hashDomain = "dripdrop/variant/v1"

// Point is where (enrollment, step) falls on [0, 2^64): the first eight
// bytes, big-endian, of SHA-256("dripdrop/variant/v1" ‖ enrollment id ‖
// step id), the ids as their 16 raw bytes.
func Point(enrollment, step uuid.UUID) uint64 {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write(enrollment[:])
	h.Write(step[:])
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}

// Assign is the variant (an index into weights) that an enrollment gets at
// a step: the point of (enrollment, step) scaled onto the sum of the
// weights, w = ⌊point·total / 2^64⌋, falls into variant i when the weights
// before i sum to at most w and with i's to more than w. The same ids and
// weights always give the same variant, on any replica and in the
// forecast. Weights ≤ 0 never win; with no positive weight Assign is 0.
func Assign(enrollment, step uuid.UUID, weights []int) int {
	var total uint64
	for _, w := range weights {
		if w > 0 {
			total += uint64(w)
		}
	}
	if total == 0 {
		return 0
	}
	at, _ := bits.Mul64(Point(enrollment, step), total)
	var acc uint64
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		acc += uint64(w)
		if at < acc {
			return i
		}
	}
	return len(weights) - 1
}

// Choose is the variant of a new assignment: the promoted winner when the
// step has one (winner ≥ 0), else Assign. An execution keeps the variant
// it was first given (the store records it): a promotion changes new
// assignments only.
func Choose(enrollment, step uuid.UUID, weights []int, winner int) int {
	if winner >= 0 && winner < len(weights) {
		return winner
	}
	return Assign(enrollment, step, weights)
}

// Z is the two-sided standard normal quantile of a confidence level
// (0.95 → 1.959964…): √2·erfinv(confidence).
func Z(confidence float64) float64 { return math.Sqrt2 * math.Erfinv(confidence) }

// Wilson is the Wilson score interval of successes out of n at the given
// two-sided confidence: with p = successes/n and z = Z(confidence),
//
//	(p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n).
//
// With n = 0 it is [0, 1].
func Wilson(successes, n int, confidence float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	successes = max(0, min(successes, n))
	z := Z(confidence)
	fn := float64(n)
	p := float64(successes) / fn
	z2 := z * z
	den := 1 + z2/fn
	center := (p + z2/(2*fn)) / den
	margin := z * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn)) / den
	return max(0, center-margin), min(1, center+margin)
}

// Arm is one variant's sample: messages sent and the successes of the
// metric (human replies, or positive ones).
type Arm struct {
	Sent      int
	Successes int
}

// Rule is a step's auto-winner setting.
type Rule struct {
	MinSent    int
	Confidence float64
}

// Winner reports the variant that has won: every variant has at least
// MinSent sent, and the Wilson lower bound of the winner's rate is above
// the Wilson upper bound of every other variant's (strictly). With fewer
// than two arms nothing wins.
func Winner(arms []Arm, r Rule) (int, bool) {
	if len(arms) < 2 {
		return -1, false
	}
	lo, hi := make([]float64, len(arms)), make([]float64, len(arms))
	for i, a := range arms {
		if a.Sent < r.MinSent || a.Sent <= 0 {
			return -1, false
		}
		lo[i], hi[i] = Wilson(a.Successes, a.Sent, r.Confidence)
	}
	for i := range arms {
		won := true
		for j := range arms {
			if j != i && !(lo[i] > hi[j]) {
				won = false
				break
			}
		}
		if won {
			return i, true
		}
	}
	return -1, false
}
