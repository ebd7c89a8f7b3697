package syncbuf

import (
	"fmt"
	"sync"
	"testing"
)

// Concurrent writers lose nothing (run with -race).
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				fmt.Fprintf(&b, "w%d;", i)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := b.Count(";"); n != 800 {
		t.Fatalf("%d writes recorded, want 800", n)
	}
	if n := b.Count("w3;"); n != 100 {
		t.Fatalf("writer 3: %d writes, want 100", n)
	}
}
