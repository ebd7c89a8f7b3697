package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch"
)

func TestLeaderElection(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	ctx := context.Background()
	a := &dispatch.Leader{Store: w.store, Holder: "a", TTL: 300 * time.Millisecond}
	b := &dispatch.Leader{Store: w.store, Holder: "b", TTL: 300 * time.Millisecond}
	if ok, err := w.store.TryLeadership(ctx, "dripdrop-leader", "a", time.Minute); !ok || err != nil {
		t.Fatalf("a: %v %v", ok, err)
	}
	if ok, _ := w.store.TryLeadership(ctx, "dripdrop-leader", "b", time.Minute); ok {
		t.Fatal("b won while a's lease is valid")
	}
	if ok, _ := w.store.TryLeadership(ctx, "dripdrop-leader", "a", time.Minute); !ok {
		t.Fatal("a cannot renew its own lease")
	}
	if err := w.store.ResignLeadership(ctx, "dripdrop-leader", "a"); err != nil {
		t.Fatal(err)
	}
	// Two campaigning processes: exactly one leads; when it stops, the other takes over.
	actx, stopA := context.WithCancel(ctx)
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	go a.Run(actx)
	time.Sleep(50 * time.Millisecond)
	go b.Run(bctx)
	deadline := time.Now().Add(3 * time.Second)
	for !(a.IsLeader() != b.IsLeader()) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if a.IsLeader() == b.IsLeader() {
		t.Fatalf("leaders: a=%v b=%v, want exactly one", a.IsLeader(), b.IsLeader())
	}
	first := a
	other := b
	if b.IsLeader() {
		first, other = b, a
	}
	if first == a {
		stopA()
	} else {
		stopB()
	}
	deadline = time.Now().Add(3 * time.Second)
	for !other.IsLeader() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !other.IsLeader() {
		t.Fatal("the standby did not take over after the leader stopped")
	}
	stopA()
}

// The leader's duties run on their schedules read against the store's
// clock: with the injected clock standing still nothing runs, however long
// the process waits; a minute on the clock runs the minute's duty once.
func TestLeaderDutiesFollowTheInjectedClock(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	runs := make(chan time.Time, 10)
	l := &dispatch.Leader{Store: w.store, Holder: "solo", TTL: time.Minute, Resolution: 5 * time.Millisecond,
		Schedules: map[string]string{"rescue_stale_sending": "@every 1h", "health_sweep": "@every 1h", "idempotency_janitor": "@every 1h", "probe": "@every 1m"},
		Duties:    map[string]func(context.Context) error{"probe": func(context.Context) error { runs <- w.clock.Now(); return nil }}}
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	for deadline := time.Now().Add(3 * time.Second); !l.IsLeader(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leadership")
		}
	}
	time.Sleep(150 * time.Millisecond) // 30 resolutions with the clock still
	if len(runs) != 0 {
		t.Fatalf("%d runs while the clock stood still", len(runs))
	}
	start := w.clock.Now()
	w.clock.Add(59 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if len(runs) != 0 {
		t.Fatal("the minute's duty ran after 59 s on the clock")
	}
	w.clock.Add(time.Second)
	select {
	case at := <-runs:
		if at.Sub(start) != time.Minute {
			t.Fatalf("ran at +%v on the clock, want +1m", at.Sub(start))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the minute's duty did not run after a minute on the clock")
	}
	time.Sleep(50 * time.Millisecond)
	if len(runs) != 0 {
		t.Fatal("the duty ran twice for one minute")
	}
	stop()
	<-done
}
