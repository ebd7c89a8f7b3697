package main

// Multi-process tests: real dripdrop binaries against one PostgreSQL and an
// SMTP sink in the test process.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/syncbuf"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func engineBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dripdrop-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "dripdrop")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type engineWorld struct {
	t     *testing.T
	url   string
	key   string
	store *db.Store
	sink  *smtpsink.Sink
}

func newEngineWorld(t *testing.T) *engineWorld {
	t.Helper()
	k := testkit.NewWorld(t, testkit.SystemClock(), testkit.WithoutTenant())
	w := &engineWorld{t: t, url: k.URL, key: k.Key, store: k.Store, sink: k.Sink}
	if _, _, err := w.store.CreateTenant(context.Background(), "acme", ""); err != nil {
		t.Fatal(err)
	}
	return w
}

// sequence creates an adapter (with in's limits), a pool and a one-step
// sequence, and enrolls n contacts @domain.
func (w *engineWorld) sequence(name string, in dripdrop.AdapterInput, n int) {
	w.t.Helper()
	ctx := context.Background()
	prov, from := "sink", name+"@acme.example.com"
	in.Name, in.Provider, in.FromAddress = &name, &prov, &from
	in.Credentials = &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none"}
	a, err := w.store.CreateAdapter(ctx, "acme", in)
	if err != nil {
		w.t.Fatal(err)
	}
	p, err := w.store.CreatePool(ctx, "acme", dripdrop.PoolInput{Name: &name, Members: []dripdrop.MemberInput{{AdapterID: &a.ID}}})
	if err != nil {
		w.t.Fatal(err)
	}
	subject, body, delay := "Hello {{first_name|there}}", "{Hi|Hello} from "+name, int64(0)
	if _, err := w.store.CreateSequence(ctx, "acme", dripdrop.SequenceInput{Key: &name, Name: &name, VersionInput: dripdrop.VersionInput{
		PoolID: &p.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59"},
		Steps: []dripdrop.StepInput{{Subject: &subject, BodyText: &body, DelaySeconds: &delay}},
	}}); err != nil {
		w.t.Fatal(err)
	}
	var contacts []dripdrop.ContactInput
	for i := 0; i < n; i++ {
		email := fmt.Sprintf("c%d@%s.example.com", i, name)
		contacts = append(contacts, dripdrop.ContactInput{Email: &email})
	}
	res, err := w.store.EnrollBatch(ctx, "acme", name, contacts)
	if err != nil || len(res) != n {
		w.t.Fatalf("enroll: %v", err)
	}
}

type engine struct {
	cmd *exec.Cmd
	out *syncbuf.Buffer // written by exec's copying goroutine while the engine runs
}

func (w *engineWorld) start(extra ...string) *engine {
	w.t.Helper()
	args := append([]string{"serve", "-database-url", w.url, "-encryption-key", w.key, "-listen", "127.0.0.1:0",
		"-send-lease", "8s", "-send-timeout", "5s", "-rescue-interval", "1s", "-poll-interval", "100ms", "-allow-private-targets", "-dns-servers", "off"}, extra...)
	cmd := exec.Command(engineBinary(w.t), args...)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	e := &engine{cmd: cmd, out: out}
	w.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return e
}

func (e *engine) stop(t *testing.T) {
	t.Helper()
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("engine exited with %v\n%s", err, e.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("engine did not stop on SIGTERM\n%s", e.out)
	}
}

func (w *engineWorld) count(sql string) int64 {
	w.t.Helper()
	return dbtest.Query(w.t, w.url, sql)[0][0].(int64)
}

func (w *engineWorld) waitFor(what string, timeout time.Duration, done func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCrashRecovery kills the engine with SIGKILL at random points, 20 times,
// while it sends, then lets a fresh engine finish. Counted like a queue
// checker: nothing is lost, a message arrives twice only for an execution
// that was rescued from "sending", duplicates share their Message-ID, and
// every execution has exactly one sent event.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	w := newEngineWorld(t)
	const n = 300
	w.sequence("crash", dripdrop.AdapterInput{}, n)
	w.sink.SetFaults(func(string, int) smtpsink.Fault {
		return smtpsink.Fault{Kind: smtpsink.Stall, Delay: 30 * time.Millisecond}
	})
	rng := rand.New(rand.NewPCG(7, 11))
	kills := 0
	for i := 0; i < 20; i++ {
		e := w.start("-workers", "4")
		// The first engine is killed only once it sends (a loaded machine
		// can take longer to start than the random lifetimes below), so
		// the kills interrupt sending; the others at random points.
		if i == 0 {
			w.waitFor("a first send", 60*time.Second, func() bool { return len(w.sink.Messages()) > 0 })
		}
		time.Sleep(time.Duration(150+rng.IntN(500)) * time.Millisecond)
		_ = e.cmd.Process.Kill()
		_ = e.cmd.Wait()
		kills++
	}
	sentBeforeFinal := len(w.sink.Messages())
	e := w.start("-workers", "8")
	w.waitFor("every execution sent", 90*time.Second, func() bool {
		return w.count("SELECT count(*) FROM step_executions WHERE state = 'sent'") == n
	})
	e.stop(t)

	rows := dbtest.Query(t, w.url, "SELECT out_message_id, rescues FROM step_executions")
	rescues := map[string]int{}
	for _, r := range rows {
		rescues[r[0].(string)] = int(r[1].(int32))
	}
	copies := map[string]int{}
	for _, m := range w.sink.Messages() {
		copies[m.MessageID]++
	}
	lost, unexpected, duplicated, rescued := 0, 0, 0, 0
	for id, r := range rescues {
		rescued += r
		switch c := copies[id]; {
		case c == 0:
			lost++
		case c > 1:
			duplicated += c - 1
			if c-1 > r {
				t.Errorf("%s arrived %d times but was rescued %d times", id, c, r)
			}
		}
	}
	for id := range copies {
		if _, ok := rescues[id]; !ok {
			unexpected++
		}
	}
	bad := dbtest.Query(t, w.url, "SELECT count(*) FROM (SELECT step_execution_id FROM message_events WHERE type = 'sent' GROUP BY 1 HAVING count(*) <> 1) x")[0][0].(int64)
	sentEvents := w.count("SELECT count(*) FROM message_events WHERE type = 'sent'")
	t.Logf("kills=%d sent_before_final_run=%d executions=%d lost=%d unexpected=%d duplicated=%d rescued=%d sent_events=%d",
		kills, sentBeforeFinal, n, lost, unexpected, duplicated, rescued, sentEvents)
	if lost != 0 || unexpected != 0 || bad != 0 || sentEvents != n {
		t.Fatalf("lost=%d unexpected=%d executions-without-exactly-one-sent-event=%d sent_events=%d", lost, unexpected, bad, sentEvents)
	}
	if sentBeforeFinal == 0 || sentBeforeFinal == n {
		t.Fatalf("the kills did not interrupt sending (%d of %d sent before the final run): the test proves nothing", sentBeforeFinal, n)
	}
}

// TestThreeEnginesShareTheWork runs three engines of eight workers each on
// one database. Adapter "bulk" (no limits) must send each execution exactly
// once; adapter "capped" (daily cap 20, minimum gap 2 s) must send exactly
// 20 messages, consecutive ones at least 2 s apart on the sink's clock.
func TestThreeEnginesShareTheWork(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	w := newEngineWorld(t)
	w.sequence("bulk", dripdrop.AdapterInput{}, 300)
	gap := 2
	w.sequence("capped", dripdrop.AdapterInput{MinGapSeconds: &gap, DailyCap: dripdrop.Nullable[int]{Set: true, Valid: true, Value: 20}}, 200)
	var engines []*engine
	for i := 0; i < 3; i++ {
		// Generous deadlines: a send that times out after the sink accepted
		// it is retried (a legitimate duplicate), which this test excludes.
		engines = append(engines, w.start("-workers", "8", "-send-lease", "2m", "-send-timeout", "1m"))
	}
	countTo := func(domain string) int {
		n := 0
		for _, m := range w.sink.Messages() {
			if strings.HasSuffix(m.To[0], "@"+domain+".example.com") {
				n++
			}
		}
		return n
	}
	defer func() {
		if t.Failed() {
			for i, e := range engines {
				for _, l := range strings.Split(e.out.String(), "\n") {
					if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") {
						t.Logf("engine %d: %s", i, l)
					}
				}
			}
		}
	}()
	w.waitFor("bulk sent", 60*time.Second, func() bool { return countTo("bulk") >= 300 })
	w.waitFor("20 capped sends", 90*time.Second, func() bool { return countTo("capped") >= 20 })
	time.Sleep(4 * time.Second) // a 21st send would have happened by now
	for _, e := range engines {
		e.stop(t)
	}
	seen := map[string]int{}
	var capped []time.Time
	for _, m := range w.sink.Messages() {
		seen[m.MessageID]++
		if strings.HasSuffix(m.To[0], "@capped.example.com") {
			capped = append(capped, m.ReceivedAt)
		}
	}
	for id, c := range seen {
		if c != 1 {
			r := dbtest.Query(t, w.url, "SELECT attempt, rescues, state FROM step_executions WHERE out_message_id = $1", id)
			t.Errorf("%s delivered %d times without any crash (attempt, rescues, state: %v)", id, c, r)
		}
	}
	if got := countTo("bulk"); got != 300 {
		t.Errorf("bulk: %d messages, want 300", got)
	}
	if len(capped) != 20 {
		t.Fatalf("capped adapter sent %d messages, want exactly its cap of 20", len(capped))
	}
	sort.Slice(capped, func(i, j int) bool { return capped[i].Before(capped[j]) })
	for i := 1; i < len(capped); i++ {
		if d := capped[i].Sub(capped[i-1]); d < 2*time.Second {
			t.Errorf("sends %d and %d of the capped adapter are %v apart, want ≥ 2 s", i-1, i, d)
		}
	}
	if n := w.count("SELECT count(*) FROM step_executions WHERE state = 'sending'"); n != 0 {
		t.Errorf("%d executions left sending after a graceful stop", n)
	}
}

// TestHealthSweepLeaderOnly: three engines share one database; only the
// leader runs the health sweep, and every due transition is applied exactly
// once: 10 adapters over the bounce threshold rest, 10 whose rest ended
// probe, and one whose rest ends later probes when its time comes.
func TestHealthSweepLeaderOnly(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	w := newEngineWorld(t)
	ctx := context.Background()
	mk := func(name string) {
		prov, from := "sink", name+"@acme.example.com"
		if _, err := w.store.CreateAdapter(ctx, "acme", dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		mk(fmt.Sprintf("breach-%d", i))
		mk(fmt.Sprintf("rested-%d", i))
	}
	mk("late")
	// 20 sends and one hard bounce each (5 %); rests that ended, and one
	// that ends in a few seconds.
	dbtest.Exec(t, w.url, `INSERT INTO message_events (tenant_key, id, type, subtype, adapter_id, occurred_at)
		SELECT 'acme', gen_random_uuid(), t.type, t.subtype, a.id, now()
		FROM adapters a, (SELECT 'sent' AS type, NULL AS subtype FROM generate_series(1, 20)
		                  UNION ALL SELECT 'bounced', 'hard') t
		WHERE a.name LIKE 'breach-%'`)
	dbtest.Exec(t, w.url, `UPDATE adapters SET health_state = 'resting', resting_until = now() - interval '1 second' WHERE name LIKE 'rested-%'`)
	dbtest.Exec(t, w.url, `UPDATE adapters SET health_state = 'resting', resting_until = now() + interval '3 seconds' WHERE name = 'late'`)

	var engines []*engine
	for i := 0; i < 3; i++ {
		engines = append(engines, w.start("-health-interval", "200ms", "-workers", "2"))
	}
	w.waitFor("every due transition", 60*time.Second, func() bool {
		return w.count("SELECT count(*) FROM adapters WHERE name LIKE 'breach-%' AND health_state = 'resting'") == 10 &&
			w.count("SELECT count(*) FROM adapters WHERE name LIKE 'rested-%' AND health_state = 'probing'") == 10 &&
			w.count("SELECT count(*) FROM adapters WHERE name = 'late' AND health_state = 'probing'") == 1
	})
	// The late adapter moved after the others, so sweeps kept running over
	// them meanwhile: each still has exactly one transition.
	for _, e := range engines {
		e.stop(t)
	}
	rows := dbtest.Query(t, w.url, `SELECT a.name, count(l.id), min(l.data->>'reason'), min(l.actor)
		FROM adapters a LEFT JOIN audit_log l ON l.tenant_key = a.tenant_key AND l.entity_id = a.id AND l.action = 'health_state_changed'
		GROUP BY a.name`)
	for _, r := range rows {
		name, n, reason := r[0].(string), r[1].(int64), r[2]
		want := "resting_elapsed"
		if strings.HasPrefix(name, "breach-") {
			want = "bounce_threshold"
		}
		if n != 1 || reason != want || r[3] != "engine" {
			t.Errorf("%s: %d transitions (reason %v, source %v), want exactly one %s by engine", name, n, reason, r[3], want)
		}
	}
	sweepers := 0
	for _, e := range engines {
		if strings.Contains(e.out.String(), "health sweep changed adapters") {
			sweepers++
		}
	}
	if sweepers != 1 {
		for i, e := range engines {
			t.Logf("engine %d:\n%s", i, e.out)
		}
		t.Errorf("%d engines applied health transitions, want only the leader", sweepers)
	}
}
