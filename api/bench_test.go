package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkEnrollBatch measures POST /v1/enrollments/batch with 10 000
// contacts per request, pinning included, over real HTTP and PostgreSQL.
// README.md target: ≥ 20 000 contacts/s.
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
		req, err := http.NewRequest("POST", e.http.URL+"/v1/enrollments/batch", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		// Timed: the request until its answer is read, as a client sees it.
		b.StartTimer()
		start := time.Now()
		res, err := e.http.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(res.Body)
		res.Body.Close()
		total += time.Since(start)
		b.StopTimer()
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("batch: %d %v %.200s", res.StatusCode, err, out)
		}
		// The answer is checked against the OpenAPI document, untimed (the
		// check is the test's work, not the server's).
		checkContract(b, req, res.StatusCode, res.Header, out)
		var got struct {
			Results []struct{ Status string } `json:"results"`
		}
		if err := json.Unmarshal(out, &got); err != nil || len(got.Results) != n || got.Results[0].Status != "created" {
			b.Fatalf("batch: %d results, %v", len(got.Results), err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "contacts/s")
	b.ReportMetric(float64(n*b.N)/total.Seconds()/20000, "x_target")
}
