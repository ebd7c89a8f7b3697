package testkit

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/telemetry"
)

// Recorder records telemetry events: the ones a telemetry.Bus delivers in
// process (Handle, Named, Events) and, on demand, the ones a tenant's
// outbox feed lists (Feed).
type Recorder struct {
	t      testing.TB
	mu     sync.Mutex
	events []telemetry.Event
	dbURL  string // set by UseDatabase: Feed waits for the outbox to publish
}

// NewRecorder returns a recorder attached to every catalog event of a new
// strict bus: the bus panics on an event whose metadata keys differ from
// the catalog (docs/telemetry.md), so a test fails on a malformed event.
func NewRecorder(t testing.TB) (*Recorder, *telemetry.Bus) {
	t.Helper()
	r := &Recorder{t: t}
	return r, r.StrictBus()
}

// StrictBus returns another strict bus recording into r (a second store
// on the same database, as after a restart).
func (r *Recorder) StrictBus() *telemetry.Bus {
	r.t.Helper()
	bus := telemetry.NewBus(telemetry.WithStrict(true))
	if err := r.Attach(bus); err != nil {
		r.t.Fatal(err)
	}
	return bus
}

// Attach subscribes the recorder to every catalog event of bus.
func (r *Recorder) Attach(bus *telemetry.Bus) error {
	return bus.AttachMany("testkit", telemetry.Events(), r.Handle)
}

// Handle records one event (a telemetry handler).
func (r *Recorder) Handle(_ context.Context, ev telemetry.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// Events returns every recorded event, in the order the bus delivered them.
func (r *Recorder) Events() []telemetry.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]telemetry.Event(nil), r.events...)
}

// Named returns the metadata of the recorded events called name, in order.
func (r *Recorder) Named(name string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, ev := range r.events {
		if ev.Name == name {
			out = append(out, ev.Metadata)
		}
	}
	return out
}

// Reset forgets every recorded event.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// UseDatabase tells Feed the database the store writes to, so that it can
// wait until every committed outbox row is published (NewWorld calls it).
func (r *Recorder) UseDatabase(url string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dbURL = url
}

// FeedWait is how long Feed and FeedUntil poll for the outbox to settle.
const FeedWait = 5 * time.Second

// Feed reads every event of the tenant's outbox feed whose name starts
// with prefix ("" for all), oldest first. The feed holds an event back
// while a transaction older than its writer is still in progress anywhere
// in the cluster (see docs/telemetry.md). With UseDatabase, Feed first
// waits until no committed row is held back; without it, it reads until
// two reads a moment apart agree, or FeedWait passes.
func (r *Recorder) Feed(ctx context.Context, store *db.Store, tenant, prefix string) []db.FeedEvent {
	r.t.Helper()
	r.mu.Lock()
	url := r.dbURL
	r.mu.Unlock()
	if url != "" {
		dbtest.WaitOutboxPublished(r.t, url)
		return r.readFeed(ctx, store, tenant, prefix)
	}
	deadline := time.Now().Add(FeedWait)
	var last []db.FeedEvent
	for {
		got := r.readFeed(ctx, store, tenant, prefix)
		if (last != nil && len(got) == len(last)) || time.Now().After(deadline) {
			return got
		}
		last = got
		time.Sleep(20 * time.Millisecond)
	}
}

// FeedUntil reads the tenant's feed (like Feed) until it lists at least
// one event of every name in want, or FeedWait passes, and returns the
// events' metadata by name.
func (r *Recorder) FeedUntil(ctx context.Context, store *db.Store, tenant, prefix string, want ...string) map[string][]map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(FeedWait)
	for {
		byName := map[string][]map[string]any{}
		for _, ev := range r.readFeed(ctx, store, tenant, prefix) {
			var m map[string]any
			if err := json.Unmarshal(ev.Metadata, &m); err != nil {
				r.t.Fatalf("testkit: feed event %d metadata: %v", ev.ID, err)
			}
			byName[ev.Name] = append(byName[ev.Name], m)
		}
		missing := false
		for _, n := range want {
			missing = missing || len(byName[n]) == 0
		}
		if !missing || time.Now().After(deadline) {
			return byName
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *Recorder) readFeed(ctx context.Context, store *db.Store, tenant, prefix string) []db.FeedEvent {
	r.t.Helper()
	var out []db.FeedEvent
	var after int64
	for {
		page, err := store.Feed(ctx, tenant, after, prefix, 1000)
		if err != nil {
			r.t.Fatalf("testkit: feed: %v", err)
		}
		for _, ev := range page {
			if strings.HasPrefix(ev.Name, prefix) {
				out = append(out, ev)
			}
		}
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1].ID
	}
}
