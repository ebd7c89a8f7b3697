package mailsync_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailsync"
)

// TestCitusMailboxSync runs mailbox sync on a distributed schema (a Citus
// coordinator with two workers), two tenants on different workers, each
// adapter's mailbox on Dovecot (and a second mailbox each): two replicas
// split the mailboxes between them, a reply in each mailbox stops its enrollment and reaches the
// tenant's feed, "sync now" is honoured, a disabled mailbox is dropped,
// and a clean shutdown gives the mailboxes back. Every statement the
// loops sent is then planned: single-shard but for the fleet reads named
// in dbtest.CitusAcrossWorkers. It skips without a Citus build.
func TestCitusMailboxSync(t *testing.T) {
	t.Parallel()
	url := dbtest.CitusURL(t)
	tenants := dbtest.CitusTenantsOnBothWorkers(t, url, "msync", 2)
	const other = "bea@acme.example.com"
	spare := []string{"cal@acme.example.com", "dee@acme.example.com"} // a second mailbox per tenant
	d := startDovecot(t, append([]string{mailboxUser, other}, spare...)...)
	rec := dbtest.NewStatementRecorder()
	w := newSyncWorldWith(t, []testkit.Option{testkit.WithURL(url), testkit.WithTenant(tenants[0]),
		testkit.WithStoreOptions(func(o *db.Options) { o.StatementHook = rec.Add })}, d.Host, d.Port, "INBOX")
	// The second tenant on the same engine, its adapter on its own mailbox.
	k2 := *w.World
	k2.Tenant = tenants[1]
	k2.APIKey, k2.Adapter, k2.Pool = w.AddTenant(tenants[1], dripdrop.AdapterInput{FromAddress: ptr(other)}, testkit.Step("intro", "Hello {{first_name|there}}", "Hi {{first_name}}, first note.", 0),
		testkit.Step("bump", "", "Second note.", 86400))
	w2 := &syncWorld{World: &k2, t: t, disp: w.disp, user: other, pass: w.pass}
	w2.setIMAP(k2.Adapter.ID, d.Host, d.Port, other, w.pass, "INBOX")
	worlds := []*syncWorld{w, w2}
	users := []string{mailboxUser, other}
	for i, sw := range worlds {
		a, err := w.Store.CreateAdapter(context.Background(), sw.Tenant, dripdrop.AdapterInput{Name: ptr("spare"), Provider: ptr("sink"), FromAddress: ptr(spare[i])})
		if err != nil {
			t.Fatal(err)
		}
		sw.setIMAP(a.ID, d.Host, d.Port, spare[i], w.pass, "INBOX")
	}

	ens := make([]dripdrop.Enrollment, 2)
	ids := make([]string, 2)
	for i, sw := range worlds {
		ens[i], ids[i] = sw.send("bob@prospect.example")
	}

	const iv = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var syncers []*mailsync.Syncer
	for range 2 {
		s := mailsync.New(mailsync.Config{Store: w.Store, Interval: iv, Tick: 10 * time.Millisecond, ClaimEvery: 50 * time.Millisecond,
			ChangesEvery: 50 * time.Millisecond, HeartbeatTTL: 3 * time.Second})
		syncers = append(syncers, s)
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.Run(ctx) }()
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stop)
	// Four mailboxes, two replicas: each claims about its share (a replica
	// holding more than its share and one gives some back).
	owned := func() int { return syncers[0].Owned() + syncers[1].Owned() }
	waitFor(t, 10*time.Second, "the four mailboxes owned, some by each replica", func() bool {
		return owned() == 4 && syncers[0].Owned() > 0 && syncers[1].Owned() > 0
	})
	if rows := dbtest.Query(t, url, "SELECT count(DISTINCT lease_owner), count(*) FROM mailbox_sync WHERE lease_owner IS NOT NULL"); rows[0][0].(int64) != 2 || rows[0][1].(int64) != 4 {
		t.Fatalf("mailbox owners and owned mailboxes %v, want the two replicas owning the four", rows)
	}

	// A reply in each mailbox stops its enrollment, and the tenant's feed
	// lists the inbound message and the stop.
	for i := range worlds {
		appendIMAP(t, d, users[i], "INBOX", replyTo("bob@prospect.example", ids[i], "Sounds good, call me."))
	}
	for i, sw := range worlds {
		waitFor(t, 10*time.Second, "the reply to stop tenant "+sw.Tenant+"'s enrollment", func() bool {
			return sw.Enrollment(ens[i].ID).State == dripdrop.EnrollmentStopped
		})
		got := sw.Enrollment(ens[i].ID)
		if got.StopReason == nil || *got.StopReason != "replied" {
			t.Errorf("tenant %s: enrollment stopped for %v, want replied", sw.Tenant, got.StopReason)
		}
		evs := w.Events.FeedUntil(context.Background(), w.Store, sw.Tenant, "dripdrop.", "dripdrop.ingest.inbound_message", "dripdrop.enrollment.stopped")
		if in := evs["dripdrop.ingest.inbound_message"]; len(in) != 1 || in[0]["intent"] != "reply" || in[0]["provider"] != mailsync.Provider {
			t.Errorf("tenant %s: feed inbound messages %v, want the one reply read from the mailbox", sw.Tenant, in)
		}
		if len(evs["dripdrop.enrollment.stopped"]) != 1 {
			t.Errorf("tenant %s: feed stops %v, want one", sw.Tenant, evs["dripdrop.enrollment.stopped"])
		}
	}

	// "Sync now" on the second tenant's mailbox: its owner syncs it again
	// (the success is recorded at once) well before the next interval.
	before := syncers[0].Syncs() + syncers[1].Syncs()
	if _, err := w.Store.RequestMailboxSync(ctx, w2.Tenant, w2.Adapter.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the requested sync", func() bool {
		st := w2.syncState(w2.Adapter.ID)
		return st.SyncRequestedAt == nil && syncers[0].Syncs()+syncers[1].Syncs() > before
	})

	// Disabling the first tenant's mailbox: its owner lets it go.
	off := false
	if _, err := w.Store.UpdateAdapter(ctx, w.Tenant, w.Adapter.ID, dripdrop.AdapterInput{IMAP: dripdrop.Nullable[dripdrop.IMAPSettings]{Set: true, Valid: true,
		Value: dripdrop.IMAPSettings{Host: d.Host, Port: d.Port, TLS: "none", Folders: []string{"INBOX"}, IntervalSeconds: 10, Enabled: &off}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the disabled mailbox dropped", func() bool { return owned() == 3 })

	// A clean shutdown gives the mailbox back.
	stop()
	if rows := dbtest.Query(t, url, "SELECT count(*) FROM mailbox_sync WHERE lease_owner IS NOT NULL"); rows[0][0].(int64) != 0 {
		t.Errorf("%v mailboxes still owned after both replicas stopped", rows[0][0])
	}
	if rec.Count("ClaimTenantMailboxes") == 0 {
		t.Errorf("the replicas never claimed per tenant")
	}
	t.Run("every statement is a router query", func(t *testing.T) { dbtest.RequireRouterPlans(t, url, rec) })
}
