package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch"
)

// BenchmarkHotPath measures SPEC §12's hot path — claim → policies →
// render → SMTP to a loopback sink → durable record — against a bare
// baseline run in the same process on the same data shape: the same claim
// batches and SMTP transport, a prebuilt message and a one-row commit, no
// policies or rendering. It reports both rates and full/baseline (target ≥ 0.70).
//
// Policies are enforced under each adapter's row lock, so one adapter
// serialises its reservations; "adapters=4" spreads the same load over a
// pool of four mailboxes.
func BenchmarkHotPath(b *testing.B) {
	for _, adapters := range []int{1, 4} {
		b.Run(fmt.Sprintf("adapters=%d", adapters), func(b *testing.B) {
			const n = 1000
			var fullRate, baseRate float64
			for i := 0; i < b.N; i++ {
				baseRate += runBaseline(b, n, adapters)
				fullRate += runFull(b, n, adapters)
			}
			fullRate /= float64(b.N)
			baseRate /= float64(b.N)
			b.ReportMetric(fullRate, "sends/s")
			b.ReportMetric(baseRate, "baseline_sends/s")
			b.ReportMetric(fullRate/baseRate, "ratio")
		})
	}
}

func benchWorld(b *testing.B, n, adapters int) *world {
	w := newWorld(b, dripdrop.AdapterInput{}, step("only", "{Hi|Hello} {{first_name|there}}", "{Quick|Short} note for {{first_name|you}} at {{company|your team}}.", 0))
	for i := 1; i < adapters; i++ {
		a := w.secondAdapter(fmt.Sprintf("m%d@acme.example.com", i))
		if _, err := w.store.AddPoolMember(context.Background(), w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &a.ID}); err != nil {
			b.Fatal(err)
		}
	}
	var contacts []dripdrop.ContactInput
	for i := 0; i < n; i++ {
		email, first, company := fmt.Sprintf("c%d@example.com", i), "Ada", "Acme"
		contacts = append(contacts, dripdrop.ContactInput{Email: &email, FirstName: &first, Company: &company})
	}
	if _, err := w.store.EnrollBatch(context.Background(), w.tenant, "welcome", contacts); err != nil {
		b.Fatal(err)
	}
	return w
}

func runFull(b *testing.B, n, adapters int) float64 {
	b.StopTimer()
	w := benchWorld(b, n, adapters)
	b.StartTimer()
	start := time.Now()
	for {
		claimed, err := w.disp.Tick(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		w.disp.Drain()
		if claimed == 0 {
			break
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	if got := len(w.sink.Messages()); got != n {
		b.Fatalf("full path sent %d of %d", got, n)
	}
	return rate
}

func runBaseline(b *testing.B, n, adapters int) float64 {
	b.StopTimer()
	w := benchWorld(b, n, adapters)
	m := dispatch.Message{MessageID: "<bench@acme.example.com>", FromAddr: "ada@acme.example.com", To: "bob@example.com", Subject: "Hi", Text: "Body", Date: time.Now()}
	raw, _ := m.Build()
	tr := dispatch.NewSMTPTransport()
	defer tr.Close()
	creds := dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none"}
	ctx := context.Background()
	const workers = 4 // the dispatcher's worker count in newWorld
	b.StartTimer()
	start := time.Now()
	for sent := 0; sent < n; {
		claimed, err := w.store.ClaimTenant(ctx, w.tenant, workers, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, c := range claimed {
			wg.Add(1)
			go func(id uuid.UUID) {
				defer wg.Done()
				if _, err := tr.Send(ctx, dispatch.Delivery{AdapterID: w.adapter.ID, Credentials: creds, From: m.FromAddr, To: m.To, Data: raw}); err != nil {
					b.Error(err)
				}
				if err := w.store.RecordBareSend(ctx, w.tenant, id); err != nil {
					b.Error(err)
				}
			}(c.ID)
		}
		wg.Wait()
		sent += len(claimed)
		if len(claimed) == 0 {
			b.Fatal("baseline claimed nothing")
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
