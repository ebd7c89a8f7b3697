package mailsync_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailsync"
)

// syncWorld: the kit's world on the system clock (the sync loop waits in
// real time), one adapter whose mailbox lives on an IMAP server the test
// starts, a dispatcher sending to the kit's SMTP sink, and a "welcome"
// sequence whose follow-ups wait a day (so a reply has something to stop).
type syncWorld struct {
	*testkit.World
	t    testing.TB
	disp *dispatch.Dispatcher
	user string
	pass string
}

const mailboxUser = "ada@acme.example.com"

func newSyncWorld(t testing.TB, host string, port int, folders ...string) *syncWorld {
	t.Helper()
	return newSyncWorldWith(t, nil, host, port, folders...)
}

// newSyncWorldWith is newSyncWorld with more kit options.
func newSyncWorldWith(t testing.TB, opts []testkit.Option, host string, port int, folders ...string) *syncWorld {
	t.Helper()
	k := testkit.NewWorld(t, append([]testkit.Option{testkit.SystemClock(), testkit.WithSteps(
		testkit.Step("intro", "Hello {{first_name|there}}", "Hi {{first_name}}, first note.", 0),
		testkit.Step("bump", "", "Second note.", 86400),
		testkit.Step("last", "", "Third note.", 86400),
	)}, opts...)...)
	w := &syncWorld{World: k, t: t, user: mailboxUser, pass: "mailbox-pw"}
	w.setIMAP(k.Adapter.ID, host, port, w.user, w.pass, folders...)
	tr := dispatch.NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	var err error
	w.disp, err = dispatch.New(dispatch.Config{Store: k.Store, Transport: tr, Telemetry: k.Bus, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// setIMAP gives an adapter its mailbox: SMTP credentials with the
// mailbox's login (the sink accepts any AUTH) and plain IMAP settings.
func (w *syncWorld) setIMAP(adapter uuid.UUID, host string, port int, user, pass string, folders ...string) {
	w.t.Helper()
	in := dripdrop.AdapterInput{
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.Sink.Port(), TLS: "none", Username: user, Password: pass},
		IMAP:        dripdrop.Nullable[dripdrop.IMAPSettings]{Set: true, Valid: true, Value: dripdrop.IMAPSettings{Host: host, Port: port, TLS: "none", Folders: folders, IntervalSeconds: 10}},
	}
	if _, err := w.Store.UpdateAdapter(context.Background(), w.Tenant, adapter, in); err != nil {
		w.t.Fatal(err)
	}
}

// send enrolls email and sends the first step; it returns the enrollment
// and the Message-ID the step went out with.
func (w *syncWorld) send(email string) (dripdrop.Enrollment, string) {
	w.t.Helper()
	en := w.Enroll(email, nil)
	testkit.Settle(w.t, w.disp.Tick, w.disp.Drain)
	got := w.Enrollment(en.ID)
	for _, x := range got.Executions {
		if x.State == "sent" && x.OutMessageID != nil {
			return got, *x.OutMessageID
		}
	}
	w.t.Fatalf("first step of %s not sent: %+v", email, got.Executions)
	return got, ""
}

// syncer starts a sync loop with test timings (interval scaled to iv).
func (w *syncWorld) syncer(ctx context.Context, iv time.Duration, adjust ...func(*mailsync.Config)) *mailsync.Syncer {
	w.t.Helper()
	cfg := mailsync.Config{Store: w.Store, Interval: iv, Tick: 10 * time.Millisecond, ClaimEvery: 50 * time.Millisecond,
		ChangesEvery: 50 * time.Millisecond, HeartbeatTTL: 3 * time.Second}
	for _, f := range adjust {
		f(&cfg)
	}
	s := mailsync.New(cfg)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.Run(ctx) }()
	w.t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

// syncState reads GET /v1/adapters/{id}/sync's state from the store.
func (w *syncWorld) syncState(adapter uuid.UUID) dripdrop.MailboxSync {
	w.t.Helper()
	st, err := w.Store.MailboxSync(context.Background(), w.Tenant, adapter)
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inboundCount is the number of stored inbound messages of the tenant.
func (w *syncWorld) inboundCount() int {
	rows := dbtest.Query(w.t, w.URL, "SELECT count(*) FROM inbound_messages WHERE tenant_key = $1", w.Tenant)
	return int(rows[0][0].(int64))
}

// syncXmin is the row version of the adapter's sync row: it changes with
// every write to the row.
func (w *syncWorld) syncXmin(adapter uuid.UUID) string {
	rows := dbtest.Query(w.t, w.URL, "SELECT xmin::text FROM mailbox_sync WHERE tenant_key = $1 AND adapter_id = $2", w.Tenant, adapter)
	return rows[0][0].(string)
}

// Messages a prospect sends back.

func replyTo(from, msgID, body string) []byte {
	return []byte(fmt.Sprintf("From: Bob <%s>\r\nTo: %s\r\nSubject: Re: Hello Bob\r\nMessage-ID: <%s@prospect.example>\r\nIn-Reply-To: %s\r\nReferences: %s\r\nDate: %s\r\nContent-Type: text/plain\r\n\r\n%s\r\n",
		from, mailboxUser, uuid.NewString(), msgID, msgID, time.Now().UTC().Format(time.RFC1123Z), body))
}

func oooTo(from, msgID, returnDay string) []byte {
	return []byte(fmt.Sprintf("From: Bob <%s>\r\nTo: %s\r\nSubject: Out of office: Hello Bob\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <%s@prospect.example>\r\nIn-Reply-To: %s\r\nDate: %s\r\nContent-Type: text/plain\r\n\r\nI am out of the office until %s and will reply when I am back.\r\n",
		from, mailboxUser, uuid.NewString(), msgID, time.Now().UTC().Format(time.RFC1123Z), returnDay))
}

func dsnFor(rcpt, msgID, status, diag string) []byte {
	b := "b-" + uuid.NewString()[:8]
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: Mail Delivery System <MAILER-DAEMON@mx.acme.example.com>
To: %[1]s
Subject: Undelivered Mail Returned to Sender
Message-ID: <%[6]s@mx.acme.example.com>
Date: %[7]s
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="%[5]s"

--%[5]s
Content-Type: text/plain

Your message could not be delivered.

--%[5]s
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example.com

Final-Recipient: rfc822; %[2]s
Action: failed
Status: %[3]s
Diagnostic-Code: smtp; %[4]s

--%[5]s
Content-Type: text/rfc822-headers

Message-ID: %[8]s
From: Ada <ada@acme.example.com>
To: %[2]s
Subject: Hello Bob

--%[5]s--
`, mailboxUser, rcpt, status, diag, b, uuid.NewString(), time.Now().UTC().Format(time.RFC1123Z), msgID), "\n", "\r\n"))
}

func unrelated(subject string) []byte {
	return []byte(fmt.Sprintf("From: Newsletter <news@shop.example>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@shop.example>\r\nDate: %s\r\nContent-Type: text/plain\r\n\r\nBuy things.\r\n",
		mailboxUser, subject, uuid.NewString(), time.Now().UTC().Format(time.RFC1123Z)))
}
