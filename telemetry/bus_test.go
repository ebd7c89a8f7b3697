package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

const sent = "dripdrop.dispatch.sent"

// recorder collects the names of the events it receives.
type recorder struct {
	mu    sync.Mutex
	names []string
}

func (r *recorder) handle(_ context.Context, e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, e.Name)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
}

func emit(b *Bus, name string) {
	b.Emit(context.Background(), name, measurementsOf(name), fullMeta(name))
}

func TestAttachErrors(t *testing.T) {
	t.Parallel()
	b := NewBus()
	var r recorder
	if err := b.Attach("a", sent, r.handle); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc  string
		id    string
		names []string
		h     Handler
		want  error
	}{
		{"duplicate id", "a", []string{"dripdrop.policy.min_gap"}, r.handle, ErrAlreadyAttached},
		{"unknown event", "b", []string{sent, "dripdrop.nope"}, r.handle, ErrUnknownEvent},
		{"nil handler", "c", []string{sent}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			err := b.AttachMany(tt.id, tt.names, tt.h)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Failed attachments left nothing behind: "b" was not half-attached.
	if n := b.Handlers(sent); n != 1 {
		t.Fatalf("%d handlers on %s, want 1", n, sent)
	}
	if b.Detach("b") || b.Detach("c") {
		t.Fatal("a failed attachment can be detached")
	}
}

func TestAttachManyDeliversOnlySubscribedEvents(t *testing.T) {
	t.Parallel()
	b := NewBus()
	var one, many recorder
	must(t, b.Attach("one", sent, one.handle))
	must(t, b.AttachMany("many", []string{"dripdrop.policy.min_gap", "dripdrop.policy.ramp_cap", "dripdrop.policy.min_gap"}, many.handle))
	for _, n := range []string{sent, "dripdrop.policy.min_gap", "dripdrop.policy.sub_cap", "dripdrop.policy.ramp_cap"} {
		emit(b, n)
	}
	if got := one.got(); !slices.Equal(got, []string{sent}) {
		t.Errorf("one got %v", got)
	}
	if got := many.got(); !slices.Equal(got, []string{"dripdrop.policy.min_gap", "dripdrop.policy.ramp_cap"}) {
		t.Errorf("many got %v (a duplicate name must attach once)", got)
	}
	if !b.Detach("many") || b.Detach("many") {
		t.Fatal("Detach must report true once, then false")
	}
	emit(b, "dripdrop.policy.min_gap")
	if got := many.got(); len(got) != 2 {
		t.Fatalf("detached handler still called: %v", got)
	}
	// The id is free again.
	must(t, b.Attach("many", sent, many.handle))
	emit(b, sent)
	if got := many.got(); len(got) != 3 || got[2] != sent {
		t.Fatalf("re-attached handler got %v", got)
	}
}

func TestEventFields(t *testing.T) {
	t.Parallel()
	b := NewBus()
	var got Event
	must(t, b.Attach("h", sent, func(_ context.Context, e Event) { got = e }))
	md := fullMeta(sent)
	b.Emit(context.Background(), sent, map[string]float64{"count": 1}, md)
	if got.Name != sent || got.Time.IsZero() || got.Measurements["count"] != 1 || got.Metadata["tenant_key"] != "v-tenant_key" {
		t.Fatalf("event %+v", got)
	}
}

func TestNilAndZeroBus(t *testing.T) {
	t.Parallel()
	var nilBus *Bus
	emit(nilBus, sent) // must not panic
	if nilBus.Handlers(sent) != 0 {
		t.Fatal("nil bus has handlers")
	}
	var zero Bus
	emit(&zero, sent)
	var r recorder
	must(t, zero.Attach("h", sent, r.handle))
	emit(&zero, sent)
	if len(r.got()) != 1 || !zero.Detach("h") {
		t.Fatal("zero Bus is not usable")
	}
}

func TestPanickingHandlerIsDetachedAndReported(t *testing.T) {
	t.Parallel()
	type report struct{ id, name, value string }
	var reports []report
	b := NewBus(WithErrorReporter(func(id, name string, r any) { reports = append(reports, report{id, name, fmt.Sprint(r)}) }))
	var before, after recorder
	bad := 0
	must(t, b.Attach("before", sent, before.handle))
	must(t, b.AttachMany("bad", []string{sent, "dripdrop.policy.min_gap"}, func(context.Context, Event) { bad++; panic("boom") }))
	must(t, b.Attach("after", sent, after.handle))
	for range 3 {
		emit(b, sent)
	}
	emit(b, "dripdrop.policy.min_gap")
	if bad != 1 {
		t.Errorf("panicking handler called %d times, want 1", bad)
	}
	if len(before.got()) != 3 || len(after.got()) != 3 {
		t.Errorf("other handlers got %d and %d events, want 3 each", len(before.got()), len(after.got()))
	}
	if want := []report{{"bad", sent, "boom"}}; !slices.Equal(reports, want) {
		t.Errorf("reports %v, want %v", reports, want)
	}
	if b.Detach("bad") || b.Handlers("dripdrop.policy.min_gap") != 0 {
		t.Error("panicking handler still attached")
	}
}

func TestPanicDetachesOnlyThatAttachment(t *testing.T) {
	t.Parallel()
	b := NewBus(WithErrorReporter(func(string, string, any) {}))
	var r recorder
	// The handler replaces itself under the same id, then panics: the
	// replacement must stay attached.
	must(t, b.Attach("h", sent, func(context.Context, Event) {
		b.Detach("h")
		must(t, b.Attach("h", sent, r.handle))
		panic("boom")
	}))
	emit(b, sent)
	emit(b, sent)
	if len(r.got()) != 1 {
		t.Fatalf("replacement got %d events, want 1", len(r.got()))
	}
}

func TestPanickingReporterDoesNotCrashEmit(t *testing.T) {
	t.Parallel()
	b := NewBus(WithErrorReporter(func(string, string, any) { panic("reporter") }))
	var r recorder
	must(t, b.Attach("bad", sent, func(context.Context, Event) { panic("boom") }))
	must(t, b.Attach("good", sent, r.handle))
	emit(b, sent)
	if len(r.got()) != 1 {
		t.Fatal("good handler missed the event")
	}
}

func TestDefaultReporterLogs(t *testing.T) {
	// Not parallel: it swaps the process-wide slog default logger, which other tests log through.
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	b := NewBus()
	must(t, b.Attach("bad", sent, func(context.Context, Event) { panic("boom") }))
	emit(b, sent)
	out := buf.String()
	for _, want := range []string{"level=ERROR", "handler=bad", "event=" + sent, "panic=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

func TestStrictBus(t *testing.T) {
	t.Parallel()
	const name = "dripdrop.policy.min_gap"
	full := fullMeta(name)
	tests := []struct {
		desc   string
		name   string
		m      map[string]float64
		md     map[string]any
		panics bool
	}{
		{"exact keys", name, map[string]float64{"count": 1}, full, false},
		{"missing key", name, map[string]float64{"count": 1}, without(full, "tenant_key"), true},
		{"extra key", name, map[string]float64{"count": 1}, with(full, "email", "x@example.com"), true},
		{"wrong measurement", name, map[string]float64{"rate": 1}, full, true},
		{"unknown event", "dripdrop.nope", map[string]float64{"count": 1}, full, true},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			for _, strict := range []bool{true, false} {
				b := NewBus(WithStrict(strict))
				var r recorder
				must(t, b.AttachMany("h", Events(), r.handle))
				panicked := func() (p bool) {
					defer func() { p = recover() != nil }()
					b.Emit(context.Background(), tt.name, tt.m, tt.md)
					return false
				}()
				if want := strict && tt.panics; panicked != want {
					t.Errorf("strict=%v: panicked=%v, want %v", strict, panicked, want)
				}
				// Lenient buses deliver catalog events whatever their keys.
				if wantDelivered := !panicked && tt.name == name; (len(r.got()) == 1) != wantDelivered {
					t.Errorf("strict=%v: delivered %v", strict, r.got())
				}
			}
		})
	}
}

// TestBusConcurrency runs emitters while other goroutines attach and detach
// (run with -race). A handler attached throughout sees every emission.
func TestBusConcurrency(t *testing.T) {
	t.Parallel()
	var reportedMu sync.Mutex
	reported := map[string]bool{} // a handler may panic in several emitters before it is detached
	b := NewBus(WithErrorReporter(func(id, _ string, _ any) { reportedMu.Lock(); reported[id] = true; reportedMu.Unlock() }))
	var stable atomic.Int64
	must(t, b.AttachMany("stable", Events(), func(context.Context, Event) { stable.Add(1) }))
	const emitters, emits, churners, churns = 4, 500, 4, 100
	var wg sync.WaitGroup
	var churned atomic.Int64
	for i := range emitters {
		wg.Go(func() {
			md := fullMeta(sent)
			for range emits {
				b.Emit(context.Background(), sent, map[string]float64{"count": float64(i)}, md)
			}
		})
	}
	for i := range churners {
		wg.Go(func() {
			for j := range churns {
				id := fmt.Sprintf("h%d-%d", i, j)
				if err := b.AttachMany(id, []string{sent, "dripdrop.policy.min_gap"}, func(context.Context, Event) { churned.Add(1) }); err != nil {
					t.Error(err)
					return
				}
				if j%10 == 0 {
					if err := b.Attach(id+"-panic", sent, func(context.Context, Event) { panic("x") }); err != nil {
						t.Error(err)
					}
				}
				if !b.Detach(id) {
					t.Errorf("Detach(%s) = false", id)
				}
			}
		})
	}
	wg.Wait()
	if got := stable.Load(); got != emitters*emits {
		t.Errorf("stable handler got %d events, want %d", got, emitters*emits)
	}
	if left := b.Handlers(sent) - 1; left+len(reported) != churners*churns/10 {
		t.Errorf("%d panicking handlers left and %d reported, want %d in all", left, len(reported), churners*churns/10)
	}
	if b.Handlers(sent) > 1+churners*churns/10 || b.Handlers("dripdrop.policy.min_gap") != 1 {
		t.Errorf("handlers left attached: %d on sent, %d on min_gap", b.Handlers(sent), b.Handlers("dripdrop.policy.min_gap"))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkEmitNoHandlers(b *testing.B) {
	bus := NewBus()
	m, md := map[string]float64{"count": 1}, fullMeta(sent)
	b.ReportAllocs()
	for b.Loop() {
		bus.Emit(context.Background(), sent, m, md)
	}
}

func BenchmarkEmitOneHandler(b *testing.B) {
	bus := NewBus()
	var n atomic.Int64
	must(b, bus.Attach("h", sent, func(context.Context, Event) { n.Add(1) }))
	m, md := map[string]float64{"count": 1}, fullMeta(sent)
	b.ReportAllocs()
	for b.Loop() {
		bus.Emit(context.Background(), sent, m, md)
	}
}
