package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Event is one emitted event.
type Event struct {
	Name         string
	Time         time.Time
	Measurements map[string]float64
	Metadata     map[string]any
}

// Handler receives events. Handlers run synchronously in the emitting
// goroutine, after the state change they report has committed; they must
// be quick and must not block.
type Handler func(ctx context.Context, e Event)

// Errors of Attach.
var (
	ErrAlreadyAttached = errors.New("telemetry: a handler with this id is attached")
	ErrUnknownEvent    = errors.New("telemetry: unknown event name")
)

type attached struct {
	id string
	h  Handler
}

// Bus dispatches events to attached handlers. The zero value is not
// usable; use NewBus. A nil *Bus drops every event (the embedding default).
type Bus struct {
	mu       sync.Mutex // serialises Attach/Detach
	table    atomic.Pointer[map[string][]attached]
	ids      map[string][]string
	strict   bool
	reporter func(id, name string, recovered any)
}

// Option configures a Bus.
type Option func(*Bus)

// WithStrict makes Emit panic when an event is not in the catalog or its
// metadata keys differ from the catalog's. Tests enable it to prove that
// emitters send exactly the documented keys.
func WithStrict(strict bool) Option { return func(b *Bus) { b.strict = strict } }

// WithErrorReporter is called when a handler panics (the handler is
// detached first).
func WithErrorReporter(f func(id, name string, recovered any)) Option {
	return func(b *Bus) { b.reporter = f }
}

// NewBus returns an empty bus.
func NewBus(opts ...Option) *Bus {
	b := &Bus{ids: map[string][]string{}}
	b.reporter = func(id, name string, recovered any) {
		slog.Error("telemetry handler panicked and was detached", "handler", id, "event", name, "panic", fmt.Sprint(recovered))
	}
	for _, o := range opts {
		o(b)
	}
	empty := map[string][]attached{}
	b.table.Store(&empty)
	return b
}

// Default is the process-wide bus used by the package-level functions.
var Default = NewBus()

// Attach attaches h under id to one event.
func (b *Bus) Attach(id, name string, h Handler) error { return b.AttachMany(id, []string{name}, h) }

// AttachMany attaches h under id to several events.
func (b *Bus) AttachMany(id string, names []string, h Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.ids[id]; ok {
		return fmt.Errorf("%w: %q", ErrAlreadyAttached, id)
	}
	for _, n := range names {
		if _, ok := byName[n]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownEvent, n)
		}
	}
	next := maps.Clone(*b.table.Load())
	for _, n := range names {
		next[n] = append(slices.Clone(next[n]), attached{id: id, h: h})
	}
	b.ids[id] = slices.Clone(names)
	b.table.Store(&next)
	return nil
}

// Detach removes the handler attached under id; it reports whether one was.
func (b *Bus) Detach(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	names, ok := b.ids[id]
	if !ok {
		return false
	}
	next := maps.Clone(*b.table.Load())
	for _, n := range names {
		next[n] = slices.DeleteFunc(slices.Clone(next[n]), func(a attached) bool { return a.id == id })
		if len(next[n]) == 0 {
			delete(next, n)
		}
	}
	delete(b.ids, id)
	b.table.Store(&next)
	return true
}

// Emit sends an event to its handlers. It never panics because of a
// handler: a panicking handler is detached and reported.
func (b *Bus) Emit(ctx context.Context, name string, measurements map[string]float64, metadata map[string]any) {
	if b == nil {
		return
	}
	if b.strict {
		if err := Check(name, metadata); err != nil {
			panic(err)
		}
	}
	hs := (*b.table.Load())[name]
	if len(hs) == 0 {
		return
	}
	e := Event{Name: name, Time: time.Now(), Measurements: measurements, Metadata: metadata}
	for _, a := range hs {
		b.call(ctx, a, e)
	}
}

func (b *Bus) call(ctx context.Context, a attached, e Event) {
	defer func() {
		if r := recover(); r != nil {
			b.Detach(a.id)
			b.reporter(a.id, e.Name, r)
		}
	}()
	a.h(ctx, e)
}

// Check reports whether metadata carries exactly the catalog keys of name.
func Check(name string, metadata map[string]any) error {
	spec, ok := byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownEvent, name)
	}
	got := slices.Collect(maps.Keys(metadata))
	want := slices.Clone(spec.Metadata)
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("telemetry: %s metadata keys %v, catalog says %v", name, got, want)
	}
	return nil
}

// Attach attaches to the Default bus.
func Attach(id, name string, h Handler) error { return Default.Attach(id, name, h) }

// AttachMany attaches to the Default bus.
func AttachMany(id string, names []string, h Handler) error { return Default.AttachMany(id, names, h) }

// Detach detaches from the Default bus.
func Detach(id string) bool { return Default.Detach(id) }

// Emit emits on the Default bus.
func Emit(ctx context.Context, name string, measurements map[string]float64, metadata map[string]any) {
	Default.Emit(ctx, name, measurements, metadata)
}
