package api_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// BenchmarkEnrollBatch measures POST /v1/enrollments/batch with 10 000
// contacts per request, pinning included, over real HTTP and PostgreSQL.
// SPEC §12 target: ≥ 20 000 contacts/s.
func BenchmarkEnrollBatch(b *testing.B) {
	e := newBenchEnv(b)
	key := e.tenant("acme")
	e.weightedPool(key, "pause", 5, 3, 2)
	const n = 10_000
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		contacts := make([]any, n)
		for j := range contacts {
			contacts[j] = map[string]any{"email": fmt.Sprintf("c%d-%d@example.com", i, j), "first_name": "Ada", "company": "Acme", "vars": map[string]any{"plan": "pro"}}
		}
		body, _ := json.Marshal(map[string]any{"sequence_key": "seq-pause", "contacts": contacts})
		b.StartTimer()
		start := time.Now()
		r := e.do("POST", "/v1/enrollments/batch", key, body)
		total += time.Since(start)
		if r.status != 200 {
			b.Fatalf("batch: %d %s", r.status, r.body[:200])
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "contacts/s")
	b.ReportMetric(float64(n*b.N)/total.Seconds()/20000, "x_target")
}
