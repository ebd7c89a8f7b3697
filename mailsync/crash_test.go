package mailsync_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/mailsync"
	"github.com/dripdrop/dripdrop/vault"
)

// The child engine of TestKill9MidSync: this test binary re-executed with
// MAILSYNC_CHILD_DB set runs a sync loop that prints each applied message
// and takes its time over each, until it is killed.
func TestMain(m *testing.M) {
	if url := os.Getenv("MAILSYNC_CHILD_DB"); url != "" {
		os.Exit(runChild(url))
	}
	if v := os.Getenv("MAILSYNC_IMAP_USERS"); v != "" {
		n, _ := strconv.Atoi(v)
		os.Exit(runIMAPChild(n))
	}
	os.Exit(m.Run())
}

func runChild(url string) int {
	box, err := vault.ParseKey(os.Getenv("MAILSYNC_CHILD_KEY"))
	if err != nil {
		fmt.Println("child: key:", err)
		return 2
	}
	store, err := db.Open(context.Background(), url, db.Options{Vault: box})
	if err != nil {
		fmt.Println("child: open:", err)
		return 2
	}
	s := mailsync.New(mailsync.Config{Store: store, Owner: "child", Interval: time.Second, Tick: 10 * time.Millisecond,
		ClaimEvery: 50 * time.Millisecond, HeartbeatTTL: 2 * time.Second,
		OnApplied: func(_ string, _ uuid.UUID, res ingest.InboundResult) {
			fmt.Printf("applied %s\n", res.MessageID)
			time.Sleep(150 * time.Millisecond)
		}})
	_ = s.Run(context.Background())
	return 0
}

func TestKill9MidSync(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, mailboxUser)
	w := newSyncWorld(t, d.Host, d.Port, "INBOX")
	const n = 30
	ens := make([]dripdrop.Enrollment, n)
	for i := range ens {
		var id string
		ens[i], id = w.send(fmt.Sprintf("p%02d@prospect.example", i))
		appendIMAP(t, d, mailboxUser, "INBOX", replyTo(fmt.Sprintf("p%02d@prospect.example", i), id, "Count me in."))
	}

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "MAILSYNC_CHILD_DB="+w.URL, "MAILSYNC_CHILD_KEY="+w.Key)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	lines := bufio.NewScanner(out)
	applied := 0
	for applied < 5 && lines.Scan() {
		if strings.HasPrefix(lines.Text(), "applied ") {
			applied++
		} else {
			t.Logf("child: %s", lines.Text())
		}
	}
	if applied < 5 {
		t.Fatalf("child applied %d before it ended", applied)
	}
	// Mid-sync: 5 of 30 replies applied, the cursor not yet stored.
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "applied ") {
			applied++
		}
	}
	if cur := w.syncState(w.Adapter.ID).Folders; len(cur) != 0 {
		t.Logf("cursor stored before the kill: %+v", cur)
	}
	// A second engine takes the mailbox once the child's heartbeat lapsed
	// (2 s) and finishes the work: nothing lost, nothing applied twice.
	s := w.syncer(context.Background(), time.Second)
	waitFor(t, 20*time.Second, "every enrollment stopped", func() bool {
		for _, e := range ens {
			if w.Enrollment(e.ID).State != "stopped" {
				return false
			}
		}
		return true
	})
	if got := w.inboundCount(); got != n {
		t.Fatalf("%d inbound rows for %d replies", got, n)
	}
	stops := dbtest.Query(t, w.URL, "SELECT count(*) FROM telemetry_outbox WHERE tenant_key = $1 AND name = 'dripdrop.enrollment.stopped'", w.Tenant)[0][0].(int64)
	if stops != n {
		t.Fatalf("%d stop events for %d enrollments: something was applied twice", stops, n)
	}
	if s.Owned() != 1 {
		t.Fatalf("the new engine owns %d mailboxes", s.Owned())
	}
	t.Logf("child applied %d of %d before kill -9; the second engine applied the rest", applied, n)
}
