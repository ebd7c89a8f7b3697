package dispatch_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
)

func (w *world) secondAdapter(from string) dripdrop.Adapter {
	w.t.Helper()
	name, prov := "extra "+from, "sink"
	a, err := w.store.CreateAdapter(context.Background(), w.tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none"}})
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// TestRepinStartsNewThread: after a repin, the next step starts a new thread
// (no In-Reply-To/References to the old sender's messages) and the thread
// continues from there.
func TestRepinStartsNewThread(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("one", "Subject one", "1", 0), step("two", "", "2", 3600), step("three", "", "3", 3600))
	other := w.secondAdapter("bea@other.example.com")
	en := w.enroll("bob@example.com", nil)
	w.run()
	reason := "mailbox retired"
	if _, err := w.store.RepinEnrollment(context.Background(), w.tenant, en.ID, dripdrop.RepinInput{AdapterID: &other.ID, Reason: &reason}); err != nil {
		t.Fatal(err)
	}
	w.clock.Add(time.Hour + time.Second)
	w.run()
	w.clock.Add(time.Hour + time.Second)
	w.run()
	msgs := w.sink.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	h1, h2 := msgs[1].Header(), msgs[2].Header()
	if msgs[1].From != "bea@other.example.com" || h1.Get("In-Reply-To") != "" || h1.Get("References") != "" {
		t.Fatalf("first message after repin: from %s In-Reply-To %q References %q", msgs[1].From, h1.Get("In-Reply-To"), h1.Get("References"))
	}
	if h1.Get("Subject") != "Subject one" {
		t.Fatalf("a new thread restarts from the first subject, got %q", h1.Get("Subject"))
	}
	if h2.Get("In-Reply-To") != msgs[1].MessageID || h2.Get("References") != msgs[1].MessageID || h2.Get("Subject") != "Re: Subject one" {
		t.Fatalf("the new thread continues: %v", h2)
	}
}

// TestOverrideStepIsOutsideTheThread: an override step sends from another
// adapter in a thread of its own, and later steps do not reference it.
func TestOverrideStepIsOutsideTheThread(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	other := w.secondAdapter("ops@other.example.com")
	key, seqName := "override", "Override"
	s1, s2, s3 := step("a", "Alpha", "1", 0), step("b", "Breaking news", "2", 0), step("c", "", "3", 0)
	s2.AdapterOverrideID = &other.ID
	if _, err := w.store.CreateSequence(context.Background(), w.tenant, dripdrop.SequenceInput{Key: &key, Name: &seqName, VersionInput: dripdrop.VersionInput{
		PoolID: &w.pool.ID, SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59"}, Steps: []dripdrop.StepInput{s1, s2, s3},
	}}); err != nil {
		t.Fatal(err)
	}
	email := "bob@example.com"
	if _, _, err := w.store.Enroll(context.Background(), w.tenant, dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &email}}); err != nil {
		t.Fatal(err)
	}
	w.run()
	msgs := w.sink.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	h1, h2 := msgs[1].Header(), msgs[2].Header()
	if msgs[1].From != "ops@other.example.com" || h1.Get("In-Reply-To") != "" || h1.Get("Subject") != "Breaking news" {
		t.Fatalf("override step: from %s, %v", msgs[1].From, h1)
	}
	if msgs[2].From != "ada@acme.example.com" || h2.Get("In-Reply-To") != msgs[0].MessageID || h2.Get("References") != msgs[0].MessageID || h2.Get("Subject") != "Re: Alpha" {
		t.Fatalf("the main thread skips the override: %v", h2)
	}
}

// TestFollowUpsBeforeFirstTouches: with one send allowed at a time, a due
// follow-up goes before an older first touch.
func TestFollowUpsBeforeFirstTouches(t *testing.T) {
	t.Parallel()
	gap := 60
	w := newWorld(t, dripdrop.AdapterInput{MinGapSeconds: &gap}, step("one", "Hi", "1", 0), step("two", "", "2", 30))
	w.enroll("first@example.com", nil)
	w.run() // step one of "first"; its follow-up is due in 30 s
	w.enroll("second@example.com", nil)
	w.run() // the gap blocks the older first touch of "second"
	w.clock.Add(61 * time.Second)
	w.run() // both due: the follow-up (due later) goes before the first touch
	msgs := w.sink.Messages()
	if len(msgs) != 2 || msgs[1].To[0] != "first@example.com" {
		t.Fatalf("after the gap the follow-up must go first: %v", len(msgs))
	}
}

// TestRetryRendersIdenticalText: spintax choices depend on the execution
// and attempt window only, so a retry renders the same bytes.
func TestRetryRendersIdenticalText(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "{Hi|Hello|Hey} {there|friend}", "{a|b|c|d} {e|f|g|h} {i|j|k|l} {m|n|o|p}", 0))
	w.sink.SetFaults(func(_ string, attempt int) smtpsink.Fault {
		if attempt == 1 {
			return smtpsink.Fault{Kind: smtpsink.Drop} // kept by the sink, no reply: a temporary failure
		}
		return smtpsink.Fault{}
	})
	w.enroll("bob@example.com", nil)
	w.run()
	w.clock.Add(31 * time.Second)
	w.run()
	msgs := w.sink.Messages()
	if len(msgs) != 2 || !msgs[0].Dropped || msgs[0].MessageID != msgs[1].MessageID {
		t.Fatalf("want a dropped attempt and a retry with the same Message-ID: %d", len(msgs))
	}
	body := func(b []byte) []byte { return b[bytes.Index(b, []byte("\r\n\r\n")):] }
	if !bytes.Equal(body(msgs[0].Data), body(msgs[1].Data)) || msgs[0].Subject != msgs[1].Subject {
		t.Fatalf("retry rendered differently:\n%s\n---\n%s", msgs[0].Data, msgs[1].Data)
	}
}

// TestSuppressedAtSendTime: an address suppressed after enrollment is
// skipped and the enrollment stopped.
func TestSuppressedAtSendTime(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	en := w.enroll("bob@late.example.com", nil)
	d := "late.example.com"
	if _, err := w.store.AddSuppression(context.Background(), w.tenant, dripdrop.SuppressionInput{Domain: &d}); err != nil {
		t.Fatal(err)
	}
	w.run()
	got := w.enrollment(en.ID)
	if len(w.sink.Messages()) != 0 || got.State != "stopped" || *got.StopReason != "suppressed" || got.Executions[0].State != "skipped" {
		t.Fatalf("suppressed at send time: %s %+v", got.State, got.Executions[0])
	}
	if ev := w.ev.Named("dripdrop.policy.suppressed"); len(ev) != 1 || ev[0]["scope"] != "domain" {
		t.Fatalf("policy.suppressed events %v", ev)
	}
}

func TestListUnsubscribeHeaders(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	key := []byte("k")
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), PublicBaseURL: "https://dd.example.com/", UnsubscribeKey: key})
	if err != nil {
		t.Fatal(err)
	}
	w.disp = d
	en := w.enroll("bob@example.com", nil)
	w.run()
	h := w.sink.Messages()[0].Header()
	want := "<https://dd.example.com/u/" + dripdrop.UnsubscribeToken(key, w.tenant, en.ID) + ">, <mailto:ada@acme.example.com?subject=unsubscribe>"
	if h.Get("List-Unsubscribe") != want || h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("List-Unsubscribe %q / %q, want %q", h.Get("List-Unsubscribe"), h.Get("List-Unsubscribe-Post"), want)
	}
}

// TestListUnsubscribePerVersion: a version's list_unsubscribe setting
// reaches the wire: off sends no List-Unsubscribe headers at all, mailto
// only the mailto: form, even with a one-click URL configured; the body is
// unchanged.
func TestListUnsubscribePerVersion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Body", 0))
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), PublicBaseURL: "https://dd.example.com/", UnsubscribeKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	w.disp = d
	ctx := context.Background()
	seq, err := w.store.GetSequenceByKey(ctx, w.tenant, "welcome")
	if err != nil {
		t.Fatal(err)
	}
	if seq.Versions[0].ListUnsubscribe != "one_click" {
		t.Fatalf("default setting %q, want one_click", seq.Versions[0].ListUnsubscribe)
	}
	for i, c := range []struct{ mode, unsub string }{
		{"off", ""},
		{"mailto", "<mailto:ada@acme.example.com?subject=unsubscribe>"},
	} {
		mode := c.mode
		subject, body := "Hi", "Body"
		if _, err := w.store.CreateVersion(ctx, w.tenant, seq.ID, dripdrop.VersionInput{PoolID: &w.pool.ID, ListUnsubscribe: &mode,
			SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"},
			Steps:      []dripdrop.StepInput{{Subject: &subject, BodyText: &body}}}, true); err != nil {
			t.Fatal(err)
		}
		w.enroll(mode+"@example.com", nil)
		w.run()
		msgs := w.sink.Messages()
		if len(msgs) != i+1 {
			t.Fatalf("%s: %d messages, want %d", mode, len(msgs), i+1)
		}
		m := msgs[i]
		h := m.Header()
		if m.To[0] != mode+"@example.com" {
			t.Fatalf("%s: message to %v", mode, m.To)
		}
		if got, present := h["List-Unsubscribe"]; (c.unsub == "") == present || present && (len(got) != 1 || got[0] != c.unsub) {
			t.Errorf("%s: List-Unsubscribe %q (present %v), want %q", mode, got, present, c.unsub)
		}
		if got, present := h["List-Unsubscribe-Post"]; present {
			t.Errorf("%s: List-Unsubscribe-Post %q, want absent", mode, got)
		}
		if !bytes.Contains(m.Data, []byte("\r\n\r\nBody")) {
			t.Errorf("%s: body changed:\n%s", mode, m.Data)
		}
	}
}

// TestDateIsTheEnginesClock: the Date header is the injected clock's time
// when the message is built for hand-over, not the wall clock.
func TestDateIsTheEnginesClock(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{}, step("one", "Hi", "1", 0), step("two", "", "2", 3600))
	w.enroll("bob@example.com", nil)
	w.run() // the clock stands at Tuesday 24 November 2026 10:00:00 UTC
	w.clock.Add(time.Hour + 90*time.Second + 250*time.Millisecond)
	w.run()
	msgs := w.sink.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, want := range []string{"Tue, 24 Nov 2026 10:00:00 +0000", "Tue, 24 Nov 2026 11:01:30 +0000"} {
		if got := msgs[i].Header()["Date"]; len(got) != 1 || got[0] != want {
			t.Errorf("message %d: Date %q, want exactly %q", i+1, got, want)
		}
	}
}
