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

// BenchmarkEnrollBatchVerifyMX compares POST /v1/enrollments/batch of 10 000
// contacts over 200 domains at verify_recipients=mx, with every domain
// already in the tenant's recipient-domain cache, against the same batch at
// syntax, run alternately in one process (docs/preflight.md#recipients:
// within 10 %). It also proves the cached batch asks the DNS nothing.
func BenchmarkEnrollBatchVerifyMX(b *testing.B) {
	const n, domains = 10_000, 200
	var zone []string
	for d := 0; d < domains; d++ {
		zone = append(zone, fmt.Sprintf("d%d.bench.test. 3600 IN MX 10 aspmx.l.google.com.", d))
	}
	e, dns, _ := newPreflightEnv(b, zone...)
	key := e.tenant("bench")
	recipientSequenceFor(b, e, key, "syn", "syntax")
	recipientSequenceFor(b, e, key, "mx", "mx")
	batch := func(seq string, round int) time.Duration {
		contacts := make([]any, n)
		for j := range contacts {
			contacts[j] = map[string]any{"email": fmt.Sprintf("c%d-%d@d%d.bench.test", round, j, j%domains), "first_name": "Ada", "company": "Acme"}
		}
		body, _ := json.Marshal(map[string]any{"sequence_key": seq, "contacts": contacts})
		req, _ := http.NewRequest("POST", e.http.URL+"/v1/enrollments/batch", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		start := time.Now()
		res, err := e.http.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, err := io.ReadAll(res.Body)
		res.Body.Close()
		took := time.Since(start)
		var got struct {
			Created int `json:"created"`
		}
		if err != nil || res.StatusCode != 200 || json.Unmarshal(out, &got) != nil || got.Created != n {
			b.Fatalf("batch %s: %d %v %.300s", seq, res.StatusCode, err, out)
		}
		return took
	}
	b.StopTimer()
	batch("mx", -1) // fills the cache: one MX question per domain
	if asked := dns.Total(); asked != domains {
		b.Fatalf("the first mx batch asked %d DNS questions, want %d", asked, domains)
	}
	var syn, mx time.Duration
	for i := 0; i < b.N; i++ {
		b.StartTimer()
		syn += batch("syn", i)
		mx += batch("mx", i)
		b.StopTimer()
	}
	if asked := dns.Total(); asked != domains {
		b.Fatalf("cached mx batches asked %d more DNS questions", asked-domains)
	}
	b.ReportMetric(float64(n*b.N)/mx.Seconds(), "mx_contacts/s")
	b.ReportMetric(float64(n*b.N)/syn.Seconds(), "syntax_contacts/s")
	b.ReportMetric(mx.Seconds()/syn.Seconds(), "x_mx_over_syntax")
}
