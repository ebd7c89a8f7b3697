package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
)

// seedStateChangedKeys are the metadata keys of seed 000's
// [:dripdrop, :health, :state_changed].
var seedStateChangedKeys = []string{"adapter_id", "from", "reason", "source", "tenant_key", "to"}

func (w *world) health() db.HealthReport {
	w.t.Helper()
	r, err := w.store.Health(context.Background(), w.tenant, w.adapter.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *world) sweep() int {
	w.t.Helper()
	n, err := w.store.HealthSweep(context.Background(), w.tenant)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

func (w *world) enrollMany(prefix string, n int) {
	w.t.Helper()
	for i := 0; i < n; i++ {
		w.enroll(fmt.Sprintf("%s-%d@example.com", prefix, i), nil)
	}
}

// expectState checks the adapter's state, the reason of its latest
// transition and (for resting) how long it rests.
func (w *world) expectState(state dripdrop.HealthState, reason string, rest time.Duration) db.HealthReport {
	w.t.Helper()
	r := w.health()
	if r.HealthState != state {
		w.t.Fatalf("health state %s, want %s (report %+v)", r.HealthState, state, r)
	}
	if len(r.Transitions) == 0 || r.Transitions[0].To != string(state) || r.Transitions[0].Reason != reason || r.Transitions[0].Source != "engine" {
		w.t.Fatalf("latest transition %+v, want → %s (%s) by engine", r.Transitions, state, reason)
	}
	if rest > 0 && (r.RestingUntil == nil || !r.RestingUntil.Equal(w.clock.Now().Add(rest)) || r.RestBackoffSeconds != int(rest/time.Second)) {
		w.t.Fatalf("resting until %v (backoff %d s), want now + %v", r.RestingUntil, r.RestBackoffSeconds, rest)
	}
	return r
}

// TestHealthLife walks one adapter through docs/health.md on the injected clock:
// a breach rests it 24 h and defers its work, the sweep moves it to probing,
// breaches while probing double the rest up to 7 days, 5 clean probes ramp
// it, the ramp graduates, and 7 clean days forgive the streak.
func TestHealthLife(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	w.sink.SetFaults(func(rcpt string, _ int) smtpsink.Fault {
		if strings.HasPrefix(rcpt, "bounce") {
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 550, Enhanced: [3]int{5, 1, 1}, Text: "no such user"}
		}
		return smtpsink.Fault{}
	})
	ctx := context.Background()
	day := 24 * time.Hour
	later := w.enroll("later@example.com", nil)
	if _, err := w.store.PauseEnrollment(ctx, w.tenant, later.ID); err != nil {
		t.Fatal(err)
	}

	// 19 sends and a bounce: below the minimum sample, nothing happens.
	w.enrollMany("ok", 19)
	w.run()
	w.enroll("bounce-0@example.com", nil)
	w.run()
	if r := w.health(); r.HealthState != "active" || r.Window.Sent != 19 || r.Window.Bounced != 1 || r.SampleReached {
		t.Fatalf("after 19 sends and a bounce: %+v", r)
	}
	if w.sweep() != 0 {
		t.Fatal("the sweep changed an adapter below the minimum sample")
	}
	// The 20th send; the next bounce breaches (2 of 20 = 10 %) at once, in
	// the bounce's own transaction.
	w.enroll("ok-19@example.com", nil)
	w.run()
	w.enroll("bounce-1@example.com", nil)
	w.run()
	w.expectState("resting", "bounce_threshold", day)
	if bt := w.ev.Named("dripdrop.health.bounce_threshold"); len(bt) != 1 || bt[0]["sent_count"] != 20 || bt[0]["bounce_count"] != 2 {
		t.Fatalf("bounce_threshold events %v", bt)
	}

	// Its enrollments defer until the rest ends.
	if _, err := w.store.ResumeEnrollment(ctx, w.tenant, later.ID); err != nil {
		t.Fatal(err)
	}
	sentBefore := len(w.sink.Messages())
	w.run()
	x := w.enrollment(later.ID).Executions[0]
	restEnd := *w.health().RestingUntil
	if len(w.sink.Messages()) != sentBefore || x.State != "scheduled" || x.DeferUntil == nil || !x.DeferUntil.Equal(restEnd) || *x.DeferReason != "adapter_resting" {
		t.Fatalf("a resting adapter's execution: %+v", x)
	}
	if ar := w.ev.Named("dripdrop.policy.adapter_resting"); len(ar) != 1 {
		t.Fatalf("adapter_resting events %v", ar)
	}

	// Rest, probe, fail: 48 h, 96 h, 7 days, 7 days.
	for i, rest := range []time.Duration{2 * day, 4 * day, 7 * day, 7 * day} {
		w.clock.Add(w.health().RestingUntil.Sub(w.clock.Now()) - time.Second)
		if w.sweep() != 0 {
			t.Fatal("recovered before resting_until")
		}
		w.clock.Add(time.Second)
		if w.sweep() != 1 {
			t.Fatal("the sweep did not recover the adapter")
		}
		w.expectState("probing", "resting_elapsed", 0)
		if i == 0 {
			// The deferred execution goes out when the rest ends (a probe).
			w.run()
			if w.enrollment(later.ID).State != "completed" {
				t.Fatal("the deferred enrollment did not send after the rest")
			}
		}
		w.enroll(fmt.Sprintf("bounce-p%d@example.com", i), nil)
		w.run()
		w.expectState("resting", "probe_failure", rest)
	}

	// Five clean probes: ramping, then (uncapped) active.
	w.clock.Add(w.health().RestingUntil.Sub(w.clock.Now()))
	w.sweep()
	w.expectState("probing", "resting_elapsed", 0)
	w.enrollMany("probe", 5)
	w.run()
	if r := w.health(); r.Window.Sent != 5 || r.HealthState != "probing" {
		t.Fatalf("probing window %+v", r.Window)
	}
	w.sweep()
	r := w.expectState("ramping", "probe_success", 0)
	if a, _ := w.store.GetAdapter(ctx, w.tenant, w.adapter.ID); a.RampStartedAt == nil || !a.RampStartedAt.Equal(w.clock.Now()) {
		t.Fatalf("ramp_started_at %v", a.RampStartedAt)
	}
	if r.RestStreak != 5 {
		t.Fatalf("streak %d", r.RestStreak)
	}
	w.sweep()
	w.expectState("active", "ramp_complete", 0)

	// 7 clean days in active forgive the streak.
	w.clock.Add(7*day - time.Second)
	w.sweep()
	if r := w.health(); r.RestStreak != 5 || r.RestBackoffSeconds != int(7*day/time.Second) {
		t.Fatalf("reset before 7 days: %+v", r)
	}
	w.clock.Add(time.Second)
	w.sweep()
	if r := w.health(); r.RestStreak != 0 || r.RestBackoffSeconds != 86400 || r.Transitions[0].Reason != "backoff_reset" {
		t.Fatalf("after 7 clean days: streak %d backoff %d %+v", r.RestStreak, r.RestBackoffSeconds, r.Transitions[0])
	}
	// The next breach rests 24 h again.
	w.enrollMany("ok2", 20)
	w.run()
	w.enroll("bounce-last@example.com", nil)
	w.run()
	w.expectState("resting", "bounce_threshold", day)

	// Every transition is in the audit log and has one state_changed event
	// with exactly the seed's keys.
	audit, err := w.store.Audit(ctx, w.tenant, "adapter", w.adapter.ID)
	if err != nil {
		t.Fatal(err)
	}
	var changes []map[string]any
	for _, a := range audit {
		if a.Action != "health_state_changed" {
			continue
		}
		var d map[string]any
		if err := json.Unmarshal(a.Data, &d); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"from", "to", "reason", "source", "at"} {
			if d[k] == nil || d[k] == "" {
				t.Fatalf("audit entry without %s: %s", k, a.Data)
			}
		}
		changes = append(changes, d)
	}
	evs := w.ev.Named("dripdrop.health.state_changed")
	// resting, 4 × (probing, resting), probing, ramping, active, resting
	if len(changes) != 13 || len(evs) != len(changes) {
		t.Fatalf("%d audit transitions, %d events; want 13 each", len(changes), len(evs))
	}
	for i, e := range evs {
		if keys := slices.Sorted(maps.Keys(e)); !slices.Equal(keys, seedStateChangedKeys) {
			t.Fatalf("state_changed keys %v", keys)
		}
		if e["from"] != changes[i]["from"] || e["to"] != changes[i]["to"] || e["reason"] != changes[i]["reason"] {
			t.Fatalf("event %d %v does not match audit %v", i, e, changes[i])
		}
	}
}

// TestGraduation: a new adapter ramps (floor 5, +3 a day, cap 40) and
// becomes active on day 13, when its ramp reaches the cap.
func TestGraduation(t *testing.T) {
	t.Parallel()
	capN, floor, inc := 40, 5, 3
	w := newWorld(t, dripdrop.AdapterInput{DailyCap: dripdrop.Nullable[int]{Set: true, Valid: true, Value: capN}, RampFloor: &floor,
		RampIncrement: dripdrop.Nullable[int]{Set: true, Valid: true, Value: inc}})
	if w.adapter.HealthState != "ramping" {
		t.Fatalf("a new adapter with ramp fields is %s", w.adapter.HealthState)
	}
	start := w.clock.Now()
	w.clock.Add(12*24*time.Hour - time.Second)
	if w.sweep() != 0 || w.health().HealthState != "ramping" {
		t.Fatal("graduated before the ramp reached the cap")
	}
	if n := w.health().NextTransition; n == nil || n.To != "active" || !n.At.Equal(start.Add(12*24*time.Hour)) {
		t.Fatalf("next transition %+v", n)
	}
	w.clock.Add(time.Second)
	if w.sweep() != 1 {
		t.Fatal("no graduation")
	}
	w.expectState("active", "ramp_complete", 0)
	if w.sweep() != 0 {
		t.Fatal("a transition was applied twice")
	}
}

// TestAuthFailuresRestTheAdapter: a server answering 535 to AUTH is the
// sender's failure: no prospect fails or uses an attempt, the adapter backs
// off 1 min, 2 min, and rests (auth_failed) after the third try.
func TestAuthFailuresRestTheAdapter(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	ctx := context.Background()
	creds := dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none", Username: "ada", Password: "wrong"}
	if _, err := w.store.UpdateAdapter(ctx, w.tenant, w.adapter.ID, dripdrop.AdapterInput{Credentials: &creds}); err != nil {
		t.Fatal(err)
	}
	w.sink.SetAuth(func(string, string) error { return smtpsink.AuthFailed })
	var err error
	if w.disp, err = dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 1, Lease: time.Minute, SendTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var ens []dripdrop.Enrollment
	for i := 0; i < 3; i++ {
		ens = append(ens, w.enroll(fmt.Sprintf("p%d@example.com", i), nil))
	}
	for try, backoff := range []time.Duration{time.Minute, 2 * time.Minute} {
		w.run()
		a, _ := w.store.GetAdapter(ctx, w.tenant, w.adapter.ID)
		if w.sink.AuthAttempts() != try+1 || a.NextSendAt == nil || !a.NextSendAt.Equal(w.clock.Now().Add(backoff)) || a.HealthState != "active" {
			t.Fatalf("try %d: %d AUTH attempts, next_send_at %v, state %s", try+1, w.sink.AuthAttempts(), a.NextSendAt, a.HealthState)
		}
		w.clock.Add(backoff - time.Second)
		w.run()
		if w.sink.AuthAttempts() != try+1 {
			t.Fatal("the adapter was used before its backoff ended")
		}
		w.clock.Add(time.Second)
	}
	w.run()
	w.expectState("resting", "auth_failed", 24*time.Hour)
	if w.sink.AuthAttempts() != 3 || len(w.sink.Messages()) != 0 {
		t.Fatalf("%d AUTH attempts, %d messages", w.sink.AuthAttempts(), len(w.sink.Messages()))
	}
	for _, e := range ens {
		got := w.enrollment(e.ID)
		if x := got.Executions[0]; got.State != "active" || x.State != "scheduled" || x.Attempt != 0 {
			t.Fatalf("prospect %s: enrollment %s, execution %s attempt %d", e.ID, got.State, x.State, x.Attempt)
		}
	}
	if f := w.ev.Named("dripdrop.dispatch.failed"); len(f) != 0 {
		t.Fatalf("prospects marked failed: %v", f)
	}
	ae := w.ev.Named("dripdrop.dispatch.adapter_error")
	if len(ae) != 3 || ae[0]["reason"] != "auth" || ae[0]["consecutive"] != 1 || ae[2]["consecutive"] != 3 {
		t.Fatalf("adapter_error events %v", ae)
	}
	// The operator fixes the password and brings the adapter back.
	w.sink.SetAuth(nil)
	state, source := dripdrop.HealthActive, "operator"
	if _, err := w.store.HealthSignal(ctx, w.tenant, w.adapter.ID, dripdrop.HealthSignalInput{HealthState: &state, Source: &source}); err != nil {
		t.Fatal(err)
	}
	w.run()
	if n := len(w.sink.Messages()); n != 3 {
		t.Fatalf("after the fix: %d messages", n)
	}
	if r := w.health(); r.AdapterFailures != 0 || r.AuthFailures != 0 {
		t.Fatalf("failure counters not reset: %+v", r)
	}
}

// TestPermanentFailurePausesAndRetry: a permanent failure that is not the
// recipient's pauses the enrollment (step_failed); retry and resume send the
// step again in a new attempt window with a new Message-ID.
func TestPermanentFailurePausesAndRetry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	ctx := context.Background()
	w.sink.SetFaults(func(string, int) smtpsink.Fault {
		return smtpsink.Fault{Kind: smtpsink.Reject, Code: 554, Enhanced: [3]int{5, 6, 0}, Text: "content rejected"}
	})
	en := w.enroll("a@example.com", nil)
	w.run()
	got := w.enrollment(en.ID)
	if got.State != "paused" || got.PauseReason == nil || *got.PauseReason != "step_failed" || got.Executions[0].State != "failed" {
		t.Fatalf("after a 554 5.6.0: %s %v %+v", got.State, got.PauseReason, got.Executions[0])
	}
	if p := w.ev.Named("dripdrop.enrollment.paused"); len(p) != 1 || p[0]["reason"] != "step_failed" {
		t.Fatalf("paused events %v", p)
	}
	// Retry while the server still refuses: a new window fails and pauses again.
	if _, err := w.store.RetryEnrollment(ctx, w.tenant, en.ID); err != nil {
		t.Fatal(err)
	}
	w.run()
	if got = w.enrollment(en.ID); got.State != "paused" || len(got.Executions) != 2 || got.Executions[1].AttemptWindow != 1 {
		t.Fatalf("after a failed retry: %s %+v", got.State, got.Executions)
	}
	// Resume after the cause is fixed schedules it again too.
	w.sink.SetFaults(nil)
	if _, err := w.store.ResumeEnrollment(ctx, w.tenant, en.ID); err != nil {
		t.Fatal(err)
	}
	w.run()
	got = w.enrollment(en.ID)
	if got.State != "completed" || len(got.Executions) != 3 || got.Executions[2].AttemptWindow != 2 || got.Executions[2].State != "sent" {
		t.Fatalf("after resume: %s %+v", got.State, got.Executions)
	}
	if *got.Executions[0].OutMessageID == *got.Executions[2].OutMessageID {
		t.Fatal("a new attempt window reused the Message-ID")
	}
	if _, err := w.store.RetryEnrollment(ctx, w.tenant, en.ID); dripdrop.ErrorCode(err) != "invalid_state" {
		t.Fatalf("retry of a completed enrollment: %v", err)
	}
}

// TestHealthCheckCountsInDB: the store counts the window the rules ask for —
// hard bounces only, complaints, nothing older than 30 days or than the last
// recovery — and breaches exactly at 2 % and 0.3 %.
func TestHealthCheckCountsInDB(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	ctx := context.Background()
	events := func(typ, subtype string, n int, age time.Duration) {
		t.Helper()
		var sub any
		if subtype != "" {
			sub = subtype
		}
		dbtest.Exec(t, w.url, `INSERT INTO message_events (tenant_key, id, type, subtype, adapter_id, occurred_at)
			SELECT 'acme', gen_random_uuid(), $1, $2, $3, $4 FROM generate_series(1, $5::int)`, typ, sub, w.adapter.ID, w.clock.Now().Add(-age), n)
	}
	check := func() dripdrop.HealthState {
		t.Helper()
		if err := w.store.CheckHealth(ctx, w.tenant, w.adapter.ID); err != nil {
			t.Fatal(err)
		}
		return w.health().HealthState
	}
	// The adapter was created at the clock's now: make it a month old.
	dbtest.Exec(t, w.url, `UPDATE adapters SET healthy_since = healthy_since - interval '40 days', health_since = health_since - interval '40 days'`)
	events("sent", "", 51, time.Hour)
	events("bounced", "soft", 5, time.Hour) // soft bounces do not count
	events("bounced", "hard", 3, 31*24*time.Hour)
	events("sent", "", 100, 31*24*time.Hour) // older than 30 days: ignored
	events("bounced", "hard", 1, time.Hour)
	if s := check(); s != "active" {
		t.Fatalf("1 hard bounce in 51 sends (1.96 %%): %s", s)
	}
	if r := w.health(); r.Window.Sent != 51 || r.Window.Bounced != 1 {
		t.Fatalf("window %+v", r.Window)
	}
	// 1 of 50 is exactly 2 %: one send leaves the window (older than 30 days).
	dbtest.Exec(t, w.url, `UPDATE message_events SET occurred_at = occurred_at - interval '31 days'
		WHERE id = (SELECT id FROM message_events WHERE type = 'sent' AND occurred_at > $1 LIMIT 1)`, w.clock.Now().Add(-2*time.Hour))
	if s := check(); s != "resting" {
		t.Fatalf("1 hard bounce in 50 sends (2 %%): %s", s)
	}
	if bt := w.ev.Named("dripdrop.health.bounce_threshold"); len(bt) != 1 || bt[0]["sent_count"] != 50 {
		t.Fatalf("bounce_threshold events %v", bt)
	}

	// After recovery the old events no longer count; complaints breach at 0.3 %.
	state, source := dripdrop.HealthActive, "test"
	if _, err := w.store.HealthSignal(ctx, w.tenant, w.adapter.ID, dripdrop.HealthSignalInput{HealthState: &state, Source: &source}); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Minute)
	if s := check(); s != "active" || w.health().Window.Sent != 0 {
		t.Fatalf("after recovery: %s %+v", s, w.health().Window)
	}
	events("sent", "", 1001, 0)
	events("complained", "", 3, 0)
	if s := check(); s != "active" {
		t.Fatalf("3 complaints in 1001 sends (0.2997 %%): %s", s)
	}
	dbtest.Exec(t, w.url, `DELETE FROM message_events WHERE id = (SELECT id FROM message_events WHERE type = 'sent' AND occurred_at = $1 LIMIT 1)`, w.clock.Now())
	if s := check(); s != "resting" {
		t.Fatalf("3 complaints in 1000 sends (0.3 %%): %s", s)
	}
	if r := w.health(); r.Transitions[0].Reason != "complaint_threshold" {
		t.Fatalf("latest transition %+v", r.Transitions[0])
	}
}
