package api_test

import (
	"reflect"
	"testing"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

// TestForecastRoute: the forecast reads the tenant's snapshot, applies the
// hypothetical changes, answers per day and per sequence, and writes
// nothing.
func TestForecastRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	before := dbtest.RowCounts(t, e.dbURL)
	res := e.must(200, "POST", "/v1/forecast", f.key, map[string]any{
		"horizon_days": 14, "per_adapter": true,
		"changes": map[string]any{
			"enroll":          []any{map[string]any{"sequence_key": "welcome", "count": 5}},
			"adapter_changes": []any{map[string]any{"adapter_id": f.adapterA, "daily_cap": 2}},
		},
	})
	total, capped := 0, false
	for _, d := range res["days"].([]any) {
		day := d.(map[string]any)
		n := int(day["sends"].(float64))
		total += n
		if n > 2 {
			t.Fatalf("day %v sends %d over the hypothetical cap of 2", day["date"], n)
		}
		if b, ok := day["binding"].(map[string]any); ok && b["policy"] == "ramp_cap" && b["adapter_id"] == f.adapterA {
			capped = true
		}
		rows, _ := day["adapters"].([]any)
		for _, a := range rows {
			if a.(map[string]any)["adapter_id"] != f.adapterA {
				t.Fatalf("a send from an adapter outside the pool: %v", a)
			}
		}
	}
	if total != 12 || !capped {
		t.Fatalf("sends %d (want 1 enrolled + 5 hypothetical contacts × 2 steps = 12), cap binding seen %v", total, capped)
	}
	seqs := res["sequences"].([]any)
	s := seqs[0].(map[string]any)
	en, hy := s["enrolled"].(map[string]any), s["hypothetical"].(map[string]any)
	if len(seqs) != 1 || s["sequence_key"] != "welcome" || en["contacts"] != 1.0 || en["completed"] != 1.0 ||
		hy["contacts"] != 5.0 || hy["completed"] != 5.0 || hy["p50"] == nil || hy["p90"] == nil {
		t.Fatalf("sequences: %v", seqs)
	}
	if after := dbtest.RowCounts(t, e.dbURL); !reflect.DeepEqual(before, after) {
		t.Fatalf("the forecast wrote: before %v after %v", before, after)
	}

	assertProblem(t, e.do("POST", "/v1/forecast", f.key, map[string]any{"changes": map[string]any{"enroll": []any{map[string]any{"sequence_key": "nope", "count": 1}}}}), 404, "not_found", "changes.enroll[0].sequence_key")
	assertProblem(t, e.do("POST", "/v1/forecast", f.key, map[string]any{"changes": map[string]any{"enroll": []any{map[string]any{"sequence_key": "welcome", "count": 0}}}}), 422, "out_of_range", "changes.enroll[0].count")
	assertProblem(t, e.do("POST", "/v1/forecast", f.key, map[string]any{"horizon_days": 0.5}), 422, "invalid_type", "horizon_days")
	assertProblem(t, e.do("POST", "/v1/forecast", f.key, map[string]any{"changes": map[string]any{"add_adapters": []any{map[string]any{"pool_id": f.pool, "count": 1, "timezone": "Mars/Base"}}}}), 422, "invalid_timezone", "changes.add_adapters[0].timezone")
}
