package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one emitted event as handlers see it.
type Event struct {
	Name string
	// Time is when Emit was called.
	Time time.Time
	// Measurements follow the event's Kind; durations are in seconds.
	Measurements map[string]float64
	// Metadata carries the catalog keys of the event.
	Metadata map[string]any
}

// Handler receives events.
//
// Contract: handlers run synchronously in the goroutine that calls Emit,
// and emitters call Emit only after the state change the event reports has
// committed (never inside a database transaction), so a handler never sees
// an event for a change that was rolled back. Handlers must therefore be
// quick and must not block; hand slow work to a goroutine or a queue.
// Measurements and Metadata are shared by every handler of an emission and
// must not be modified. A handler that panics is detached and reported.
type Handler func(ctx context.Context, e Event)

// Errors returned by Attach and AttachMany, and wrapped by Check.
var (
	ErrAlreadyAttached = errors.New("telemetry: a handler with this id is attached")
	ErrUnknownEvent    = errors.New("telemetry: unknown event name")
)

// entry is one attached handler; seq tells apart successive attachments
// under the same id.
type entry struct {
	id  string
	seq uint64
	h   Handler
}

type attachment struct {
	seq   uint64
	names []string
}

// Bus dispatches events to attached handlers.
//
// Emit reads an immutable handler table through an atomic pointer, so it
// takes no lock and allocates nothing when no handler listens; Attach and
// Detach copy the table under a mutex. All methods are safe for concurrent
// use. The zero Bus is a usable lenient bus; a nil *Bus drops every event,
// which makes it a no-op default for embedding.
type Bus struct {
	mu     sync.Mutex // serialises Attach and Detach
	table  atomic.Pointer[map[string][]entry]
	ids    map[string]attachment
	seq    uint64
	strict bool
	report func(id, name string, recovered any)
}

// Option configures a Bus.
type Option func(*Bus)

// WithStrict makes Emit panic when an event is not in the catalog or its
// measurement or metadata keys differ from the catalog's (see Check).
// Tests enable it to prove that emitters send exactly the documented keys;
// the production default is lenient: unknown keys are delivered as given.
func WithStrict(strict bool) Option { return func(b *Bus) { b.strict = strict } }

// WithErrorReporter sets the function told about a handler that panicked
// (after the handler was detached). It is called once per panic, so a
// handler that panics in several goroutines at once is reported by each;
// it must be safe for concurrent use. The default logs at error level
// through slog.Default.
func WithErrorReporter(f func(id, name string, recovered any)) Option {
	return func(b *Bus) { b.report = f }
}

func defaultReport(id, name string, recovered any) {
	slog.Default().Error("telemetry handler panicked and was detached",
		"handler", id, "event", name, "panic", fmt.Sprint(recovered))
}

// NewBus returns a bus without handlers.
func NewBus(opts ...Option) *Bus {
	b := &Bus{}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Attach attaches h under id to the named event.
func (b *Bus) Attach(id, name string, h Handler) error { return b.AttachMany(id, []string{name}, h) }

// AttachMany attaches h under id to every named event, typically Events().
// It fails with ErrAlreadyAttached if id is in use and ErrUnknownEvent if a
// name is not in the catalog; on error nothing is attached. Duplicate names
// are attached once.
func (b *Bus) AttachMany(id string, names []string, h Handler) error {
	if h == nil {
		return errors.New("telemetry: nil handler")
	}
	for _, n := range names {
		if _, ok := index[n]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownEvent, n)
		}
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.ids[id]; ok {
		return fmt.Errorf("%w: %q", ErrAlreadyAttached, id)
	}
	if b.ids == nil {
		b.ids = map[string]attachment{}
	}
	b.seq++
	e := entry{id: id, seq: b.seq, h: h}
	next := b.cloneTable()
	for _, n := range names {
		next[n] = append(slices.Clip(next[n]), e)
	}
	b.ids[id] = attachment{seq: e.seq, names: names}
	b.table.Store(&next)
	return nil
}

// Detach removes the handler attached under id and reports whether there
// was one.
func (b *Bus) Detach(id string) bool { return b.detach(id, 0) }

// detach removes id; with seq != 0 only if id is still that attachment.
func (b *Bus) detach(id string, seq uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.ids[id]
	if !ok || (seq != 0 && a.seq != seq) {
		return false
	}
	next := b.cloneTable()
	for _, n := range a.names {
		hs := slices.DeleteFunc(slices.Clone(next[n]), func(e entry) bool { return e.id == id })
		if len(hs) == 0 {
			delete(next, n)
		} else {
			next[n] = hs
		}
	}
	delete(b.ids, id)
	b.table.Store(&next)
	return true
}

func (b *Bus) cloneTable() map[string][]entry {
	if t := b.table.Load(); t != nil {
		return maps.Clone(*t)
	}
	return map[string][]entry{}
}

// Handlers returns how many handlers are attached to the named event.
func (b *Bus) Handlers(name string) int {
	if b == nil {
		return 0
	}
	if t := b.table.Load(); t != nil {
		return len((*t)[name])
	}
	return 0
}

// Emit delivers an event to its handlers, in attachment order, in the
// calling goroutine. Call it only after the reported change has committed.
// A handler that panics is detached and reported, and the remaining
// handlers still receive the event; Emit itself panics only in strict mode,
// on an emission that does not match the catalog.
func (b *Bus) Emit(ctx context.Context, name string, measurements map[string]float64, metadata map[string]any) {
	if b == nil {
		return
	}
	if b.strict {
		if err := Check(name, measurements, metadata); err != nil {
			panic(err)
		}
	}
	t := b.table.Load()
	if t == nil {
		return
	}
	hs := (*t)[name]
	if len(hs) == 0 {
		return
	}
	e := Event{Name: name, Time: time.Now(), Measurements: measurements, Metadata: metadata}
	for _, h := range hs {
		b.call(ctx, h, e)
	}
}

func (b *Bus) call(ctx context.Context, h entry, e Event) {
	defer func() {
		if r := recover(); r != nil {
			b.detach(h.id, h.seq)
			b.reportPanic(h.id, e.Name, r)
		}
	}()
	h.h(ctx, e)
}

// reportPanic tells the reporter; a reporter that panics in turn is
// ignored so that the emitting goroutine survives.
func (b *Bus) reportPanic(id, name string, r any) {
	defer func() { _ = recover() }()
	if b.report != nil {
		b.report(id, name, r)
	} else {
		defaultReport(id, name, r)
	}
}
