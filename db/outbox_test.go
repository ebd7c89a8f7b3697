package db_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
)

// TestFeedNeverSkips runs 8 concurrent writers that take their outbox ids
// in one order and commit in another (a random permutation per round, the
// highest id often first). A reader that keeps a cursor after the last id
// it saw must still see every event exactly once, in id order.
func TestFeedNeverSkips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	store, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, _, err := store.CreateTenant(ctx, "acme", "Acme"); err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 8, 25
	rng := rand.New(rand.NewPCG(1, 2))
	var cursor int64
	var seen []int64
	var written []int64
	read := func() {
		for {
			evs, err := store.Feed(ctx, "acme", cursor, "", 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) == 0 {
				return
			}
			for _, e := range evs {
				seen = append(seen, e.ID)
				cursor = e.ID
			}
		}
	}
	conns := make([]*pgx.Conn, writers)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, url); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close(ctx)
	}
	for round := 0; round < rounds; round++ {
		type writer struct {
			tx pgx.Tx
			id int64
		}
		ws := make([]writer, writers)
		ready := make(chan int)
		for i := range ws {
			go func() {
				tx, err := conns[i].Begin(ctx)
				if err == nil {
					_, err = tx.Exec(ctx, db.InsertOutboxSQL, []string{"acme"}, []string{"dripdrop.enrollment.paused"}, []string{`{"tenant_key":"acme"}`}, time.Now(), []string{`{"count": 1}`})
				}
				if err == nil {
					err = tx.QueryRow(ctx, "SELECT max(id) FROM telemetry_outbox WHERE writer_xid = pg_current_xact_id()").Scan(&ws[i].id)
				}
				if err != nil {
					t.Error(err)
				}
				ws[i].tx = tx
				ready <- i
			}()
		}
		for range ws {
			<-ready
		}
		if t.Failed() {
			t.FailNow()
		}
		order := rng.Perm(writers)
		if round%2 == 0 { // every other round: strictly highest id first
			slices.SortFunc(order, func(a, b int) int { return int(ws[b].id - ws[a].id) })
		}
		for _, w := range ws {
			written = append(written, w.id)
		}
		for _, i := range order {
			if err := ws[i].tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			read()
		}
	}
	dbtest.WaitOutboxPublished(t, url) // other tests' transactions in the cluster may hold the feed back
	read()
	slices.Sort(written)
	got := slices.Clone(seen)
	slices.Sort(got)
	if !slices.Equal(got, written) {
		t.Fatalf("feed delivered %d events %v, want %d %v", len(seen), seen, len(written), written)
	}
}

// BenchmarkOutboxSeam: a one-write transaction reporting two events,
// with and without an active subscription (the outbox insert is pipelined
// with COMMIT, so both make the same number of round trips).
func BenchmarkOutboxSeam(b *testing.B) {
	for _, subscribed := range []bool{false, true} {
		b.Run(fmt.Sprintf("subscribed=%t", subscribed), func(b *testing.B) {
			ctx := context.Background()
			box, _ := vault.ParseKey(vault.GenerateKey())
			store := dbtest.Store(b, db.Options{Vault: box})
			if _, _, err := store.CreateTenant(ctx, "acme", ""); err != nil {
				b.Fatal(err)
			}
			if subscribed {
				url := "https://hooks.example.com/"
				if _, err := store.CreateSubscription(ctx, "acme", db.SubscriptionInput{URL: &url}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := store.TxWithEvents(ctx, "acme", 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type noMatchCounter struct {
	telemetry.NoOp
	mu sync.Mutex
	n  map[string]int
}

func (c *noMatchCounter) OutboxEventsNoMatch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[name]++
}

// An event of a tenant without an active subscription is written as
// no_match at once (and counted so), never left for the fan-out to update;
// the feed still has it. A subscribing tenant's events wait, pending.
func TestOutboxStatusAtWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	box, _ := vault.ParseKey(vault.GenerateKey())
	metrics := &noMatchCounter{n: map[string]int{}}
	url := dbtest.URL(t)
	store, err := db.Open(ctx, url, db.Options{Vault: box, OutboxMetrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tenant := range []string{"acme", "globex"} {
		if _, _, err := store.CreateTenant(ctx, tenant, ""); err != nil {
			t.Fatal(err)
		}
	}
	hook := "https://hooks.example.com/"
	if _, err := store.CreateSubscription(ctx, "globex", db.SubscriptionInput{URL: &hook}); err != nil {
		t.Fatal(err)
	}
	if err := store.TxWithEvents(ctx, "acme", 3); err != nil {
		t.Fatal(err)
	}
	if err := store.TxWithEvents(ctx, "globex", 2); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range dbtest.Query(t, url, `SELECT tenant_key || ':' || status, count(*) FROM telemetry_outbox
		WHERE name = 'dripdrop.enrollment.paused' GROUP BY 1`) {
		got[r[0].(string)] = int(r[1].(int64))
	}
	if len(got) != 2 || got["acme:no_match"] != 3 || got["globex:pending"] != 2 {
		t.Fatalf("outbox statuses %v, want acme:no_match 3 and globex:pending 2", got)
	}
	if metrics.n["dripdrop.enrollment.paused"] != 3 {
		t.Fatalf("no-match counted %v, want 3", metrics.n)
	}
	dbtest.WaitOutboxPublished(t, url)
	if evs, err := store.Feed(ctx, "acme", 0, "dripdrop.enrollment.paused", 10); err != nil || len(evs) != 3 {
		t.Fatalf("acme's feed: %d events, %v", len(evs), err)
	}
}
