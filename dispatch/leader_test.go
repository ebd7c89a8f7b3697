package dispatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch"
)

func TestLeaderElection(t *testing.T) {
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
