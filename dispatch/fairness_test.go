package dispatch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

// enrollBatch enrolls n contacts of tenant into its "welcome" sequence.
func (w *world) enrollBatch(tenant string, n int, prefix string) {
	w.t.Helper()
	contacts := make([]dripdrop.ContactInput, n)
	for i := range contacts {
		email := fmt.Sprintf("%s%d@example.com", prefix, i)
		contacts[i] = dripdrop.ContactInput{Email: &email}
	}
	for len(contacts) > 0 {
		k := min(len(contacts), 1000)
		if _, err := w.store.EnrollBatch(context.Background(), tenant, "welcome", contacts[:k]); err != nil {
			w.t.Fatal(err)
		}
		contacts = contacts[k:]
	}
}

// dueByAdapter counts scheduled executions per adapter.
func (w *world) dueByAdapter() map[uuid.UUID]int {
	out := map[uuid.UUID]int{}
	for _, r := range dbtest.Query(w.t, w.url, `SELECT adapter_id, count(*)::int FROM step_executions WHERE state = 'scheduled' GROUP BY adapter_id`) {
		out[uuid.UUID(r[0].([16]uint8))] = int(r[1].(int32))
	}
	return out
}

// runUntil runs the production loop until stop reports true for a sent job.
func runUntil(t *testing.T, cfg dispatch.Config, stop func(job *db.SendJob) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	cfg.OnSent = func(job *db.SendJob) {
		mu.Lock()
		defer mu.Unlock()
		if stop(job) {
			cancel()
		}
	}
	d, err := dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		cancel()
		<-done
		t.Fatal("the loop did not reach its goal in 2 minutes")
	}
}

// docs/sending.md: two adapters with backlogs send at the same rate, even when
// one backlog is much older (a global oldest-first claim gave 496 vs 5).
func TestTwoAdaptersWithBacklogsShareEvenly(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	other := w.secondAdapter("bea@acme.example.com")
	if _, err := w.store.AddPoolMember(context.Background(), w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &other.ID}); err != nil {
		t.Fatal(err)
	}
	w.enrollBatch(w.tenant, 240, "c")
	// The first adapter's backlog is an hour older.
	dbtest.Exec(t, w.url, `UPDATE step_executions SET scheduled_for = scheduled_for - interval '1 hour' WHERE adapter_id = $1`, w.adapter.ID)
	due := w.dueByAdapter()
	goal := min(due[w.adapter.ID], due[other.ID]) // both still have backlog when it is reached
	if goal < 80 {
		t.Fatalf("pinning left %v", due)
	}
	sent := map[uuid.UUID]int{}
	runUntil(t, dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second},
		func(job *db.SendJob) bool {
			sent[job.AdapterID]++
			return sent[w.adapter.ID]+sent[other.ID] >= goal
		})
	a, b := sent[w.adapter.ID], sent[other.ID]
	t.Logf("sends per adapter: %d (older backlog) and %d", a, b)
	if diff := max(a, b) - min(a, b); float64(diff) > 0.10*float64(max(a, b)) {
		t.Fatalf("sends per adapter %d and %d differ by more than 10%%", a, b)
	}
}

// docs/sending.md: a tenant with 100 000 due never delays another tenant's due
// send past one tick. The backlog is spread over the four adapters of the
// big tenant's pool, so it could fill every slot.
func TestTenantBacklogDoesNotDelayAnotherTenant(t *testing.T) {
	t.Parallel()
	const backlog = 100_000
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	for i := 0; i < 3; i++ {
		a := w.secondAdapter(fmt.Sprintf("m%d@acme.example.com", i))
		if _, err := w.store.AddPoolMember(context.Background(), w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &a.ID}); err != nil {
			t.Fatal(err)
		}
	}
	// The backlog straight from generate_series, as enrolling would leave
	// it: enrollment g of the active version, pinned to a member of its
	// pool (a quarter of the backlog each), and its first step due now.
	// Keys ascend, so index inserts append. The insert trigger on
	// step_executions fills the ready queue; ANALYZE as autovacuum would
	// after loads this size (the executions' foreign-key checks plan
	// against the new enrollments).
	start, now := time.Now(), w.clock.Now()
	dbtest.Exec(t, w.url, `INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, adapter_id, email, created_at, updated_at)
		SELECT v.tenant_key, uuid(lpad(to_hex(g), 32, '0')), v.sequence_id, v.id, m.adapter_id, 'big' || lpad(g::text, 6, '0') || '@example.com', $3, $3
		FROM generate_series(0, $2::int - 1) g
		JOIN sequence_versions v ON v.tenant_key = $1 AND v.state = 'active'
		JOIN (SELECT pool_id, adapter_id, (row_number() OVER (ORDER BY adapter_id) - 1)::int AS k, count(*) OVER ()::int AS n
		      FROM pool_members WHERE tenant_key = $1) m ON m.pool_id = v.pool_id AND m.k = g * m.n / $2::int`, w.tenant, backlog, now)
	dbtest.Exec(t, w.url, `ANALYZE enrollments`)
	dbtest.Exec(t, w.url, `INSERT INTO step_executions (tenant_key, id, enrollment_id, step_id, adapter_id, scheduled_for, created_at, updated_at)
		SELECT e.tenant_key, e.id, e.id, s.id, e.adapter_id, $2, $2, $2
		FROM enrollments e JOIN steps s ON s.tenant_key = e.tenant_key AND s.sequence_version_id = e.sequence_version_id AND s.position = 1
		WHERE e.tenant_key = $1`, w.tenant, now)
	dbtest.Exec(t, w.url, `ANALYZE step_executions, adapter_due`)
	rows := dbtest.Query(t, w.url, `SELECT count(*)::int, count(DISTINCT x.adapter_id)::int FROM step_executions x
		JOIN pool_members m ON m.tenant_key = x.tenant_key AND m.adapter_id = x.adapter_id AND m.pool_id = $3
		JOIN adapter_due d ON d.tenant_key = x.tenant_key AND d.adapter_id = x.adapter_id AND d.due_at <= $2
		WHERE x.tenant_key = $1 AND x.state = 'scheduled' AND x.scheduled_for <= $2`, w.tenant, now, w.pool.ID)
	if due, adapters := rows[0][0].(int32), rows[0][1].(int32); due != backlog || adapters != 4 {
		t.Fatalf("the big tenant has %d due over %d ready adapters, want %d over 4", due, adapters, backlog)
	}
	t.Logf("%d due executions generated in %v", backlog, time.Since(start).Round(time.Millisecond))
	w.addTenant("beta", dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	w.enrollBatch("beta", 1, "small")
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 8, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for tick := 0; tick < 2; tick++ { // every tenant's turn comes within one tick, wherever the rotation starts
		if _, err := d.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		d.Drain()
		rows := dbtest.Query(t, w.url, `SELECT count(*)::int FROM step_executions WHERE tenant_key = 'beta' AND state = 'sent'`)
		if rows[0][0].(int32) != 1 {
			t.Fatalf("tick %d: the small tenant's due send waited behind the big tenant's backlog", tick+1)
		}
	}
}

// docs/sending.md: a stalled SMTP server holds only its own adapter's slots.
// The stalled adapter has the older backlog, so it is claimed first and
// its max_in_flight (4) conversations hang for longer than the send
// timeout; the healthy adapter's 150 sends must all be recorded while
// those are still open — were the stalled server holding every worker,
// nothing else could be sent until its conversations timed out.
// (How much the neighbour slows the healthy adapter is a figure for
// benchmarks, not a wall-clock assertion; the log shows both times.)
func TestStalledServerDoesNotSlowAHealthyAdapter(t *testing.T) {
	// Not parallel: it compares wall-clock latency with the send timeout; other tests running at once would skew it.
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	stalled, err := smtpsink.Start("127.0.0.1:0", smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const sendTimeout = 8 * time.Second
	stalled.SetFaults(func(string, int) smtpsink.Fault {
		return smtpsink.Fault{Kind: smtpsink.Stall, Delay: sendTimeout + 2*time.Second}
	})
	t.Cleanup(func() { stalled.Close() })
	name, prov, from := "stalled", "sink", "stuck@acme.example.com"
	bad, err := w.store.CreateAdapter(context.Background(), w.tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: stalled.Port(), TLS: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	const healthy = 150
	run := func(withStalled bool) time.Duration {
		dbtest.Exec(t, w.url, `DELETE FROM pool_members WHERE pool_id = $1 AND adapter_id = $2`, w.pool.ID, bad.ID)
		dbtest.Exec(t, w.url, `UPDATE step_executions SET state = 'cancelled' WHERE state = 'scheduled'`)
		w.enrollBatch(w.tenant, healthy, fmt.Sprintf("h%d-", time.Now().UnixNano()))
		if withStalled {
			if _, err := w.store.AddPoolMember(context.Background(), w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &bad.ID}); err != nil {
				t.Fatal(err)
			}
			// The stalled adapter gets a backlog older than the healthy one's.
			w.enrollBatch(w.tenant, 200, fmt.Sprintf("s%d-", time.Now().UnixNano()))
			dbtest.Exec(t, w.url, `UPDATE step_executions SET adapter_id = $1, scheduled_for = scheduled_for - interval '1 hour'
				WHERE state = 'scheduled' AND enrollment_id IN (SELECT id FROM enrollments WHERE email LIKE 's%')`, bad.ID)
		}
		start := time.Now()
		var took time.Duration
		n := 0
		runUntil(t, dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 8, Lease: time.Minute, SendTimeout: sendTimeout},
			func(job *db.SendJob) bool {
				if job.AdapterID == bad.ID {
					t.Errorf("the stalled server completed a send")
				}
				if job.AdapterID == w.adapter.ID {
					if n++; n == healthy {
						took = time.Since(start)
					}
				}
				return n >= healthy
			})
		return took
	}
	alone := run(false)
	beside := run(true)
	t.Logf("%d healthy sends: %v alone, %v beside a stalled server", healthy, alone, beside)
	if beside >= sendTimeout {
		t.Fatalf("the healthy adapter's %d sends took %v beside a stalled server: they waited for its conversations to time out (%v)", healthy, beside, sendTimeout)
	}
	if got := len(stalled.Messages()); got != 0 {
		t.Fatalf("the stalled server accepted %d messages", got)
	}
}

// docs/sending.md "record what you know": the server accepted the message but
// recording it failed (twice, injected in the database); the worker retries
// the record itself, so nothing is left to the rescuer and nothing is sent
// twice.
func TestRecordFailureAfterAcceptIsRetriedWithoutDuplicate(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	dbtest.Exec(t, w.url, `CREATE SEQUENCE record_failures`)
	dbtest.Exec(t, w.url, `CREATE FUNCTION fail_record() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF OLD.state = 'sending' AND NEW.state = 'sent' AND nextval('record_failures') <= 2 THEN
				RAISE EXCEPTION 'injected failure of the record statement';
			END IF;
			RETURN NEW;
		END $$`)
	dbtest.Exec(t, w.url, `CREATE TRIGGER fail_record BEFORE UPDATE ON step_executions FOR EACH ROW EXECUTE FUNCTION fail_record()`)
	en := w.enroll("bob@example.com", nil)
	w.run()
	if n := dbtest.Query(t, w.url, `SELECT last_value FROM record_failures`)[0][0].(int64); n != 3 {
		t.Fatalf("the record ran %d times, want 3 (two injected failures, then success)", n)
	}
	x := w.enrollment(en.ID).Executions[0]
	if msgs := w.sink.Messages(); len(msgs) != 1 || x.State != "sent" || x.Attempt != 1 || msgs[0].MessageID != *x.OutMessageID {
		t.Fatalf("%d messages, execution %+v", len(msgs), x)
	}
	if n, err := w.store.RescueStale(context.Background(), w.tenant); n != 0 || err != nil {
		t.Fatalf("rescued %d (%v): the send was left to the rescuer", n, err)
	}
	if sent := w.ev.Named("dripdrop.dispatch.sent"); len(sent) != 1 {
		t.Fatalf("%d sent events, want 1", len(sent))
	}
}

// One reservation covers a claim's adapters; an adapter whose credentials
// cannot be opened (a rotated encryption key) must not fail the others:
// its execution goes back, it is blocked for a minute, the rest send.
func TestUnreadableCredentialsBlockOnlyTheirAdapter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	bad := w.secondAdapter("bad@acme.example.com")
	if _, err := w.store.AddPoolMember(context.Background(), w.tenant, w.pool.ID, dripdrop.MemberInput{AdapterID: &bad.ID}); err != nil {
		t.Fatal(err)
	}
	w.enrollBatch(w.tenant, 6, "c")
	dbtest.Exec(t, w.url, `UPDATE adapters SET credentials = '\x00112233'::bytea WHERE id = $1`, bad.ID)
	claimed, err := claimTenant(w.store, context.Background(), w.tenant, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	per := map[uuid.UUID]int{}
	for _, c := range claimed {
		per[c.AdapterID]++
	}
	if per[bad.ID] == 0 || per[w.adapter.ID] == 0 {
		t.Fatalf("the claim should cover both adapters: %v", per)
	}
	res, err := w.store.ReserveClaimed(context.Background(), claimed, time.Minute)
	if err != nil {
		t.Fatalf("one adapter's credentials failed the whole reservation: %v", err)
	}
	for i, r := range res {
		want := db.Reserved
		if claimed[i].AdapterID == bad.ID {
			want = db.Released
		}
		if r.Outcome != want {
			t.Fatalf("execution of adapter %v: %s, want %s", claimed[i].AdapterID, r.Outcome, want)
		}
	}
	rows := dbtest.Query(t, w.url, `SELECT next_send_at > $2::timestamptz FROM adapters WHERE id = $1`, bad.ID, w.clock.Now())
	if !rows[0][0].(bool) {
		t.Fatal("the adapter with unreadable credentials was not blocked")
	}
	if n := dbtest.Query(t, w.url, `SELECT count(*)::int FROM step_executions WHERE adapter_id = $1 AND state = 'scheduled' AND claimed_until IS NULL`, bad.ID)[0][0].(int32); int(n) != per[bad.ID] {
		t.Fatalf("%d of its %d executions went back to the queue", n, per[bad.ID])
	}
}

// docs/sending.md#fairness-and-concurrency: a tick asks only the tenants
// with due work. With 60 tenants of which one has a backlog, the loop
// claims for that one alone; the others are read once, in the agenda's
// first full read of the ready queue (one index probe each), and never
// claimed for.
func TestIdleTenantsAreNotAsked(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	claims, probes := map[string]int{}, map[string]int{}
	hook := func(sql string, args []any) {
		name, _, _ := strings.Cut(strings.TrimPrefix(sql, "-- name: "), " ")
		mu.Lock()
		defer mu.Unlock()
		switch name {
		case "ClaimReady":
			claims[args[3].(string)]++
		case "TenantNextDue":
			probes[args[0].(string)]++
		}
	}
	k := testkit.NewWorld(t, testkit.WithSteps(step("only", "Hi", "Body", 0)),
		testkit.WithStoreOptions(func(o *db.Options) { o.StatementHook = hook }))
	w := &world{World: k, t: t, url: k.URL, clock: k.Clock, store: k.Store, sink: k.Sink, ev: k.Events,
		adapter: k.Adapter, pool: k.Pool, tenant: k.Tenant, box: k.Box}
	const idle = 60
	for i := range idle {
		w.AddTenant(fmt.Sprintf("idle%02d", i), dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	}
	const backlog = 40
	w.enrollBatch(w.tenant, backlog, "c")
	sent := 0
	runUntil(t, dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second,
		PollInterval: time.Hour}, func(*db.SendJob) bool { sent++; return sent >= backlog })
	mu.Lock()
	defer mu.Unlock()
	if claims[w.tenant] == 0 {
		t.Fatalf("no claim for the tenant with the backlog: %v", claims)
	}
	for i := range idle {
		tn := fmt.Sprintf("idle%02d", i)
		if claims[tn] != 0 || probes[tn] != 1 {
			t.Errorf("idle tenant %s: %d claims and %d probes, want none and the first full read's one", tn, claims[tn], probes[tn])
		}
	}
	t.Logf("%d sends: %d claims of the busy tenant, %d probes of it", sent, claims[w.tenant], probes[w.tenant])
}
