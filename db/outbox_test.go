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

// TestFeedNeverSkips runs 8 concurrent writers per round, for two tenants,
// that begin (and take their transaction ids) in one order, write their
// events after random pauses and commit after more: the order in which
// transactions start, take ids and commit all differ. A reader tailing each
// tenant's feed all along, keeping a cursor after the last id it saw, must
// see every event exactly once, in the order the writers committed.
func TestFeedNeverSkips(t *testing.T) {
	t.Parallel()
	feedNeverSkips(t, dbtest.URL(t), []string{"acme", "globex"})
}

// TestCitusFeedNeverSkips is TestFeedNeverSkips on a Citus coordinator
// with two workers, the two tenants on different workers (each worker has
// transaction ids of its own).
func TestCitusFeedNeverSkips(t *testing.T) {
	t.Parallel()
	url := dbtest.CitusURL(t)
	feedNeverSkips(t, url, dbtest.CitusTenantsOnBothWorkers(t, url, "feed", 2))
}

func feedNeverSkips(t *testing.T, url string, tenants []string) {
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
	var mu sync.Mutex
	committed := map[string][]int64{} // per tenant, in commit order
	written := 0
	done := make(chan struct{})
	seen := make([][]int64, len(tenants)) // per tenant, each written by its reader only
	var readers sync.WaitGroup
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(done); readers.Wait() }) }
	defer stop() // before the store closes, however the test ends
	for ti, tn := range tenants {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var cursor int64
			for {
				select {
				case <-done:
					return
				default:
				}
				evs, err := store.Feed(ctx, tn, cursor, "", 3)
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range evs {
					seen[ti] = append(seen[ti], e.ID)
					cursor = e.ID
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < rounds; round++ {
		pause := make([][2]time.Duration, writers)
		for i := range pause {
			pause[i] = [2]time.Duration{time.Duration(rng.IntN(3000)) * time.Microsecond, time.Duration(rng.IntN(3000)) * time.Microsecond}
		}
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tn := tenants[(i+round)%2]
				tx, err := conns[i].Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				defer tx.Rollback(ctx) //nolint:errcheck
				var id int64
				err = tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&id)
				time.Sleep(pause[i][0])
				if err == nil {
					_, err = tx.Exec(ctx, db.InsertOutboxSQL, tn, []string{"dripdrop.enrollment.paused"}, []string{`{"tenant_key":"` + tn + `"}`}, time.Now(), []string{`{"count": 1}`})
				}
				if err == nil {
					err = tx.QueryRow(ctx, `SELECT o.id FROM telemetry_outbox o JOIN telemetry_feed_heads h USING (tenant_key)
						WHERE o.tenant_key = $1 AND o.feed_seq = h.last_seq`, tn).Scan(&id)
				}
				time.Sleep(pause[i][1])
				if err == nil {
					// The head row orders the commits of one tenant: record
					// the commit order while it is still held.
					mu.Lock()
					err = tx.Commit(ctx)
					if err == nil {
						committed[tn] = append(committed[tn], id)
						written++
					}
					mu.Unlock()
				}
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	// Let the readers catch up with the last commits, then stop them.
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := 0
		for _, tn := range tenants {
			got, err := store.Feed(ctx, tn, 0, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			evs += len(got)
		}
		if evs == written || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	stop()
	if written != writers*rounds {
		t.Fatalf("%d writers committed, want %d", written, writers*rounds)
	}
	for ti, tn := range tenants {
		if !slices.Equal(seen[ti], committed[tn]) {
			t.Errorf("tenant %s: the tailing reader saw %d events %v, want the %d committed, in commit order, %v", tn, len(seen[ti]), seen[ti], len(committed[tn]), committed[tn])
		}
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

// TestFeedSequenceMigration: migration 0050 gives the events already in
// the outbox feed positions in the order the feed listed them (writer
// transaction, then id) and starts each tenant's head after them, so a
// reader's cursor from before the upgrade resumes where it was.
func TestFeedSequenceMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	// Back to the schema before 0050, with events written then.
	for _, q := range []string{
		"DROP TABLE telemetry_feed_heads",
		"DROP INDEX telemetry_outbox_feed_seq_idx",
		"ALTER TABLE telemetry_outbox DROP COLUMN feed_seq",
		"CREATE INDEX telemetry_outbox_feed_idx ON telemetry_outbox (tenant_key, writer_xid, id)",
		"DELETE FROM schema_migrations WHERE version = 50",
		"INSERT INTO tenants (tenant_key, name) VALUES ('acme', ''), ('globex', '')",
	} {
		dbtest.Exec(t, url, q)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Writers commit in another order than their ids: an older transaction
	// (smaller xid) takes the larger id.
	old, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	insert := "INSERT INTO telemetry_outbox (tenant_key, name, occurred_at, status) VALUES ($1, 'dripdrop.enrollment.paused', now(), 'no_match') RETURNING id"
	var first, second, other int64
	insertNow := func(q string, args ...any) int64 {
		var id int64
		if err := pgxQueryRow(ctx, url, q, args, &id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	first = insertNow(insert, "acme") // a younger transaction, committed at once
	if err := old.QueryRow(ctx, insert, "acme").Scan(&second); err != nil {
		t.Fatal(err)
	}
	if err := old.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	other = insertNow(insert, "globex")
	if applied, err := db.Migrate(ctx, url); err != nil || !slices.Equal(applied, []int{50}) {
		t.Fatalf("migrate: %v %v", applied, err)
	}
	rows := dbtest.Query(t, url, "SELECT tenant_key, id, feed_seq FROM telemetry_outbox ORDER BY tenant_key, feed_seq")
	want := fmt.Sprint([][]any{{"acme", second, int64(1)}, {"acme", first, int64(2)}, {"globex", other, int64(1)}})
	if fmt.Sprint(rows) != want {
		t.Fatalf("positions %v, want %v (the old order: writer transaction, then id)", rows, want)
	}
	heads := dbtest.Query(t, url, "SELECT tenant_key, last_seq FROM telemetry_feed_heads ORDER BY tenant_key")
	if fmt.Sprint(heads) != fmt.Sprint([][]any{{"acme", int64(2)}, {"globex", int64(1)}}) {
		t.Fatalf("heads %v", heads)
	}
	// A new event follows the old ones in the feed.
	store, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.TxWithEvents(ctx, "acme", 1); err != nil {
		t.Fatal(err)
	}
	evs, err := store.Feed(ctx, "acme", second, "", 10)
	if err != nil || len(evs) != 2 || evs[0].ID != first {
		t.Fatalf("feed after the first old event: %+v, %v; want the second old event, then the new one", evs, err)
	}
}

func pgxQueryRow(ctx context.Context, url, q string, args []any, dst ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, q, args...).Scan(dst...)
}
