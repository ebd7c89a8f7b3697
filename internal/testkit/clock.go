package testkit

import (
	"sync"
	"time"

	"github.com/dripdrop/dripdrop"
)

// Tuesday is the world's default start: Tuesday 24 November 2026, 10:00 UTC,
// inside every test sequence's send window.
var Tuesday = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// Clock is a settable fake clock, safe for concurrent use. It stands still
// until Set or Add moves it, unless Run made it advance with real time.
type Clock struct {
	mu      sync.Mutex
	t       time.Time
	running time.Time // when Run was called; zero while stopped
}

var _ dripdrop.Clock = (*Clock)(nil)

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running.IsZero() {
		return c.t.Add(time.Since(c.running))
	}
	return c.t
}

// Set moves the clock to t. A running clock keeps running from t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	if !c.running.IsZero() {
		c.running = time.Now()
	}
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run makes the clock advance with real time from its current reading
// (benchmarks that need the store's time to pass).
func (c *Clock) Run() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running.IsZero() {
		c.running = time.Now()
	}
}

// Stop freezes a running clock at its current reading.
func (c *Clock) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running.IsZero() {
		c.t = c.t.Add(time.Since(c.running))
		c.running = time.Time{}
	}
}
