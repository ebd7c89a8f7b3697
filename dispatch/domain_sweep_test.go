package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/preflight/dnsresolver"
	"github.com/dripdrop/dripdrop/preflight/dnstest"
)

// The leader checks a new adapter's From domain on its next minute, and
// again a day later (an hour later while it fails).
func TestLeaderDomainSweep(t *testing.T) {
	t.Parallel()
	zone := dnstest.Start(t, `sweep.test. 300 IN TXT "v=spf1 +all"`, `sweep.test. 300 IN MX 10 mx.sweep.test.`)
	r := &dnsresolver.Resolver{Servers: []string{zone.Addr}, Timeout: 300 * time.Millisecond}
	from := "ops@sweep.test"
	k := testkit.NewWorld(t, testkit.WithAdapter(dripdrop.AdapterInput{FromAddress: &from}), testkit.WithStoreOptions(func(o *db.Options) { o.Resolver = r }))
	ctx, stop := context.WithCancel(context.Background())
	l := &dispatch.Leader{Store: k.Store, Holder: "solo", TTL: time.Minute, Resolution: 5 * time.Millisecond,
		Schedules: map[string]string{"rescue_stale_sending": "@every 1h", "health_sweep": "@every 1h", "idempotency_janitor": "@every 1h"}}
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	defer func() { stop(); <-done }()
	for deadline := time.Now().Add(3 * time.Second); !l.IsLeader(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leadership")
		}
	}
	d, err := k.Store.GetDomain(ctx, k.Tenant, "sweep.test")
	if err != nil || d.Checked {
		t.Fatalf("before the sweep: %+v %v", d, err)
	}
	waitChecked := func(after time.Time) db.SenderDomain {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			d, err := k.Store.GetDomain(ctx, k.Tenant, "sweep.test")
			if err != nil {
				t.Fatal(err)
			}
			if d.CheckedAt != nil && !d.CheckedAt.Before(after) {
				return d
			}
		}
		t.Fatalf("the leader did not check sweep.test after %v", after)
		return db.SenderDomain{}
	}
	k.Clock.Add(time.Minute)
	first := k.Clock.Now()
	d = waitChecked(first)
	if d.Status != "fail" || d.NextCheckAt.Sub(*d.CheckedAt) != time.Hour {
		t.Fatalf("after the first sweep: status %s, next %v after", d.Status, d.NextCheckAt.Sub(*d.CheckedAt))
	}
	asked := zone.Asked("sweep.test", "TXT")
	// Within the hour nothing is checked again.
	k.Clock.Add(30 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if n := zone.Asked("sweep.test", "TXT"); n != asked {
		t.Fatalf("checked again within the hour: %d questions, was %d", n, asked)
	}
	k.Clock.Add(31 * time.Minute)
	waitChecked(first.Add(time.Hour))
}
