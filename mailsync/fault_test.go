package mailsync_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/internal/imaptest"
	"github.com/dripdrop/dripdrop/mailsync"
)

// Faults against the in-memory IMAP server (internal/imaptest, go-imap v1's
// server): UIDVALIDITY changes, throttling replies, a connection dropped in
// the middle of a FETCH and a message above 10 MiB.

func memServer(t testing.TB) (*imaptest.Server, string, int) {
	t.Helper()
	srv, err := imaptest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	host, p, _ := net.SplitHostPort(srv.Addr)
	port, _ := strconv.Atoi(p)
	return srv, host, port
}

func TestMemReplyStopsAndUnrelatedIsNeverStored(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port)
	srv.AddUser(w.user, w.pass)
	en, msgID := w.send("bob@prospect.example")
	// An old message, outside the 14-day backfill, and an unrelated one.
	if _, err := srv.Append(w.user, "INBOX", unrelated("old news"), time.Now().Add(-20*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Append(w.user, "INBOX", unrelated("50% off"), time.Now()); err != nil {
		t.Fatal(err)
	}
	s := w.syncer(context.Background(), 200*time.Millisecond)
	waitFor(t, 5*time.Second, "first sync", func() bool { return w.syncState(w.Adapter.ID).State == dripdrop.SyncOK })
	st := w.syncState(w.Adapter.ID)
	if st.Counts.Fetched != 1 || st.Counts.Skipped != 1 || st.Counts.Candidates != 0 {
		t.Fatalf("backfill counts %+v: want the one message of the last 14 days fetched and skipped", st.Counts)
	}
	uid, err := srv.Append(w.user, "INBOX", replyTo("bob@prospect.example", msgID, "Sounds good, call me."), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the reply to stop the enrollment", func() bool { return w.Enrollment(en.ID).State == "stopped" })
	if got := w.Enrollment(en.ID); got.StopReason == nil || *got.StopReason != "replied" {
		t.Fatalf("stop reason %v", got.StopReason)
	}
	if n := w.inboundCount(); n != 1 {
		t.Fatalf("%d inbound messages stored, want only the reply", n)
	}
	flags, _ := srv.Flags(w.user, "INBOX")
	for u, f := range flags {
		if len(f) != 0 {
			t.Fatalf("message %d has flags %v after sync; the mailbox must not change", u, f)
		}
	}
	waitFor(t, 3*time.Second, "cursor past the reply", func() bool {
		st := w.syncState(w.Adapter.ID)
		for _, f := range st.Folders {
			if f.Name == "INBOX" && f.LastUID == uid {
				return true
			}
		}
		return false
	})
	if s.Sessions() != 1 || srv.Logins() != 1 {
		t.Fatalf("sessions %d, logins %d: the connection must be reused across polls", s.Sessions(), srv.Logins())
	}
	// Idle polls write nothing.
	before, syncs := w.syncXmin(w.Adapter.ID), s.Syncs()
	waitFor(t, 5*time.Second, "five idle polls", func() bool { return s.Syncs() >= syncs+5 })
	if after := w.syncXmin(w.Adapter.ID); after != before {
		t.Fatalf("an idle poll wrote the sync row (xmin %s → %s)", before, after)
	}
}

func TestMemUIDValidityChangeResyncs(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port, "INBOX")
	srv.AddUser(w.user, w.pass)
	en, msgID := w.send("bob@prospect.example")
	if _, err := srv.Append(w.user, "INBOX", replyTo("bob@prospect.example", msgID, "yes"), time.Now()); err != nil {
		t.Fatal(err)
	}
	w.syncer(context.Background(), 200*time.Millisecond)
	waitFor(t, 5*time.Second, "reply applied", func() bool { return w.Enrollment(en.ID).State == "stopped" })
	waitFor(t, 3*time.Second, "cursor stored", func() bool {
		f := w.syncState(w.Adapter.ID).Folders
		return len(f) == 1 && f[0].UIDValidity == 1 && f[0].LastUID == 1
	})
	// The server rebuilt the mailbox: new UIDVALIDITY, the same message
	// renumbered. The resync reads it again as a duplicate (nothing
	// applied twice) and takes the new cursor.
	if err := srv.SetUIDValidity(w.user, "INBOX", 99); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "new uidvalidity", func() bool {
		f := w.syncState(w.Adapter.ID).Folders
		return len(f) == 1 && f[0].UIDValidity == 99
	})
	st := w.syncState(w.Adapter.ID)
	if st.Counts.Candidates != 2 || st.Counts.Applied != 1 || w.inboundCount() != 1 {
		t.Fatalf("after resync: counts %+v, %d inbound rows; want the reply read twice, applied once", st.Counts, w.inboundCount())
	}
}

func TestMemThrottlingBacksOffAndRecovers(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port, "INBOX")
	srv.AddUser(w.user, w.pass)
	srv.SetFault(w.user, "LOGIN", &imaptest.Fault{Code: "THROTTLED", Info: "Request is throttled. Suggested Backoff Time: 1000 milliseconds", Times: 2})
	const iv = 300 * time.Millisecond
	w.syncer(context.Background(), iv)
	waitFor(t, 5*time.Second, "throttled state", func() bool { return w.syncState(w.Adapter.ID).State == dripdrop.SyncThrottled })
	st := w.syncState(w.Adapter.ID)
	if st.LastError == nil || st.LastError.Reason != mailsync.ReasonThrottled || !strings.Contains(st.LastError.Message, "THROTTLED") {
		t.Fatalf("last error %+v: want reason throttled with the server's [THROTTLED] reply", st.LastError)
	}
	// First throttle: twice the interval.
	if d := st.NextSyncAt.Sub(st.LastError.At); d != 2*iv {
		t.Fatalf("retry after %v, want %v", d, 2*iv)
	}
	waitFor(t, 5*time.Second, "second failure", func() bool {
		return w.syncState(w.Adapter.ID).Failures >= 2 || w.syncState(w.Adapter.ID).State == dripdrop.SyncOK
	})
	waitFor(t, 10*time.Second, "recovery", func() bool { return w.syncState(w.Adapter.ID).State == dripdrop.SyncOK })
	ev := w.Events.FeedUntil(context.Background(), w.Store, w.Tenant, "dripdrop.mailbox.", "dripdrop.mailbox.sync_failed", "dripdrop.mailbox.sync_recovered")
	if n := len(ev["dripdrop.mailbox.sync_failed"]); n != 1 {
		t.Fatalf("%d sync_failed events for two failures with the same reason, want 1 (changes only)", n)
	}
	rec := ev["dripdrop.mailbox.sync_recovered"]
	if len(rec) != 1 || rec[0]["failures"] != float64(2) {
		t.Fatalf("sync_recovered %v", rec)
	}
	if ev["dripdrop.mailbox.sync_failed"][0]["reason"] != "throttled" || ev["dripdrop.mailbox.sync_failed"][0]["state"] != "throttled" {
		t.Fatalf("sync_failed %v", ev["dripdrop.mailbox.sync_failed"][0])
	}
}

func TestMemLimitReplyOnStatusIsThrottling(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port, "INBOX")
	srv.AddUser(w.user, w.pass)
	srv.SetFault(w.user, "STATUS", &imaptest.Fault{Code: "LIMIT", Info: "Too many simultaneous connections"})
	w.syncer(context.Background(), 300*time.Millisecond)
	waitFor(t, 5*time.Second, "throttled", func() bool { return w.syncState(w.Adapter.ID).State == dripdrop.SyncThrottled })
	if st := w.syncState(w.Adapter.ID); st.LastError.Reason != "throttled" {
		t.Fatalf("%+v", st.LastError)
	}
}

func TestMemConnectionDroppedMidFetch(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port, "INBOX")
	srv.AddUser(w.user, w.pass)
	en, msgID := w.send("bob@prospect.example")
	for i := 0; i < 20; i++ {
		if _, err := srv.Append(w.user, "INBOX", unrelated("noise "+strconv.Itoa(i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.Append(w.user, "INBOX", replyTo("bob@prospect.example", msgID, "interested"), time.Now()); err != nil {
		t.Fatal(err)
	}
	srv.CutNextFetch(300) // the envelope FETCH is cut after 300 bytes
	w.syncer(context.Background(), 200*time.Millisecond)
	waitFor(t, 10*time.Second, "reply applied after the cut", func() bool { return w.Enrollment(en.ID).State == "stopped" })
	if srv.Cuts() != 1 {
		t.Fatalf("%d cuts", srv.Cuts())
	}
	waitFor(t, 3*time.Second, "counts", func() bool { return w.syncState(w.Adapter.ID).Counts.Applied == 1 })
	if n := w.inboundCount(); n != 1 {
		t.Fatalf("%d inbound rows", n)
	}
}

func TestMemOversizeCandidateIsNotDownloaded(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	w := newSyncWorld(t, host, port, "INBOX")
	srv.AddUser(w.user, w.pass)
	en, msgID := w.send("bob@prospect.example")
	big := replyTo("bob@prospect.example", msgID, strings.Repeat("x", 70)+"\r\n")
	pad := bytes.Repeat([]byte(strings.Repeat("y", 76)+"\r\n"), (11<<20)/78)
	big = append(big, pad...)
	if _, err := srv.Append(w.user, "INBOX", big, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.syncer(context.Background(), 200*time.Millisecond)
	waitFor(t, 10*time.Second, "sync", func() bool {
		st := w.syncState(w.Adapter.ID)
		return st.State == dripdrop.SyncOK && len(st.Folders) == 1 && st.Folders[0].LastUID == 1
	})
	st := w.syncState(w.Adapter.ID)
	if st.Counts.Candidates != 1 || st.Counts.Skipped != 1 || st.Counts.Applied != 0 || w.inboundCount() != 0 {
		t.Fatalf("counts %+v, %d inbound: an 11 MiB candidate is counted and skipped, never read", st.Counts, w.inboundCount())
	}
	if w.Enrollment(en.ID).State != "active" {
		t.Fatal("enrollment changed")
	}
}

// A session outlives its command timeout while it waits for the next poll
// (go-imap v1 leaves each command's deadline on the connection).
func TestMemSessionSurvivesIdleLongerThanTimeout(t *testing.T) {
	t.Parallel()
	srv, host, port := memServer(t)
	srv.AddUser("u@acme.example.com", "pw")
	d := mailsync.IMAPDialer{Timeout: 200 * time.Millisecond}
	sess, err := d.Dial(context.Background(), host, port, "none", "", mailsync.Login{Username: "u@acme.example.com", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for i := 0; i < 3; i++ {
		if _, err := sess.Status("INBOX"); err != nil {
			t.Fatalf("poll %d: %v", i, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if srv.Logins() != 1 || srv.Open() != 1 {
		t.Fatalf("logins %d, open %d: the idle connection was dropped", srv.Logins(), srv.Open())
	}
}
