package mailsync_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/client"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/dovecot"
	"github.com/dripdrop/dripdrop/mailsync"
)

// End to end against a real IMAP server, Dovecot (internal/dovecot): the
// engine sends through SMTP (the kit's sink), the prospect's answer is
// APPENDed to the sending mailbox, and the sync loop reads it.

func startDovecot(t *testing.T, users ...string) *dovecot.Server {
	t.Helper()
	var us []dovecot.User
	for _, u := range users {
		us = append(us, dovecot.User{Name: u, Password: "mailbox-pw"})
	}
	return dovecot.Start(t, dovecot.Options{Users: us})
}

// appendIMAP APPENDs raw to user's folder over IMAP, as a mail client or
// delivery agent would.
func appendIMAP(t testing.TB, d *dovecot.Server, user, folder string, raw []byte) {
	t.Helper()
	c, err := client.Dial(d.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Logout()
	if err := c.Login(user, "mailbox-pw"); err != nil {
		t.Fatal(err)
	}
	if err := c.Append(folder, nil, time.Now(), bytes.NewReader(raw)); err != nil {
		t.Fatalf("APPEND to %s: %v\n%s", folder, err, d.Log())
	}
}

func assertNoFlags(t testing.TB, d *dovecot.Server, user string, folders ...string) {
	t.Helper()
	for _, f := range folders {
		flags, err := d.Flags(user, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(flags) == 0 {
			t.Fatalf("no messages in %s to check", f)
		}
		for k, fl := range flags {
			if len(fl) != 0 {
				t.Fatalf("%s/%s has flags %v after sync: the engine must never change the mailbox", f, k, fl)
			}
		}
	}
}

func TestDovecotReplyOOOAndJunk(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, mailboxUser)
	w := newSyncWorld(t, d.Host, d.Port)
	// Mail that was there before: an unrelated message inside the backfill
	// window, written straight into the Maildir.
	if _, err := d.Deliver(mailboxUser, dovecot.Message{Raw: unrelated("welcome to the shop"), Received: time.Now().Add(-3 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	replied, id1 := w.send("bob@prospect.example")
	away, id2 := w.send("carol@prospect.example")
	junked, id3 := w.send("dan@prospect.example")
	const iv = time.Second
	s := w.syncer(context.Background(), iv)
	waitFor(t, 10*time.Second, "first sync", func() bool { return w.syncState(w.Adapter.ID).State == dripdrop.SyncOK })

	// A reply APPENDed to INBOX stops its enrollment within one interval.
	appended := time.Now()
	appendIMAP(t, d, mailboxUser, "INBOX", replyTo("bob@prospect.example", id1, "Yes, let's talk on Thursday."))
	waitFor(t, 10*time.Second, "reply to stop", func() bool { return w.Enrollment(replied.ID).State == "stopped" })
	if took := time.Since(appended); took > iv+iv/10+500*time.Millisecond {
		t.Fatalf("reply applied %v after it arrived, want within one interval (%v ±10%%)", took, iv)
	}
	// An out-of-office note reschedules the pending step to the return day.
	before := w.Enrollment(away.ID)
	appendIMAP(t, d, mailboxUser, "INBOX", oooTo("carol@prospect.example", id2, "2027-01-15"))
	waitFor(t, 10*time.Second, "ooo to reschedule", func() bool {
		for _, x := range w.Enrollment(away.ID).Executions {
			if x.State == "scheduled" && x.ScheduledFor.After(before.Executions[1].ScheduledFor) {
				return true
			}
		}
		return false
	})
	if got := w.Enrollment(away.ID); got.State != "active" {
		t.Fatalf("ooo enrollment %s", got.State)
	}
	// A reply the provider filed in \Junk counts too.
	appendIMAP(t, d, mailboxUser, "Junk", replyTo("dan@prospect.example", id3, "Please tell me more."))
	waitFor(t, 10*time.Second, "junk reply to stop", func() bool { return w.Enrollment(junked.ID).State == "stopped" })

	// Unrelated mail is never stored; nothing on the server changed.
	appendIMAP(t, d, mailboxUser, "INBOX", unrelated("weekly digest"))
	waitFor(t, 10*time.Second, "digest counted", func() bool { return w.syncState(w.Adapter.ID).Counts.Skipped >= 2 })
	rows := dbtest.Query(t, w.URL, "SELECT provider, intent FROM inbound_messages WHERE tenant_key = $1 ORDER BY received_at", w.Tenant)
	if len(rows) != 3 {
		t.Fatalf("inbound rows %v: want the reply, the ooo and the junk reply only", rows)
	}
	for _, r := range rows {
		if r[0] != "imap" {
			t.Fatalf("provider %v", r[0])
		}
	}
	if n := dbtest.Query(t, w.URL, "SELECT count(*) FROM inbound_messages WHERE subject ILIKE '%digest%' OR subject ILIKE '%shop%'")[0][0].(int64); n != 0 {
		t.Fatalf("%d unrelated messages stored", n)
	}
	assertNoFlags(t, d, mailboxUser, "INBOX", "Junk")
	st := w.syncState(w.Adapter.ID)
	names := []string{}
	for _, f := range st.Folders {
		names = append(names, f.Name)
		if f.UIDValidity == 0 || f.LastUID == 0 || f.HighestModSeq == 0 {
			t.Fatalf("folder cursor %+v: Dovecot offers CONDSTORE, so HIGHESTMODSEQ is kept", f)
		}
	}
	if strings.Join(names, ",") != "INBOX,Junk" {
		t.Fatalf("folders %v: want INBOX and the special-use \\Junk folder", names)
	}
	if s.Sessions() != 1 {
		t.Fatalf("%d sessions for one mailbox", s.Sessions())
	}
}

func TestDovecotDSNWhoseFailure(t *testing.T) {
	t.Parallel()
	d := startDovecot(t, mailboxUser)
	w := newSyncWorld(t, d.Host, d.Port, "INBOX")
	gone, id1 := w.send("gone@prospect.example")
	kept, id2 := w.send("erin@prospect.example")
	w.syncer(context.Background(), time.Second)
	// A recipient failure bounces the prospect; a DMARC rejection is the
	// sender's failure: nobody is suppressed, the enrollment goes on.
	appendIMAP(t, d, mailboxUser, "INBOX", dsnFor("gone@prospect.example", id1, "5.1.1", "550 5.1.1 <gone@prospect.example>: Recipient address rejected: User unknown"))
	appendIMAP(t, d, mailboxUser, "INBOX", dsnFor("erin@prospect.example", id2, "5.7.1", "550 5.7.1 Unauthenticated email from acme.example.com is not accepted due to domain's DMARC policy"))
	waitFor(t, 10*time.Second, "hard bounce to stop", func() bool { return w.Enrollment(gone.ID).State == "stopped" })
	if r := w.Enrollment(gone.ID).StopReason; r == nil || *r != "bounced" {
		t.Fatalf("stop reason %v", r)
	}
	waitFor(t, 10*time.Second, "both DSNs ingested", func() bool { return w.inboundCount() == 2 })
	if got := w.Enrollment(kept.ID); got.State == "stopped" {
		t.Fatalf("a sender-side DSN stopped the enrollment (%v)", got.StopReason)
	}
	sup := dbtest.Query(t, w.URL, "SELECT value FROM suppressions WHERE tenant_key = $1 ORDER BY value", w.Tenant)
	if len(sup) != 1 || sup[0][0] != "gone@prospect.example" {
		t.Fatalf("suppressions %v: only the recipient failure", sup)
	}
	assertNoFlags(t, d, mailboxUser, "INBOX")
}

// Two engines share the fleet: each mailbox is owned by one of them and
// synced once per interval.
func TestDovecotTwoEnginesSyncEachMailboxOncePerInterval(t *testing.T) {
	t.Parallel()
	const n = 8
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("box%d@acme.example.com", i)
	}
	d := startDovecot(t, users...)
	w := newSyncWorld(t, d.Host, d.Port, "INBOX")
	w.setIMAP(w.Adapter.ID, d.Host, d.Port, users[0], "mailbox-pw", "INBOX")
	for i := 1; i < n; i++ {
		a, err := w.Store.CreateAdapter(context.Background(), w.Tenant, dripdrop.AdapterInput{Name: ptr(fmt.Sprint("box", i)), Provider: ptr("sink"), FromAddress: ptr(users[i])})
		if err != nil {
			t.Fatal(err)
		}
		w.setIMAP(a.ID, d.Host, d.Port, users[i], "mailbox-pw", "INBOX")
	}
	const iv = 500 * time.Millisecond
	ctx := context.Background()
	a := w.syncer(ctx, iv)
	b := w.syncer(ctx, iv)
	waitFor(t, 10*time.Second, "the fleet split between two engines", func() bool {
		return a.Owned()+b.Owned() == n && a.Owned() > 0 && b.Owned() > 0
	})
	owners := dbtest.Query(t, w.URL, "SELECT lease_owner, count(*) FROM mailbox_sync GROUP BY lease_owner ORDER BY lease_owner")
	if len(owners) != 2 {
		t.Fatalf("owners %v", owners)
	}
	// Count syncs over a window of 8 intervals.
	time.Sleep(iv)
	s0 := a.Syncs() + b.Syncs()
	const window = 8 * iv
	time.Sleep(window)
	got := a.Syncs() + b.Syncs() - s0
	// Each mailbox once per interval ±10 %: between window/(1.1 iv) - 1 and
	// window/(0.9 iv) + 1 syncs each.
	per := func(f float64) int64 { return int64(float64(window) / (f * float64(iv))) }
	lo, hi := n*(per(1.1)-1), n*(per(0.9)+1)
	if got < lo || got > hi {
		t.Fatalf("%d syncs of %d mailboxes in %v at a %v interval, want %d…%d", got, n, window, iv, lo, hi)
	}
	if c := a.Sessions() + b.Sessions(); c != n {
		t.Fatalf("%d connections for %d mailboxes", c, n)
	}
}

func ptr[T any](v T) *T { return &v }

var _ = uuid.Nil
var _ = mailsync.Provider
