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

// TestFeedNeverSkips runs 8 concurrent writers per round, over two
// tenants, that take their transaction ids and outbox ids in one order and
// commit in another (a random permutation per round, every other round the
// highest id first). A reader of each tenant's feed, reading after every
// commit with a cursor after the last id it saw, must see every committed
// event exactly once, and nothing a writer rolled back.
func TestFeedNeverSkips(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	feedNeverSkips(t, url, []string{"acme", "globex"}, func() { dbtest.WaitOutboxPublished(t, url) })
}

// TestCitusFeedNeverSkips is TestFeedNeverSkips on a Citus coordinator
// with two workers, the two tenants on different workers (each worker has
// transaction ids and snapshots of its own).
func TestCitusFeedNeverSkips(t *testing.T) {
	t.Parallel()
	url := dbtest.CitusURL(t)
	feedNeverSkips(t, url, dbtest.CitusTenantsOnBothWorkers(t, url, "feed", 2), func() { dbtest.WaitOutboxPublished(t, url) })
}

// TestCitusOutboxOnOneWorker: on Citus the outbox seam's insert commits on
// the tenant's worker alone (no two-phase commit, pg_dist_transaction), its
// rows are no_match while the tenant has no active subscription and
// pending once it has one (the shard-local trigger decides), and the
// outbox metrics count them as on a single PostgreSQL.
func TestCitusOutboxOnOneWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "seam", 2)
	box, _ := vault.ParseKey(vault.GenerateKey())
	c := &captured{published: map[string]int{}, noMatch: map[string]int{}}
	store, err := db.Open(ctx, url, db.Options{Vault: box, OutboxMetrics: c})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tn := range tenants {
		if _, _, err := store.CreateTenant(ctx, tn, tn); err != nil {
			t.Fatal(err)
		}
	}
	twoPhase := func() int64 {
		return dbtest.Query(t, url, `SELECT count(DISTINCT regexp_replace(gid, '_[0-9]+$', '')) FROM pg_dist_transaction`)[0][0].(int64)
	}
	const paused = "dripdrop.enrollment.paused"
	statuses := func(tenant string) map[string]int64 {
		out := map[string]int64{}
		for _, r := range dbtest.Query(t, url, `SELECT status, count(*) FROM telemetry_outbox WHERE tenant_key = $1 AND name = $2 GROUP BY status`, tenant, paused) {
			out[r[0].(string)] = r[1].(int64)
		}
		return out
	}
	before := twoPhase()
	for _, tn := range tenants {
		for range 3 {
			if err := store.TxWithEvents(ctx, tn, 4); err != nil {
				t.Fatal(err)
			}
		}
	}
	hook := "https://hooks.example.com/dripdrop"
	if _, err := store.CreateSubscription(ctx, tenants[0], db.SubscriptionInput{URL: &hook}); err != nil {
		t.Fatal(err)
	}
	if err := store.TxWithEvents(ctx, tenants[0], 2); err != nil {
		t.Fatal(err)
	}
	if got := twoPhase() - before; got != 0 {
		t.Fatalf("%d of the outbox seam's transactions committed in two phases, want none", got)
	}
	if got := statuses(tenants[0]); got["no_match"] != 12 || got["pending"] != 2 || len(got) != 2 {
		t.Errorf("%s's rows by status: %v, want 12 no_match (before its subscription) and 2 pending", tenants[0], got)
	}
	if got := statuses(tenants[1]); got["no_match"] != 12 || len(got) != 1 {
		t.Errorf("%s's rows by status: %v, want 12 no_match", tenants[1], got)
	}
	c.mu.Lock()
	if c.published[paused] != 26 || c.noMatch[paused] != 24 {
		t.Errorf("metrics: %d published, %d no_match; want 26 and 24", c.published[paused], c.noMatch[paused])
	}
	c.mu.Unlock()
}

func feedNeverSkips(t *testing.T, url string, tenants []string, settle func()) {
	ctx := context.Background()
	store, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tn := range tenants {
		if _, _, err := store.CreateTenant(ctx, tn, tn); err != nil {
			t.Fatal(err)
		}
	}
	const writers, rounds = 8, 25
	conns := make([]*pgx.Conn, writers)
	for i := range conns {
		if conns[i], err = pgx.Connect(ctx, url); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close(ctx)
	}
	seen := make([][]int64, len(tenants)) // each written by its tenant's reader only
	cursors := make([]int64, len(tenants))
	read := func(ti int) error {
		for {
			evs, err := store.Feed(ctx, tenants[ti], cursors[ti], "", 3)
			if err != nil || len(evs) == 0 {
				return err
			}
			for _, e := range evs {
				seen[ti] = append(seen[ti], e.ID)
				cursors[ti] = e.ID
			}
		}
	}
	committed := map[string][]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range rounds {
		type writer struct {
			tx     pgx.Tx
			tenant string
			id     int64
		}
		ws := make([]writer, writers)
		ready := make(chan int)
		for i := range ws {
			ws[i].tenant = tenants[(i+round)%len(tenants)]
			go func() {
				defer func() { ready <- i }()
				tx, err := conns[i].Begin(ctx)
				meta := fmt.Sprintf(`{"tenant_key":"%s","writer":"%d/%d"}`, ws[i].tenant, round, i)
				if err == nil {
					ws[i].tx = tx
					if i%2 == 0 { // the outbox seam's insert
						_, err = tx.Exec(ctx, db.InsertOutboxSQL, ws[i].tenant, []string{"dripdrop.enrollment.paused"},
							[]string{meta}, time.Now(), []string{`{"count": 1}`})
					} else { // a row a statement writes itself (as the record and a batch enroll do)
						_, err = tx.Exec(ctx, `INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at, status)
							VALUES ($1, 'dripdrop.enrollment.paused', '{"count": 1}', $2, now(), 'no_match')`, ws[i].tenant, meta)
					}
				}
				if err == nil {
					err = tx.QueryRow(ctx, "SELECT id FROM telemetry_outbox WHERE tenant_key = $1 AND metadata->>'writer' = $2",
						ws[i].tenant, fmt.Sprintf("%d/%d", round, i)).Scan(&ws[i].id)
				}
				if err != nil {
					t.Error(err)
				}
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
		for k, i := range order {
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			if k == writers-1 && round%5 == 4 { // now and then a writer gives up
				if err := ws[i].tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := ws[i].tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			committed[ws[i].tenant] = append(committed[ws[i].tenant], ws[i].id)
			for ti := range tenants { // the readers, after every commit
				if err := read(ti); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Once nothing holds the feed back (another test's transaction in the
	// cluster can), the readers catch up.
	settle()
	for ti := range tenants {
		if err := read(ti); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for ti, tn := range tenants {
		want := slices.Sorted(slices.Values(committed[tn]))
		got := slices.Sorted(slices.Values(seen[ti]))
		if !slices.Equal(got, want) {
			t.Errorf("tenant %s: the tailing reader saw %d events %v, want the %d committed %v", tn, len(seen[ti]), seen[ti], len(want), want)
		}
		total += len(want)
	}
	if want := writers*rounds - rounds/5; total != want {
		t.Fatalf("%d events committed, want %d", total, want)
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
