package variant_test

import (
	"math"
	"testing"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/variant"
)

func TestAssignIsDeterministicAndWeighted(t *testing.T) {
	t.Parallel()
	step := uuid.MustParse("0190a000-0000-7000-8000-000000000001")
	weights := []int{3, 1}
	counts := make([]int, 2)
	const n = 40000
	for i := range n {
		var e uuid.UUID
		e[0], e[1], e[2], e[15] = byte(i>>16), byte(i>>8), byte(i), 7
		a := variant.Assign(e, step, weights)
		if b := variant.Assign(e, step, weights); a != b {
			t.Fatalf("enrollment %d: %d then %d", i, a, b)
		}
		counts[a]++
	}
	// 3:1 → 30 000 / 10 000, within 2 %.
	if got := float64(counts[0]) / n; math.Abs(got-0.75) > 0.02 {
		t.Fatalf("share of variant 0 = %.4f, want 0.75 ± 0.02 (%v)", got, counts)
	}
}

func TestAssignKnownPoints(t *testing.T) {
	t.Parallel()
	e := uuid.MustParse("0190a000-0000-7000-8000-00000000e001")
	step := uuid.MustParse("0190a000-0000-7000-8000-000000000501")
	p := variant.Point(e, step)
	for _, tc := range []struct {
		weights []int
	}{{[]int{1, 1}}, {[]int{1, 2, 3}}, {[]int{5, 0, 5}}, {[]int{1, 1, 1, 1, 1}}} {
		var total uint64
		for _, w := range tc.weights {
			total += uint64(w)
		}
		// The documented rule: w = ⌊point·total/2^64⌋, then the cumulative walk.
		at := uint64((float64(p) / math.Exp2(64)) * float64(total))
		want, acc := -1, uint64(0)
		for i, w := range tc.weights {
			acc += uint64(w)
			if want < 0 && w > 0 && at < acc {
				want = i
			}
		}
		if got := variant.Assign(e, step, tc.weights); got != want {
			t.Errorf("weights %v: variant %d, want %d", tc.weights, got, want)
		}
	}
	// A zero weight never wins.
	for i := range 2000 {
		var en uuid.UUID
		en[0], en[1] = byte(i>>8), byte(i)
		if variant.Assign(en, step, []int{1, 0, 1}) == 1 {
			t.Fatal("a zero-weight variant was assigned")
		}
	}
	// Different steps of one enrollment are independent draws.
	other := uuid.MustParse("0190a000-0000-7000-8000-000000000502")
	same := 0
	for i := range 4000 {
		var en uuid.UUID
		en[0], en[1] = byte(i>>8), byte(i)
		if variant.Assign(en, step, []int{1, 1}) == variant.Assign(en, other, []int{1, 1}) {
			same++
		}
	}
	if same < 1800 || same > 2200 {
		t.Fatalf("%d of 4000 enrollments got the same variant on two steps; want about half", same)
	}
}

func TestChooseTakesTheWinner(t *testing.T) {
	t.Parallel()
	step := uuid.MustParse("0190a000-0000-7000-8000-000000000601")
	for i := range 100 {
		var e uuid.UUID
		e[3] = byte(i)
		if got := variant.Choose(e, step, []int{1, 1, 1}, 2); got != 2 {
			t.Fatalf("with a winner, Choose = %d, want 2", got)
		}
		if got, want := variant.Choose(e, step, []int{1, 1, 1}, -1), variant.Assign(e, step, []int{1, 1, 1}); got != want {
			t.Fatalf("without a winner, Choose = %d, want Assign's %d", got, want)
		}
	}
}

func TestWilson(t *testing.T) {
	t.Parallel()
	if z := variant.Z(0.95); math.Abs(z-1.959964) > 1e-6 {
		t.Fatalf("Z(0.95) = %v", z)
	}
	for _, tc := range []struct {
		s, n   int
		lo, hi float64
	}{
		{0, 100, 0, 0.036993},
		{10, 100, 0.055229, 0.174366},
		{50, 100, 0.403832, 0.596168},
		{100, 100, 0.963007, 1},
	} {
		lo, hi := variant.Wilson(tc.s, tc.n, 0.95)
		if math.Abs(lo-tc.lo) > 1e-5 || math.Abs(hi-tc.hi) > 1e-5 {
			t.Errorf("Wilson(%d, %d) = [%.6f, %.6f], want [%.6f, %.6f]", tc.s, tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	if lo, hi := variant.Wilson(0, 0, 0.95); lo != 0 || hi != 1 {
		t.Fatalf("Wilson of no sample = [%v, %v], want [0, 1]", lo, hi)
	}
}

// The rule at its boundary: with 100 sent each and 5 replies for B, A wins
// from 18 replies (Wilson lower bound 0.11700 > B's upper 0.11175) and not
// at 17 (0.10894); one more reply for B (upper 0.12477) takes the win away.
func TestWinnerBoundary(t *testing.T) {
	t.Parallel()
	rule := variant.Rule{MinSent: 100, Confidence: 0.95}
	for _, tc := range []struct {
		name   string
		arms   []variant.Arm
		winner int
	}{
		{"A at 18 replies beats B at 5", []variant.Arm{{100, 18}, {100, 5}}, 0},
		{"one reply fewer for A: no winner", []variant.Arm{{100, 17}, {100, 5}}, -1},
		{"one reply more for B: no winner", []variant.Arm{{100, 18}, {100, 6}}, -1},
		{"B may win too", []variant.Arm{{100, 5}, {100, 18}}, 1},
		{"one send short of min_sent: no winner", []variant.Arm{{100, 40}, {99, 0}}, -1},
		{"min_sent reached by every arm", []variant.Arm{{100, 40}, {100, 0}}, 0},
		{"three arms: must beat both", []variant.Arm{{100, 18}, {100, 5}, {100, 12}}, -1},
		{"three arms, clear winner", []variant.Arm{{100, 30}, {100, 5}, {100, 12}}, 0},
		{"one arm never wins", []variant.Arm{{1000, 900}}, -1},
		{"equal rates never win", []variant.Arm{{5000, 500}, {5000, 500}}, -1},
	} {
		got, ok := variant.Winner(tc.arms, rule)
		if ok != (tc.winner >= 0) || (ok && got != tc.winner) {
			t.Errorf("%s: Winner = %d, %v; want %d", tc.name, got, ok, tc.winner)
		}
	}
	// A stricter confidence needs more evidence: at 0.99, 18 vs 5 is not enough.
	if _, ok := variant.Winner([]variant.Arm{{100, 18}, {100, 5}}, variant.Rule{MinSent: 100, Confidence: 0.99}); ok {
		t.Error("18 vs 5 of 100 won at 0.99 confidence")
	}
}
