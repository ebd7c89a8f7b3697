package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
)

// BenchmarkCitusHotPath runs BenchmarkHotPath's full path (one adapter,
// the default workers, 2 000 sends) on a Citus coordinator with two workers
// and, in the same run, on a single PostgreSQL of the same durability (the
// test clusters: fsync off), and reports both rates and their ratio. It
// skips without a Citus build.
func BenchmarkCitusHotPath(b *testing.B) {
	dbtest.SkipWithoutCitus(b)
	const n = 2000
	in := dripdrop.AdapterInput{MaxInFlight: dripdrop.Nullable[int]{Set: true, Valid: true, Value: dispatch.DefaultWorkers}}
	var citusRate, plainRate float64
	for i := 0; i < b.N; i++ {
		for _, citus := range []bool{true, false} {
			b.StopTimer()
			url := dbtest.URL(b)
			if citus {
				url = dbtest.CitusURL(b)
			}
			w := benchWorldAt(b, url, n, 1, in)
			b.StartTimer()
			rate := float64(n) / runLoop(b, w, dispatch.Config{Workers: dispatch.DefaultWorkers, Lease: time.Minute, SendTimeout: 10 * time.Second}, n).Seconds()
			if got := len(w.sink.Messages()); got < n {
				b.Fatalf("citus=%t: sent %d of %d", citus, got, n)
			}
			if citus {
				citusRate += rate
			} else {
				plainRate += rate
			}
		}
	}
	b.ReportMetric(citusRate/float64(b.N), "citus_sends/s")
	b.ReportMetric(plainRate/float64(b.N), "single_sends/s")
	b.ReportMetric(citusRate/plainRate, "citus/single")
}

// BenchmarkCitusEnrollBatch enrolls batches of 10 000 contacts with pinning
// (db.Store.EnrollBatch, what POST /v1/enrollments/batch calls) on Citus and
// on a single PostgreSQL of the same durability, in the same run.
func BenchmarkCitusEnrollBatch(b *testing.B) {
	dbtest.SkipWithoutCitus(b)
	const n = 10_000
	var citusTime, plainTime time.Duration
	for i := 0; i < b.N; i++ {
		for _, citus := range []bool{true, false} {
			b.StopTimer()
			url := dbtest.URL(b)
			if citus {
				url = dbtest.CitusURL(b)
			}
			w := newWorldAt(b, url, dripdrop.AdapterInput{})
			contacts := make([]dripdrop.ContactInput, n)
			for j := range contacts {
				email, first, company := fmt.Sprintf("c%d-%d@example.com", i, j), "Ada", "Acme"
				contacts[j] = dripdrop.ContactInput{Email: &email, FirstName: &first, Company: &company}
			}
			b.StartTimer()
			start := time.Now()
			res, err := w.store.EnrollBatch(context.Background(), w.tenant, "welcome", contacts)
			d := time.Since(start)
			b.StopTimer()
			if err != nil || len(res) != n {
				b.Fatalf("citus=%t: %d results, %v", citus, len(res), err)
			}
			if citus {
				citusTime += d
			} else {
				plainTime += d
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/citusTime.Seconds(), "citus_contacts/s")
	b.ReportMetric(float64(n*b.N)/plainTime.Seconds(), "single_contacts/s")
	b.ReportMetric(plainTime.Seconds()/citusTime.Seconds(), "citus/single")
}
