package dispatch_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
)

// Resumes and claims of the same adapter take adapter_due and
// step_executions in one order (executions first): run together, neither
// deadlocks. A resume's trigger wakes the adapter's queue row; a
// reservation that releases claims it no longer sends (a paused
// enrollment) wakes it too.
func TestResumesAndClaimsOfOneAdapterDoNotDeadlock(t *testing.T) {
	// Not parallel: it needs the machine's time to make the two sides meet.
	w := newWorld(t, dripdrop.AdapterInput{MaxInFlight: some(16)})
	const n = 120
	ids := make([]dripdrop.Enrollment, n)
	for i := range ids {
		ids[i] = w.enroll(fmt.Sprintf("c%d@example.com", i), nil)
	}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var errs sync.Map
	var ops, ticks atomic.Int64
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; ; i = (i + 3) % n {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[i].ID
				if _, err := w.store.PauseEnrollment(ctx, w.tenant, id); err != nil && dripdrop.ErrorCode(err) != dripdrop.ECodeInvalidState {
					errs.Store(fmt.Sprint("pause: ", err), true)
				}
				if _, err := w.store.ResumeEnrollment(ctx, w.tenant, id); err != nil && dripdrop.ErrorCode(err) != dripdrop.ECodeInvalidState {
					errs.Store(fmt.Sprint("resume: ", err), true)
				}
				ops.Add(1)
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.disp.Tick(ctx); err != nil {
				errs.Store(fmt.Sprint("tick: ", err), true)
			}
			w.disp.Drain()
			ticks.Add(1)
		}
	}()
	// Until every message went out (pauses hold them back now and then),
	// at most 10 s.
	for deadline := time.Now().Add(10 * time.Second); len(w.sink.Messages()) < 3*n && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Error(k); return true })
	if ops.Load() < 50 || ticks.Load() < 10 {
		t.Fatalf("only %d pause/resume pairs and %d ticks ran", ops.Load(), ticks.Load())
	}
	w.run()
	for _, e := range ids {
		if got := w.enrollment(e.ID); got.State != dripdrop.EnrollmentCompleted {
			t.Errorf("enrollment %s ended %s, want completed", e.ID, got.State)
		}
	}
	t.Logf("%d pause/resume pairs, %d ticks, %d messages", ops.Load(), ticks.Load(), len(w.sink.Messages()))
}
