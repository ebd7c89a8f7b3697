package db

import "testing"

// TestValuesChunks: a VALUES insert is split so that no statement carries
// more than 65 535 parameters, shared ones included, and no row is lost.
func TestValuesChunks(t *testing.T) {
	row := func(n int) []any { return make([]any, n) }
	rows := func(k, width int) [][]any {
		out := make([][]any, k)
		for i := range out {
			out[i] = row(width)
		}
		return out
	}
	for _, tc := range []struct {
		rows, width, shared int
		want                []int // rows per statement
	}{
		{0, 9, 4, nil},
		{1, 9, 4, []int{1}},
		{7281, 9, 4, []int{7281}},        // 4 + 7281·9 = 65 533
		{7282, 9, 4, []int{7281, 1}},     // one more row would make 65 542
		{10000, 9, 4, []int{7281, 2719}}, // a full batch of enrollments
		{21844, 3, 2, []int{21844}},      // 2 + 21 844·3 = 65 534
		{21845, 3, 2, []int{21844, 1}},   // 65 537
		{3, 70000, 0, []int{1, 1, 1}},    // a row wider than the limit still goes, alone
	} {
		got := valuesChunks(rows(tc.rows, tc.width), tc.shared)
		var sizes []int
		total := 0
		for _, c := range got {
			sizes = append(sizes, len(c))
			total += len(c)
			if len(c) > 1 && tc.shared+len(c)*tc.width > maxParams {
				t.Errorf("%d rows of %d: a statement of %d parameters", tc.rows, tc.width, tc.shared+len(c)*tc.width)
			}
		}
		if total != tc.rows || len(sizes) != len(tc.want) {
			t.Errorf("%d rows of %d (+%d shared): chunks %v, want %v", tc.rows, tc.width, tc.shared, sizes, tc.want)
			continue
		}
		for i := range sizes {
			if sizes[i] != tc.want[i] {
				t.Errorf("%d rows of %d (+%d shared): chunks %v, want %v", tc.rows, tc.width, tc.shared, sizes, tc.want)
				break
			}
		}
	}
}
