package dispatch_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
)

// world is the kit's world (internal/testkit) with a dispatcher on it,
// under the short names this package's tests use.
type world struct {
	*testkit.World
	t       testing.TB
	url     string
	clock   *testkit.Clock
	store   *db.Store
	sink    *smtpsink.Sink
	disp    *dispatch.Dispatcher
	ev      *testkit.Recorder
	adapter dripdrop.Adapter
	pool    dripdrop.Pool
	tenant  string
	box     *vault.Box
}

// newWorld: one tenant, one sink adapter in a pool, a 3-step sequence whose
// follow-ups are due immediately, a clock at Tuesday 10:00 UTC.
func newWorld(t testing.TB, adapterIn dripdrop.AdapterInput, steps ...dripdrop.StepInput) *world {
	t.Helper()
	return newWorldAt(t, dbtest.URL(t), adapterIn, steps...)
}

// newWorldAt is newWorld on the database at url.
func newWorldAt(t testing.TB, url string, adapterIn dripdrop.AdapterInput, steps ...dripdrop.StepInput) *world {
	t.Helper()
	k := testkit.NewWorld(t, testkit.WithURL(url), testkit.WithAdapter(adapterIn), testkit.WithSteps(steps...))
	w := &world{World: k, t: t, url: k.URL, clock: k.Clock, store: k.Store, sink: k.Sink, ev: k.Events,
		adapter: k.Adapter, pool: k.Pool, tenant: k.Tenant, box: k.Box}
	var err error
	w.disp, err = dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Telemetry: k.Bus, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// addTenant creates a tenant with one sink adapter in a pool and the
// "welcome" sequence (default: 3 steps, follow-ups due at once).
func (w *world) addTenant(tenant string, adapterIn dripdrop.AdapterInput, steps ...dripdrop.StepInput) (dripdrop.Adapter, dripdrop.Pool) {
	w.t.Helper()
	_, adapter, pool := w.AddTenant(tenant, adapterIn, steps...)
	return adapter, pool
}

func step(key, subject, body string, delay int64) dripdrop.StepInput {
	return testkit.Step(key, subject, body, delay)
}

func (w *world) enroll(email string, vars map[string]any) dripdrop.Enrollment {
	w.t.Helper()
	key, first := "welcome", "Bob"
	e, _, err := w.store.Enroll(context.Background(), w.tenant, dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &email, FirstName: &first, Vars: vars}})
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// run ticks until nothing is claimed.
func (w *world) run() {
	w.t.Helper()
	testkit.Settle(w.t, w.disp.Tick, w.disp.Drain)
}

func (w *world) enrollment(id uuid.UUID) dripdrop.Enrollment {
	w.t.Helper()
	e, err := w.store.GetEnrollment(context.Background(), w.tenant, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func TestThreeStepThread(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	en := w.enroll("bob@example.com", nil)
	w.run()
	msgs := w.sink.Messages()
	if len(msgs) != 3 {
		t.Fatalf("sink got %d messages, want 3", len(msgs))
	}
	ids := make([]string, 3)
	for i, m := range msgs {
		h := m.Header()
		ids[i] = h.Get("Message-Id")
		if !strings.HasPrefix(ids[i], "<") || !strings.HasSuffix(ids[i], "@acme.example.com>") || len(ids[i]) != len("<")+36+len("@acme.example.com>") {
			t.Fatalf("Message-ID %q is not <uuidv7@sending-domain>", ids[i])
		}
		if uuid.MustParse(ids[i][1:37]).Version() != 7 {
			t.Fatalf("Message-ID %q is not a uuidv7", ids[i])
		}
		if m.To[0] != "bob@example.com" || len(m.To) != 1 || h.Get("Date") == "" || h.Get("Mime-Version") != "1.0" {
			t.Fatalf("message %d envelope/headers: %v %v", i, m.To, h)
		}
	}
	h0, h1, h2 := msgs[0].Header(), msgs[1].Header(), msgs[2].Header()
	if h0.Get("In-Reply-To") != "" || h0.Get("References") != "" || h0.Get("Subject") != "Hello Bob" {
		t.Fatalf("first message: %v", h0)
	}
	if h1.Get("In-Reply-To") != ids[0] || h1.Get("References") != ids[0] || h1.Get("Subject") != "Re: Hello Bob" {
		t.Fatalf("second message: In-Reply-To %q References %q Subject %q", h1.Get("In-Reply-To"), h1.Get("References"), h1.Get("Subject"))
	}
	if h2.Get("In-Reply-To") != ids[1] || h2.Get("References") != ids[0]+" "+ids[1] || h2.Get("Subject") != "Re: Hello Bob" {
		t.Fatalf("third message: In-Reply-To %q References %q", h2.Get("In-Reply-To"), h2.Get("References"))
	}
	got := w.enrollment(en.ID)
	if got.State != "completed" || len(got.Executions) != 3 {
		t.Fatalf("enrollment %s with %d executions", got.State, len(got.Executions))
	}
	for i, x := range got.Executions {
		if x.State != "sent" || *x.OutMessageID != ids[i] || x.Attempt != 1 {
			t.Fatalf("execution %d: %+v", i, x)
		}
	}
	if sent := w.ev.Named("dripdrop.dispatch.sent"); len(sent) != 3 || sent[0]["out_message_id"] != ids[0] || sent[0]["adapter_provider"] != "sink" {
		t.Fatalf("dispatch.sent events: %v", sent)
	}
	if n := len(w.ev.Named("dripdrop.enrollment.completed")); n != 1 {
		t.Fatalf("%d completed events", n)
	}
	counts := dbtest.RowCounts(t, w.url)
	if counts["message_events"] < 3 {
		t.Fatalf("message_events: %d", counts["message_events"])
	}
}

func TestTemporaryFailureRetriesWithSameMessageID(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	w.sink.SetFaults(func(rcpt string, attempt int) smtpsink.Fault {
		if attempt <= 2 {
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 451, Enhanced: [3]int{4, 7, 1}, Text: "greylisted"}
		}
		return smtpsink.Fault{}
	})
	en := w.enroll("bob@example.com", nil)
	w.run()
	x := w.enrollment(en.ID).Executions[0]
	first := *x.OutMessageID
	if x.State != "scheduled" || x.Attempt != 1 || !x.ScheduledFor.Equal(w.clock.Now().Add(30*time.Second)) {
		t.Fatalf("after a 451: %+v (want scheduled, attempt 1, +30 s)", x)
	}
	w.clock.Add(31 * time.Second)
	w.run()
	x = w.enrollment(en.ID).Executions[0]
	if x.State != "scheduled" || x.Attempt != 2 || !x.ScheduledFor.Equal(w.clock.Now().Add(60*time.Second)) {
		t.Fatalf("after a second 451: %+v (want +60 s)", x)
	}
	w.clock.Add(61 * time.Second)
	w.run()
	x = w.enrollment(en.ID).Executions[0]
	msgs := w.sink.Messages()
	if x.State != "sent" || len(msgs) != 1 || msgs[0].MessageID != first || *x.OutMessageID != first || w.sink.Attempts("bob@example.com") != 3 {
		t.Fatalf("after recovery: %+v, %d messages, attempts %d", x, len(msgs), w.sink.Attempts("bob@example.com"))
	}
	if r := w.ev.Named("dripdrop.dispatch.retry"); len(r) != 2 || r[0]["attempt"] != 1 {
		t.Fatalf("retry events %v", r)
	}
}

func TestBounceSuppressesAndStops(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	w.sink.SetFaults(func(string, int) smtpsink.Fault {
		return smtpsink.Fault{Kind: smtpsink.Reject, Code: 550, Enhanced: [3]int{5, 1, 1}, Text: "no such user"}
	})
	en := w.enroll("Gone@Example.com", nil)
	w.run()
	got := w.enrollment(en.ID)
	if got.State != "stopped" || *got.StopReason != "bounced" || got.Executions[0].State != "failed" || *got.Executions[0].ErrorCode != "bounced" {
		t.Fatalf("after 550 5.1.1: %s %v %+v", got.State, got.StopReason, got.Executions[0])
	}
	if sup, _ := w.store.IsSuppressed(context.Background(), w.tenant, "gone@example.com"); !sup {
		t.Fatal("the address was not suppressed")
	}
	if f := w.ev.Named("dripdrop.dispatch.failed"); len(f) != 1 || f[0]["smtp_code"] != 550 || f[0]["permanent"] != true {
		t.Fatalf("failed events %v", f)
	}
	// A new enrollment of the suppressed address is refused.
	key, email := "welcome", "gone@example.com"
	if _, _, err := w.store.Enroll(context.Background(), w.tenant, dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &email}}); dripdrop.ErrorCode(err) != "suppressed" {
		t.Fatalf("re-enroll: %v", err)
	}
}

func TestHeaderInjectionThroughContactData(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi {{topic}}", "About {{topic}}: {{note}}", 0))
	evil := "x\r\nBcc: victim@example.com"
	a := w.enroll("a@example.com", map[string]any{"topic": evil, "note": "n"})
	b := w.enroll("b@example.com", map[string]any{"topic": "pricing", "note": "hello\r\nBcc: victim@example.com\r\n.\r\nRCPT TO:<victim@example.com>"})
	w.run()
	if x := w.enrollment(a.ID).Executions[0]; x.State != "failed" || *x.ErrorCode != "header_injection_blocked" {
		t.Fatalf("subject injection: %+v", x)
	}
	msgs := w.sink.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "b@example.com" {
		t.Fatalf("sink: %+v", msgs)
	}
	h := msgs[0].Header()
	if h.Get("Bcc") != "" || w.sink.Attempts("victim@example.com") != 0 {
		t.Fatal("contact data added a header or a recipient")
	}
	if w.enrollment(b.ID).Executions[0].State != "sent" {
		t.Fatal("the body-only case must send")
	}
}

func TestMissingVariableFailsPermanently(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Your plan: {{plan}}", 0))
	en := w.enroll("a@example.com", nil)
	w.run()
	x := w.enrollment(en.ID).Executions[0]
	if x.State != "failed" || *x.ErrorCode != "missing_variable" || len(w.sink.Messages()) != 0 {
		t.Fatalf("missing variable: %+v", x)
	}
	if mv := w.ev.Named("dripdrop.template.missing_variable"); len(mv) != 1 || mv[0]["variable"] != "plan" || mv[0]["field"] != "body_text" {
		t.Fatalf("missing_variable events %v", mv)
	}
}

func TestPausedAndCancelledNeverSend(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	p := w.enroll("p@example.com", nil)
	c := w.enroll("c@example.com", nil)
	if _, err := w.store.PauseEnrollment(context.Background(), w.tenant, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.CancelEnrollment(context.Background(), w.tenant, c.ID); err != nil {
		t.Fatal(err)
	}
	w.run()
	if n := len(w.sink.Messages()); n != 0 {
		t.Fatalf("%d messages sent for paused/cancelled enrollments", n)
	}
	if x := w.enrollment(p.ID).Executions[0]; x.State != "scheduled" {
		t.Fatalf("paused enrollment's execution: %s", x.State)
	}
	if _, err := w.store.ResumeEnrollment(context.Background(), w.tenant, p.ID); err != nil {
		t.Fatal(err)
	}
	w.run()
	if n := len(w.sink.Messages()); n != 3 {
		t.Fatalf("after resume: %d messages, want 3", n)
	}
}

func TestRescueResendsWithSameMessageID(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	en := w.enroll("bob@example.com", nil)
	// Phase one happens, then the worker "crashes" before SMTP.
	claimed, err := claimTenant(w.store, context.Background(), w.tenant, 10, time.Minute)
	if err != nil || len(claimed) != 1 || !claimed[0].DueOnWrite {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	reserved, err := w.store.ReserveClaimed(context.Background(), claimed, time.Minute)
	if err != nil || len(reserved) != 1 || reserved[0].Outcome != db.Reserved {
		t.Fatalf("reserve: %+v %v", reserved, err)
	}
	res := reserved[0]
	w.run()
	if len(w.sink.Messages()) != 0 {
		t.Fatal("a sending execution was sent again before its lease expired")
	}
	if n, _ := w.store.RescueStale(context.Background(), w.tenant); n != 0 {
		t.Fatal("rescued before the lease expired")
	}
	w.clock.Add(61 * time.Second)
	if n, err := w.store.RescueStale(context.Background(), w.tenant); n != 1 || err != nil {
		t.Fatalf("rescue: %d %v", n, err)
	}
	w.run()
	msgs := w.sink.Messages()
	x := w.enrollment(en.ID).Executions[0]
	if len(msgs) != 1 || msgs[0].MessageID != res.Job.MessageID || x.State != "sent" || x.Attempt != 2 {
		t.Fatalf("after rescue: %d messages %+v", len(msgs), x)
	}
	// The zombie worker's late phase two changes nothing.
	if ok, err := w.store.MarkSentBatch(context.Background(), []db.Sent{{Job: res.Job, ProviderID: "late", Subject: "Hi"}}); ok[0] || err != nil {
		t.Fatalf("late MarkSent: %v %v", ok, err)
	}
	if c := dbtest.RowCounts(t, w.url); c["message_events"] != 1 {
		t.Fatalf("%d message events, want exactly one sent", c["message_events"])
	}
}

// phaseMetrics counts the dispatcher's phase observations.
type phaseMetrics struct {
	telemetry.NoOp
	mu  sync.Mutex
	got map[string]int
}

func (m *phaseMetrics) DispatchPhase(phase string, seconds float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seconds >= 0 {
		m.got[phase]++
	}
}

// The dispatcher reports how long each of its database steps took
// (dripdrop_dispatch_db_duration_seconds): sending one contact's three
// steps claims, reserves and records each of them.
func TestDispatchPhasesObserved(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	m := &phaseMetrics{got: map[string]int{}}
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Metrics: m, Workers: 4, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.disp = d
	w.enroll("bob@example.com", nil)
	w.run()
	if n := len(w.sink.Messages()); n != 3 {
		t.Fatalf("sent %d of 3 steps", n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, phase := range []string{"claim", "reserve", "record", "record_wait"} {
		if m.got[phase] < 3 {
			t.Errorf("%s observed %d times for 3 sends, want at least 3 (got %v)", phase, m.got[phase], m.got)
		}
	}
}
