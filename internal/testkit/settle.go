package testkit

import (
	"context"
	"testing"
)

// Settle ticks a dispatcher (its Tick and Drain) until a tick claims
// nothing, failing the test after 50 ticks: everything due at the clock's
// now has been sent, deferred or failed.
func Settle(t testing.TB, tick func(context.Context) (int, error), drain func()) {
	t.Helper()
	for i := 0; i < 50; i++ {
		n, err := tick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		drain()
		if n == 0 {
			return
		}
	}
	t.Fatal("dispatch did not settle")
}
