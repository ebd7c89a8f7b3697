package mailsync_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/client"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/internal/imaptest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailsync"
)

// runIMAPChild is the IMAP server process of BenchmarkMailboxSync: this
// test binary re-executed with MAILSYNC_IMAP_USERS=n serves n in-memory
// mailboxes (internal/imaptest) and prints its address, so the engine's
// CPU is measured without the server's.
func runIMAPChild(n int) int {
	srv, err := imaptest.Start()
	if err != nil {
		fmt.Println("child:", err)
		return 2
	}
	for i := 0; i < n; i++ {
		srv.AddUser(benchUser(i), "pw")
	}
	fmt.Printf("addr %s\n", srv.Addr)
	for range time.Tick(time.Second) {
		fmt.Printf("open %d\n", srv.Open())
	}
	return 0
}

func benchUser(i int) string { return fmt.Sprintf("box%04d@acme.example.com", i) }

// BenchmarkMailboxSync: 1 000 mailboxes on a local IMAP server (a separate
// process), nothing new: the engine's CPU share, the connections it holds
// and the database writes per idle poll; then one reply in each of 100
// mailboxes: time from APPEND to applied. The interval is
// MAILSYNC_BENCH_INTERVAL (default 6 s, time scaled by 10 from the 60 s
// target; `make bench-scale` runs it at 60 s). Run with -benchtime 1x.
func BenchmarkMailboxSync(b *testing.B) {
	iv := 6 * time.Second
	if v := os.Getenv("MAILSYNC_BENCH_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		iv = d
	}
	const n, replies = 1000, 100
	for i := 0; i < b.N; i++ {
		benchMailboxSync(b, n, replies, iv)
	}
}

func benchMailboxSync(b *testing.B, n, replies int, iv time.Duration) {
	ctx := context.Background()
	child := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	child.Env = append(os.Environ(), "MAILSYNC_IMAP_USERS="+strconv.Itoa(n))
	out, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	lines := bufio.NewScanner(out)
	var addr string
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "addr "); ok {
			addr = a
			break
		}
	}
	var openMu sync.Mutex
	serverOpen := 0
	go func() {
		for lines.Scan() {
			if v, ok := strings.CutPrefix(lines.Text(), "open "); ok {
				o, _ := strconv.Atoi(v)
				openMu.Lock()
				serverOpen = o
				openMu.Unlock()
			}
		}
	}()
	host, p, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(p)

	k := testkit.NewWorld(b, testkit.SystemClock(), testkit.WithURL(dbtest.DurableURL(b)), testkit.WithSteps(
		testkit.Step("intro", "Hello", "Hi, first note.", 0), testkit.Step("bump", "", "Second note.", 86400)))
	setup := time.Now()
	adapters := make([]dripdrop.Adapter, n)
	for i := 0; i < n; i++ {
		name, prov, from := fmt.Sprint("box", i), "sink", benchUser(i)
		a, err := k.Store.CreateAdapter(ctx, k.Tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
			Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: k.Sink.Port(), TLS: "none", Username: from, Password: "pw"},
			IMAP:        dripdrop.Nullable[dripdrop.IMAPSettings]{Set: true, Valid: true, Value: dripdrop.IMAPSettings{Host: host, Port: port, TLS: "none", Folders: []string{"INBOX"}}}})
		if err != nil {
			b.Fatal(err)
		}
		adapters[i] = a
	}
	// The first `replies` mailboxes get one sent message each (a pool of
	// them, one contact per member).
	var members []dripdrop.MemberInput
	for i := 0; i < replies; i++ {
		members = append(members, dripdrop.MemberInput{AdapterID: &adapters[i].ID})
	}
	pn := "bench"
	pool, err := k.Store.CreatePool(ctx, k.Tenant, dripdrop.PoolInput{Name: &pn, Members: members})
	if err != nil {
		b.Fatal(err)
	}
	seq, sname := "bench", "Bench"
	if _, err := k.Store.CreateSequence(ctx, k.Tenant, dripdrop.SequenceInput{Key: &seq, Name: &sname, VersionInput: dripdrop.VersionInput{
		PoolID: &pool.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"},
		Steps: []dripdrop.StepInput{testkit.Step("intro", "Hello", "Hi.", 0), testkit.Step("bump", "", "Again.", 86400)}}}); err != nil {
		b.Fatal(err)
	}
	var contacts []dripdrop.ContactInput
	for i := 0; i < replies; i++ {
		e := fmt.Sprintf("p%03d@prospect.example", i)
		contacts = append(contacts, dripdrop.ContactInput{Email: &e})
	}
	if _, err := k.Store.EnrollBatch(ctx, k.Tenant, seq, contacts); err != nil {
		b.Fatal(err)
	}
	tr := dispatch.NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	disp, err := dispatch.New(dispatch.Config{Store: k.Store, Transport: tr, Workers: 32, Lease: time.Minute, SendTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	testkit.Settle(b, disp.Tick, disp.Drain)
	b.Logf("setup: %d adapters, %d sends in %v", n, replies, time.Since(setup).Round(time.Millisecond))

	var appliedMu sync.Mutex
	applied := map[uuid.UUID]time.Time{}
	s := mailsync.New(mailsync.Config{Store: k.Store, Interval: iv, OnApplied: func(_ string, _ uuid.UUID, res ingest.InboundResult) {
		if res.EnrollmentID != nil {
			appliedMu.Lock()
			applied[*res.EnrollmentID] = time.Now()
			appliedMu.Unlock()
		}
	}})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(sctx) }()
	defer func() { cancel(); <-done }()

	// Every mailbox synced once (its backfill) before measuring.
	deadline := time.Now().Add(3*iv + time.Minute)
	for {
		r := dbtest.Query(b, k.URL, "SELECT count(*) FROM mailbox_sync WHERE state = 'ok'")
		if r[0][0].(int64) == int64(n) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %d mailboxes synced", r[0][0], n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Idle: three intervals with nothing new.
	time.Sleep(iv / 2)
	xid := dbtest.Query(b, k.URL, "SELECT txid_current()")[0][0].(int64)
	syncs0 := s.Syncs()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	window := 3 * iv
	maxSessions := int64(0)
	for time.Since(start) < window {
		if c := s.Sessions(); c > maxSessions {
			maxSessions = c
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	elapsed := time.Since(start)
	polls := s.Syncs() - syncs0
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	share := cpu.Seconds() / elapsed.Seconds()
	// Rows written in the window (their xmin is newer than the window's
	// start): mailbox rows, inbound rows, events; the heartbeat separately.
	written := func(table string) int64 {
		return dbtest.Query(b, k.URL, "SELECT count(*) FROM "+table+" WHERE xmin::text::bigint >= $1", xid%(1<<32))[0][0].(int64)
	}
	idleWrites := written("mailbox_sync") + written("inbound_messages") + written("telemetry_outbox")
	heartbeat := written("leader_leases")
	openMu.Lock()
	srvOpen := serverOpen
	openMu.Unlock()
	// CPU per poll is what the interval scales: at 60 s the share is
	// share × iv / 60 s.
	share60 := share * iv.Seconds() / 60
	b.Logf("idle: %d polls in %v (%.2f per mailbox per interval); engine CPU %v = %.2f %% of a core at a %v interval (%.2f %% scaled to 60 s); connections held %d (server sees %d) for %d mailboxes; rows written %d (+%d heartbeat row versions)",
		polls, elapsed.Round(time.Millisecond), float64(polls)/float64(n)/(elapsed.Seconds()/iv.Seconds()), cpu.Round(time.Millisecond), 100*share, iv, 100*share60, maxSessions, srvOpen, n, idleWrites, heartbeat)
	b.ReportMetric(100*share, "cpu_%_at_interval")
	b.ReportMetric(100*share60, "cpu_%_at_60s")
	b.ReportMetric(float64(maxSessions)/float64(n), "conns/mailbox")
	b.ReportMetric(float64(idleWrites)/float64(max(polls, 1)), "writes/idle_poll")

	// One reply in each of `replies` mailboxes.
	type sent struct {
		en    uuid.UUID
		user  string
		msgID string
	}
	rows := dbtest.Query(b, k.URL, `SELECT x.enrollment_id, a.from_address, x.out_message_id FROM step_executions x
		JOIN adapters a ON a.tenant_key = x.tenant_key AND a.id = x.adapter_id WHERE x.tenant_key = $1 AND x.state = 'sent'`, k.Tenant)
	if len(rows) != replies {
		b.Fatalf("%d sent messages, want %d", len(rows), replies)
	}
	var ss []sent
	for _, r := range rows {
		ss = append(ss, sent{en: uuid.UUID(r[0].([16]byte)), user: r[1].(string), msgID: r[2].(string)})
	}
	appended := make(map[uuid.UUID]time.Time, len(ss))
	var wg sync.WaitGroup
	var amu sync.Mutex
	sem := make(chan struct{}, 16)
	for _, x := range ss {
		wg.Add(1)
		sem <- struct{}{}
		go func(x sent) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := client.Dial(addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Logout()
			if err := c.Login(x.user, "pw"); err != nil {
				b.Error(err)
				return
			}
			at := time.Now()
			if err := c.Append("INBOX", nil, at, bytes.NewReader(replyTo("p@prospect.example", x.msgID, "Interested."))); err != nil {
				b.Error(err)
				return
			}
			amu.Lock()
			appended[x.en] = at
			amu.Unlock()
		}(x)
	}
	wg.Wait()
	deadline = time.Now().Add(3*iv + 30*time.Second)
	for {
		appliedMu.Lock()
		got := len(applied)
		appliedMu.Unlock()
		if got >= replies {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d replies applied", got, replies)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lat []time.Duration
	appliedMu.Lock()
	for en, at := range appended {
		lat = append(lat, applied[en].Sub(at))
	}
	appliedMu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	p99 := pct(0.99)
	b.Logf("replies: %d applied; APPEND → applied p50 %v, p99 %v, max %v at a %v interval (p99 = %.2f intervals; the target, p99 < 70 s at 60 s, is %.2f intervals)",
		len(lat), pct(0.5).Round(time.Millisecond), p99.Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), iv, p99.Seconds()/iv.Seconds(), 70.0/60)
	b.ReportMetric(p99.Seconds(), "applied_p99_s")
	b.ReportMetric(p99.Seconds()/iv.Seconds(), "applied_p99_intervals")
}
