package mailsync

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

func TestCandidate(t *testing.T) {
	t.Parallel()
	ours := func(id string) bool { return id == "ours-1@acme.example" }
	enrolled := func(a string) bool { return a == "pat@prospect.example" }
	l := Lookups{Ours: ours, Enrolled: enrolled}
	cases := []struct {
		name string
		e    Envelope
		want Reason
		ok   bool
	}{
		{"reply by In-Reply-To", Envelope{From: "pat@prospect.example", InReplyTo: []string{"ours-1@acme.example"}}, ReasonReply, true},
		{"reply by References only", Envelope{From: "x@y.example", References: []string{"other@z", "ours-1@acme.example"}}, ReasonReply, true},
		{"reply naming someone else's message", Envelope{From: "pat@prospect.example", InReplyTo: []string{"theirs@acme.example"}}, "", false},
		{"DSN by body type", Envelope{From: "bounces@relay.example", MIMEType: "multipart/report", ReportType: "delivery-status"}, ReasonReport, true},
		{"ARF", Envelope{From: "fbl@isp.example", MIMEType: "Multipart/Report", ReportType: "Feedback-Report"}, ReasonReport, true},
		{"multipart/report of an unknown type", Envelope{From: "a@b.example", MIMEType: "multipart/report", ReportType: "other"}, "", false},
		{"multipart/mixed", Envelope{From: "a@b.example", MIMEType: "multipart/mixed", ReportType: "delivery-status"}, "", false},
		{"mailer-daemon", Envelope{From: "MAILER-DAEMON@mx.example"}, ReasonMailerDaemon, true},
		{"postmaster", Envelope{From: "postmaster@mx.example"}, ReasonMailerDaemon, true},
		{"daemon in the return path", Envelope{From: "info@mx.example", Sender: "mailer-daemon@mx.example"}, ReasonMailerDaemon, true},
		{"auto-submitted from an enrolled contact", Envelope{From: "pat@prospect.example", AutoSubmitted: true}, ReasonAutoSubmitted, true},
		{"ooo subject from an enrolled contact", Envelope{From: "pat@prospect.example", Subject: "Out of Office: back Monday"}, ReasonAutoSubmitted, true},
		{"german auto-reply subject", Envelope{From: "pat@prospect.example", Subject: "Automatische Antwort: Ihre Nachricht"}, ReasonAutoSubmitted, true},
		{"auto-submitted from a stranger", Envelope{From: "news@shop.example", AutoSubmitted: true}, "", false},
		{"human mail from an enrolled contact, no thread", Envelope{From: "pat@prospect.example", Subject: "hello"}, "", false},
		{"newsletter", Envelope{From: "news@shop.example", Subject: "50% off"}, "", false},
		{"empty envelope", Envelope{}, "", false},
	}
	for _, c := range cases {
		got, ok := Candidate(c.e, l)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: Candidate = %q %v, want %q %v", c.name, got, ok, c.want, c.ok)
		}
	}
	// Without lookups only the self-describing rules apply.
	if _, ok := Candidate(Envelope{InReplyTo: []string{"ours-1@acme.example"}}, Lookups{}); ok {
		t.Error("no Ours lookup: a reply cannot be recognised")
	}
}

func TestPlanFolder(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	cur := &Cursor{UIDValidity: 7, LastUID: 41, HighestModSeq: 100}
	cases := []struct {
		name string
		cur  *Cursor
		st   Status
		want FolderPlan
	}{
		{"first connect backfills 14 days", nil, Status{UIDValidity: 7, UIDNext: 42}, FolderPlan{Action: Backfill, Since: now.Add(-14 * 24 * time.Hour)}},
		{"zero cursor backfills", &Cursor{}, Status{UIDValidity: 7, UIDNext: 42}, FolderPlan{Action: Backfill, Since: now.Add(-14 * 24 * time.Hour)}},
		{"uidvalidity change resyncs 7 days", cur, Status{UIDValidity: 8, UIDNext: 2}, FolderPlan{Action: Resync, Since: now.Add(-7 * 24 * time.Hour)}},
		{"nothing new: uidnext = last+1", cur, Status{UIDValidity: 7, UIDNext: 42, HighestModSeq: 100}, FolderPlan{Action: Idle}},
		{"flag change only (modseq moved): still idle", cur, Status{UIDValidity: 7, UIDNext: 42, HighestModSeq: 105}, FolderPlan{Action: Idle}},
		{"expunge lowered nothing: uidnext below last+1", cur, Status{UIDValidity: 7, UIDNext: 40}, FolderPlan{Action: Idle}},
		{"one new message", cur, Status{UIDValidity: 7, UIDNext: 43}, FolderPlan{Action: FetchNew, FromUID: 42}},
		{"no UIDNEXT reported, messages exist", cur, Status{UIDValidity: 7, Messages: 3}, FolderPlan{Action: FetchNew, FromUID: 42}},
		{"no UIDNEXT reported, empty", cur, Status{UIDValidity: 7}, FolderPlan{Action: Idle}},
	}
	for _, c := range cases {
		if got := PlanFolder(c.cur, c.st, now); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestAdvance(t *testing.T) {
	t.Parallel()
	cur := &Cursor{UIDValidity: 7, LastUID: 41}
	cases := []struct {
		name   string
		cur    *Cursor
		st     Status
		plan   FolderPlan
		maxUID uint32
		want   Cursor
	}{
		{"fetch new up to 45", cur, Status{UIDValidity: 7, UIDNext: 44, HighestModSeq: 9}, FolderPlan{Action: FetchNew}, 45, Cursor{UIDValidity: 7, LastUID: 45, HighestModSeq: 9}},
		{"fetch new, nothing returned: uidnext still counts", cur, Status{UIDValidity: 7, UIDNext: 44}, FolderPlan{Action: FetchNew}, 0, Cursor{UIDValidity: 7, LastUID: 43, HighestModSeq: 0}},
		{"backfill of an empty window", nil, Status{UIDValidity: 3, UIDNext: 100}, FolderPlan{Action: Backfill}, 0, Cursor{UIDValidity: 3, LastUID: 99, HighestModSeq: 0}},
		{"resync forgets the old last uid", &Cursor{UIDValidity: 7, LastUID: 500}, Status{UIDValidity: 8, UIDNext: 3}, FolderPlan{Action: Resync}, 2, Cursor{UIDValidity: 8, LastUID: 2, HighestModSeq: 0}},
		{"idle keeps it", cur, Status{UIDValidity: 7, UIDNext: 42}, FolderPlan{Action: Idle}, 0, Cursor{UIDValidity: 7, LastUID: 41, HighestModSeq: 0}},
		{"uidnext 1 (empty new folder)", nil, Status{UIDValidity: 1, UIDNext: 1}, FolderPlan{Action: Backfill}, 0, Cursor{UIDValidity: 1, LastUID: 0, HighestModSeq: 0}},
	}
	for _, c := range cases {
		if got := Advance(c.cur, c.st, c.plan, c.maxUID); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestNextSyncJitter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		r    float64
		want time.Duration
	}{{0, 54 * time.Second}, {0.5, 60 * time.Second}, {0.999999, 66 * time.Second}} {
		got := NextSync(now, time.Minute, c.r).Sub(now)
		if d := got - c.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("r=%v: %v, want %v", c.r, got, c.want)
		}
	}
	if got := NextSync(now, 0, 0.5).Sub(now); got != DefaultInterval {
		t.Errorf("zero interval: %v", got)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	cases := []struct {
		failures  int
		throttled bool
		want      time.Duration
	}{
		{0, false, time.Minute}, {1, false, time.Minute}, {2, false, 2 * time.Minute}, {3, false, 4 * time.Minute},
		{5, false, 16 * time.Minute}, {6, false, 30 * time.Minute}, {7, false, 30 * time.Minute}, {1000, false, 30 * time.Minute},
		{1, true, 2 * time.Minute}, {5, true, 30 * time.Minute},
	}
	for _, c := range cases {
		if got := Backoff(time.Minute, c.failures, c.throttled); got != c.want {
			t.Errorf("Backoff(1m, %d, %v) = %v, want %v", c.failures, c.throttled, got, c.want)
		}
	}
	if got := Backoff(20*time.Minute, 2, false); got != MaxBackoff {
		t.Errorf("long interval: %v", got)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err       error
		reason    string
		throttled bool
	}{
		{errors.New("NO [THROTTLED] Request is throttled. Suggested Backoff Time: 92415 milliseconds"), ReasonThrottled, true},
		{errors.New("NO [LIMIT] Too many simultaneous connections"), ReasonThrottled, true},
		{errors.New("Request is throttled"), ReasonThrottled, true},
		{errors.New("NO [UNAVAILABLE] Temporary problem, try again later"), ReasonThrottled, true},
		{errors.New("NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)"), ReasonAuth, false},
		{errors.New("AUTHENTICATE failed."), ReasonAuth, false},
		{fmt.Errorf("fetch: %w", io.ErrUnexpectedEOF), ReasonConnect, false},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), ReasonConnect, false},
		{errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), ReasonConnect, false},
		{timeoutErr{}, ReasonTimeout, false},
		{errors.New("NO [NONEXISTENT] Mailbox doesn't exist: Spam"), ReasonFolder, false},
		{errors.New("BAD Error in IMAP command"), ReasonProtocol, false},
	}
	for _, c := range cases {
		r, th := Classify(c.err)
		if r != c.reason || th != c.throttled {
			t.Errorf("%q: %s %v, want %s %v", c.err, r, th, c.reason, c.throttled)
		}
	}
	if r, th := Classify(nil); r != "" || th {
		t.Error("nil error")
	}
}

func TestReadHeaderFields(t *testing.T) {
	t.Parallel()
	block := "References: <a@x.example>\r\n <ours-1@acme.example>,<c@y>\r\nAuto-Submitted: auto-replied (vacation)\r\nReturn-Path: <MAILER-DAEMON@mx.example>\r\n\r\n"
	e := Envelope{From: "pat@prospect.example"}
	ReadHeaderFields(&e, []byte(block))
	if fmt.Sprint(e.References) != "[a@x.example ours-1@acme.example c@y]" || !e.AutoSubmitted || e.Sender != "mailer-daemon@mx.example" {
		t.Fatalf("%+v", e)
	}
	for _, c := range []struct {
		block string
		auto  bool
	}{
		{"Auto-Submitted: no\n", false}, {"Auto-Submitted: No; comment\n", false}, {"Auto-Submitted: auto-generated\n", true},
		{"Precedence: bulk\n", true}, {"Precedence: list\n", false}, {"X-Autoreply: yes\n", true}, {"X-Autorespond: \n", false},
		{"Garbage without colon\n continued\n", false},
	} {
		var e Envelope
		ReadHeaderFields(&e, []byte(c.block))
		if e.AutoSubmitted != c.auto {
			t.Errorf("%q: auto %v", c.block, e.AutoSubmitted)
		}
	}
	// Return-Path equal to From is not a separate sender.
	e = Envelope{From: "a@b.example"}
	ReadHeaderFields(&e, []byte("Return-Path: <a@b.example>\n"))
	if e.Sender != "" {
		t.Errorf("sender %q", e.Sender)
	}
}

func FuzzReadHeaderFields(f *testing.F) {
	f.Add([]byte("References: <a@x>\r\n <b@y>\r\nAuto-Submitted: auto-replied\r\n\r\n"))
	f.Add([]byte("Return-Path: <>\nPrecedence: junk\n"))
	f.Add([]byte("\n\n: \n \t\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		ReadHeaderFields(&e, b)
		if len(e.References) > 100 {
			t.Fatalf("%d references", len(e.References))
		}
		for _, id := range e.References {
			if id == "" {
				t.Fatal("empty id")
			}
		}
	})
}
