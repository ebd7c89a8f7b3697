package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/ingest/smtpd"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

// inboundWorld: the API over a store with a test clock, a real dispatcher
// sending to a real SMTP sink, and two tenants. Tenant "acme" has a sink
// adapter and a 3-step sequence (follow-ups one day apart).
type inboundWorld struct {
	*env
	clock   *testkit.Clock
	sink    *smtpsink.Sink
	disp    *dispatch.Dispatcher
	keyA    string
	keyB    string
	adapter dripdrop.Adapter
}

func newInboundWorld(t *testing.T) *inboundWorld {
	t.Helper()
	k := testkit.NewWorld(t, testkit.WithSteps(testkit.Step("intro", "Quick question", "Hi, first note.", 0),
		testkit.Step("bump", "", "Second note.", 86400), testkit.Step("last", "", "Third note.", 86400)))
	store, bus := k.Store, k.Bus
	srv := api.New(api.Config{Store: store, AdminToken: adminToken})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	w := &inboundWorld{env: &env{t: t, events: k.Events, dbURL: k.URL, store: store, server: srv, http: hs}, clock: k.Clock,
		sink: k.Sink, keyA: k.APIKey, adapter: k.Adapter}
	_, kb, err := store.CreateTenant(context.Background(), "beta", "")
	if err != nil {
		t.Fatal(err)
	}
	w.keyB = kb.Secret
	w.disp, err = dispatch.New(dispatch.Config{Store: store, Transport: loopbackTransport(), Telemetry: bus, Workers: 2, Lease: time.Minute, SendTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *inboundWorld) enroll(email string) dripdrop.Enrollment {
	w.t.Helper()
	key := "welcome"
	e, _, err := w.store.Enroll(context.Background(), "acme", dripdrop.EnrollInput{SequenceKey: &key, Contact: dripdrop.ContactInput{Email: &email}})
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// run ticks the real dispatcher until nothing more is claimed.
func (w *inboundWorld) run() {
	w.t.Helper()
	testkit.Settle(w.t, w.disp.Tick, w.disp.Drain)
}

func (w *inboundWorld) get(id uuid.UUID) dripdrop.Enrollment {
	w.t.Helper()
	e, err := w.store.GetEnrollment(context.Background(), "acme", id)
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

// sentTo returns the messages the sink received for one address.
func (w *inboundWorld) sentTo(addr string) []smtpsink.Message {
	var out []smtpsink.Message
	for _, m := range w.sink.Messages() {
		if len(m.To) == 1 && m.To[0] == addr {
			out = append(out, m)
		}
	}
	return out
}

func TestInboundEndToEnd(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	replier, oooer, bouncer, other := w.enroll("ann@client.example"), w.enroll("ooo@client2.example"), w.enroll("gone@client3.example"), w.enroll("zed@client4.example")
	w.run()
	if n := len(w.sink.Messages()); n != 4 {
		t.Fatalf("first step: %d messages, want 4", n)
	}
	msgID := func(addr string) string { return w.sentTo(addr)[0].Header().Get("Message-Id") }

	// Tenant B answers tenant A's Message-ID: stored for B, unmatched, nothing in A changes.
	res := w.must(201, "POST", "/v1/inbound", w.keyB, map[string]any{
		"message_id": "<cross@beta.example>", "from": "ann@client.example", "in_reply_to": msgID("ann@client.example"),
		"subject": "Re: Quick question", "body_text": "Yes, call me.", "received_at": "2026-11-24T10:05:00Z",
	})
	if res["correlation"] != "unmatched" || res["enrollment_id"] != nil || res["intent"] != "reply" {
		t.Fatalf("cross-tenant reply: %v", res)
	}
	if e := w.get(replier.ID); e.State != "active" {
		t.Fatalf("tenant B's reply changed tenant A's enrollment: %s", e.State)
	}
	if got := w.events.Named("dripdrop.ingest.unmatched_event"); len(got) != 1 || got[0]["tenant_key"] != "beta" {
		t.Fatalf("unmatched events: %v", got)
	}

	// A human reply (quoting our mail) stops the enrollment and cancels what is pending.
	replyBody := map[string]any{
		"message_id": "<r1@client.example>", "from": "Ann <ann@client.example>", "to": "ada@acme.example.com",
		"in_reply_to": msgID("ann@client.example"), "references": msgID("ann@client.example"),
		"subject": "Re: Quick question", "received_at": "2026-11-24T10:10:00Z",
		"body_text": "Sounds good, let's talk Thursday.\n\nOn Tue, Nov 24, 2026 at 10:00 AM Ada <ada@acme.example.com> wrote:\n> Hi, first note.\n",
		"headers":   map[string]any{"X-Mailer": "Apple Mail", "Received": []any{"from a", "from b"}},
	}
	res = w.must(201, "POST", "/v1/inbound", w.keyA, replyBody)
	if res["intent"] != "reply" || res["correlation"] != "in_reply_to" || res["enrollment_id"] != replier.ID.String() || res["duplicate"] != false {
		t.Fatalf("reply result: %v", res)
	}
	fx := res["effects"].(map[string]any)
	if fx["stop_reason"] != "replied" || len(fx["stopped"].([]any)) != 1 {
		t.Fatalf("reply effects: %v", fx)
	}
	e := w.get(replier.ID)
	if e.State != "stopped" || e.StopReason == nil || *e.StopReason != "replied" {
		t.Fatalf("after reply: %s %v", e.State, e.StopReason)
	}
	for _, x := range e.Executions[1:] {
		if x.State != "cancelled" {
			t.Fatalf("pending execution %s is %s after the reply", x.StepKey, x.State)
		}
	}
	// The same message again: the original result, nothing changes.
	dup := w.must(200, "POST", "/v1/inbound", w.keyA, replyBody)
	if dup["duplicate"] != true || dup["id"] != res["id"] || dup["intent"] != "reply" {
		t.Fatalf("duplicate: %v vs %v", dup, res)
	}
	if n := len(w.events.Named("dripdrop.ingest.duplicate_event")); n != 1 {
		t.Fatalf("%d duplicate events", n)
	}

	// An out-of-office reply moves the pending follow-ups to 09:00 on the return day.
	res = w.must(201, "POST", "/v1/inbound", w.keyA, map[string]any{
		"message_id": "ooo1@client2.example", "from": "ooo@client2.example", "in_reply_to": msgID("ooo@client2.example"),
		"subject": "Automatic reply: Quick question", "received_at": "2026-11-24T10:11:00Z",
		"headers":   map[string]any{"Auto-Submitted": "auto-replied"},
		"body_text": "Thank you for your message. I am out of the office and will be back on 3 December 2026 with limited access to e-mail.",
	})
	if res["intent"] != "ooo" || res["effects"].(map[string]any)["rescheduled"] != float64(1) {
		t.Fatalf("ooo result: %v", res)
	}
	want := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	e = w.get(oooer.ID)
	if e.State != "active" || !e.Executions[1].ScheduledFor.Equal(want) {
		t.Fatalf("after ooo: %s, next at %v (want %v)", e.State, e.Executions[1].ScheduledFor, want)
	}
	oe := w.events.Named("dripdrop.ingest.ooo_rescheduled")
	if len(oe) != 1 || oe[0]["enrollment_id"] != oooer.ID.String() || !oe[0]["return_at"].(time.Time).Equal(want) {
		t.Fatalf("ooo_rescheduled: %v", oe)
	}

	// A DSN for a sent message suppresses the address and stops the enrollment.
	// It arrives as a Postfix pipe with the F flag delivers it: an mbox
	// envelope line first, LF line endings.
	dsn := postfixDSN("gone@client3.example", msgID("gone@client3.example"), "5.1.1", "550 5.1.1 <gone@client3.example>: Recipient address rejected: User unknown")
	dsn = "From MAILER-DAEMON  Thu Nov 26 10:00:00 2026\n" + strings.ReplaceAll(dsn, "\r\n", "\n")
	r := w.do("POST", "/v1/inbound/raw", w.keyA, dsn, "Content-Type", "message/rfc822")
	if r.status != 201 {
		t.Fatalf("raw DSN: %d %s", r.status, r.body)
	}
	res = r.json(t)
	if res["intent"] != "bounce" || res["bounce_type"] != "hard" || res["correlation"] != "dsn" || res["effects"].(map[string]any)["suppressed"] != true {
		t.Fatalf("dsn result: %v", res)
	}
	if ok, _ := w.store.IsSuppressed(context.Background(), "acme", "gone@client3.example"); !ok {
		t.Fatal("the bounced address is not suppressed")
	}
	if e := w.get(bouncer.ID); e.State != "stopped" || *e.StopReason != "bounced" {
		t.Fatalf("after bounce: %s", e.State)
	}

	// Two days on: only the untouched enrollment sends; nothing more to the others.
	w.clock.Add(49 * time.Hour)
	w.run()
	if n := len(w.sentTo("ann@client.example")); n != 1 {
		t.Fatalf("replied contact received %d messages", n)
	}
	if n := len(w.sentTo("gone@client3.example")); n != 1 {
		t.Fatalf("bounced contact received %d messages", n)
	}
	if n := len(w.sentTo("ooo@client2.example")); n != 1 {
		t.Fatalf("ooo contact received %d messages before the return day", n)
	}
	if n := len(w.sentTo("zed@client4.example")); n != 2 { // step 3 is due a day after step 2 went out
		t.Fatalf("untouched contact received %d messages, want 2", n)
	}
	_ = other
	// On the return day the follow-up goes out.
	w.clock.Add(want.Add(time.Minute).Sub(w.clock.Now()))
	w.run()
	if n := len(w.sentTo("ooo@client2.example")); n < 2 {
		t.Fatalf("ooo contact received %d messages after the return day", n)
	}

	// Every accepted message emitted inbound_message with its intent.
	got := w.events.Named("dripdrop.ingest.inbound_message")
	intents := []string{}
	for _, m := range got {
		intents = append(intents, m["intent"].(string))
	}
	if strings.Join(intents, ",") != "reply,reply,ooo,bounce" {
		t.Fatalf("inbound_message intents: %v", intents)
	}
	for _, m := range got {
		for k, v := range m {
			if s, ok := v.(string); ok && strings.Contains(s, "@client") && k != "provider_message_id" {
				t.Fatalf("address in telemetry %s=%s", k, s)
			}
		}
	}
}

func TestInboundValidation(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	base := func() map[string]any {
		return map[string]any{"message_id": "<a@b>", "from": "x@y.example", "received_at": "2026-11-24T10:00:00Z"}
	}
	for _, f := range []string{"message_id", "from", "received_at"} {
		b := base()
		delete(b, f)
		assertProblem(t, w.do("POST", "/v1/inbound", w.keyA, b), 422, "required", f)
	}
	b := base()
	b["colour"] = "red"
	assertProblem(t, w.do("POST", "/v1/inbound", w.keyA, b), 422, "unknown_field", "colour")
	b = base()
	b["intent"] = "angry"
	assertProblem(t, w.do("POST", "/v1/inbound", w.keyA, b), 422, "invalid_value", "intent")
	b = base()
	b["received_at"] = "yesterday"
	assertProblem(t, w.do("POST", "/v1/inbound", w.keyA, b), 422, "invalid_value", "received_at")
	b = base()
	b["references"] = 42
	assertProblem(t, w.do("POST", "/v1/inbound", w.keyA, b), 422, "invalid_type", "references")
	b = base()
	b["adapter_id"] = uuid.NewString()
	assertProblem(t, w.do("POST", "/v1/inbound", w.keyA, b), 404, "not_found", "adapter_id")
	// Both shapes of references and headers are accepted.
	b = base()
	b["references"] = []any{"<x@y>", "z@w"}
	b["headers"] = map[string]any{"Auto-Submitted": "auto-replied", "Received": []any{"a", "b"}}
	b["intent"] = "ooo"
	b["intent_data"] = map[string]any{"return_at": "2026-12-01"}
	if r := w.do("POST", "/v1/inbound", w.keyA, b); r.status != 201 {
		t.Fatalf("valid input: %d %s", r.status, r.body)
	}
	// Raw: wrong media type, too large, not a message, another tenant's
	// adapter; nothing stored.
	other := w.must(201, "POST", "/v1/adapters", w.keyB, map[string]any{"name": "b", "provider": "sink", "from_address": "b@beta.example"})
	before := dbtest.RowCounts(t, w.dbURL)
	assertProblem(t, w.do("POST", "/v1/inbound/raw?adapter_id="+other["id"].(string), w.keyA, "From: a@b\r\n\r\nhi", "Content-Type", "message/rfc822"), 404, "not_found", "adapter_id")
	assertProblem(t, w.do("POST", "/v1/inbound/raw?adapter_id=nope", w.keyA, "From: a@b\r\n\r\nhi", "Content-Type", "message/rfc822"), 422, "invalid_value", "adapter_id")
	assertProblem(t, w.do("POST", "/v1/inbound/raw", w.keyA, "From: a@b\r\n\r\nhi", "Content-Type", "text/plain"), 415, "unsupported_media_type", "Content-Type")
	big := "From: a@b.example\r\nMessage-ID: <big@b.example>\r\nSubject: big\r\n\r\n" + strings.Repeat("x", 10<<20)
	assertProblem(t, w.do("POST", "/v1/inbound/raw", w.keyA, big, "Content-Type", "message/rfc822"), 413, "payload_too_large", "body")
	assertProblem(t, w.do("POST", "/v1/inbound/raw", w.keyA, "\r\n\r\n", "Content-Type", "message/rfc822"), 422, "invalid_value", "body")
	if after := dbtest.RowCounts(t, w.dbURL); !reflect.DeepEqual(before, after) {
		t.Fatalf("rejected raw messages changed rows:\nbefore %v\nafter  %v", before, after)
	}
	// Idempotency-Key works for raw messages above the 1 MiB JSON limit.
	mid := "From: a@b.example\r\nMessage-ID: <two-mib@b.example>\r\nSubject: hi\r\n\r\n" + strings.Repeat("z", 2<<20)
	if r := w.do("POST", "/v1/inbound/raw", w.keyA, mid, "Content-Type", "message/rfc822", "Idempotency-Key", "raw-1"); r.status != 201 {
		t.Fatalf("2 MiB message with Idempotency-Key: %d %s", r.status, r.body)
	}
	if r := w.do("POST", "/v1/inbound/raw", w.keyA, mid, "Content-Type", "message/rfc822", "Idempotency-Key", "raw-1"); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v", r.status, r.header)
	}
	atLimit := "From: a@b.example\r\nMessage-ID: <limit@b.example>\r\nSubject: hi\r\n\r\n"
	atLimit += strings.Repeat("y", 10<<20-len(atLimit))
	if r := w.do("POST", "/v1/inbound/raw", w.keyA, atLimit, "Content-Type", "message/rfc822"); r.status != 201 {
		t.Fatalf("10 MiB message: %d %s", r.status, r.body)
	}
}

// postfixDSN is a Postfix bounce of message id sent to rcpt.
func postfixDSN(rcpt, id, status, diag string) string {
	return strings.ReplaceAll(fmt.Sprintf(`Return-Path: <>
Received: by mx.client3.example (Postfix) id 4ZkQ1x2r3Wz9sT; Tue, 24 Nov 2026 10:12:01 +0000 (UTC)
Date: Tue, 24 Nov 2026 10:12:01 +0000 (UTC)
From: MAILER-DAEMON@mx.client3.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: ada@acme.example.com
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4ZkQ1x2r3Wz9sT.1764000721/mx.client3.example"
Message-Id: <20261124101201.4ZkQ1x2r3Wz9sT@mx.client3.example>

This is a MIME-encapsulated message.

--4ZkQ1x2r3Wz9sT.1764000721/mx.client3.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.client3.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<%[1]s>: host mx.client3.example[192.0.2.10] said: %[4]s (in reply to RCPT TO command)

--4ZkQ1x2r3Wz9sT.1764000721/mx.client3.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.client3.example
X-Postfix-Queue-ID: 4ZkQ1x2r3Wz9sT
Arrival-Date: Tue, 24 Nov 2026 10:12:00 +0000 (UTC)

Final-Recipient: rfc822; %[1]s
Original-Recipient: rfc822;%[1]s
Action: failed
Status: %[3]s
Remote-MTA: dns; mx.client3.example
Diagnostic-Code: smtp; %[4]s

--4ZkQ1x2r3Wz9sT.1764000721/mx.client3.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Ada <ada@acme.example.com>
To: %[1]s
Subject: Quick question
Message-ID: %[2]s
Date: Tue, 24 Nov 2026 10:00:00 +0000

--4ZkQ1x2r3Wz9sT.1764000721/mx.client3.example--
`, rcpt, id, status, diag), "\n", "\r\n")
}

// TestInboundSMTP holds a real SMTP conversation with the listener: unknown
// recipients are refused at RCPT, the tenant comes from the recipient, a
// reply stops the sequence and nothing more is sent; limits hold.
func TestInboundSMTP(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	sam := w.enroll("sam@client5.example")
	w.run()
	sent := w.sentTo("sam@client5.example")
	if len(sent) != 1 {
		t.Fatalf("%d messages to sam", len(sent))
	}
	ln, err := smtpd.Listen(smtpd.Config{Addr: "127.0.0.1:0", Store: w.store})
	if err != nil {
		t.Fatal(err)
	}
	go ln.Serve()
	t.Cleanup(func() { ln.Close() })

	c, err := gosmtp.Dial(ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mx.client5.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sam@client5.example", nil); err != nil {
		t.Fatal(err)
	}
	var se *gosmtp.SMTPError
	if err := c.Rcpt("nobody@acme.example.com", nil); !errors.As(err, &se) || se.Code != 550 || se.EnhancedCode != (gosmtp.EnhancedCode{5, 1, 1}) {
		t.Fatalf("unknown recipient: %v", err)
	}
	if err := c.Rcpt("Ada@ACME.example.com", nil); err != nil {
		t.Fatalf("known recipient refused: %v", err)
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	id := sent[0].Header().Get("Message-Id")
	fmt.Fprintf(wc, "From: Sam <sam@client5.example>\r\nTo: ada@acme.example.com\r\nSubject: Re: Quick question\r\nMessage-ID: <smtp-reply-1@client5.example>\r\nIn-Reply-To: %s\r\nReferences: %s\r\nDate: Tue, 24 Nov 2026 10:30:00 +0000\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGern, rufen Sie mich an. Gr=FC=DFe\r\n\r\nOn Tue, Nov 24, 2026 at 10:00 AM Ada <ada@acme.example.com> wrote:\r\n> Hi, first note.\r\n", id, id)
	if err := wc.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	e := w.get(sam.ID)
	if e.State != "stopped" || *e.StopReason != "replied" {
		t.Fatalf("after the SMTP reply: %s", e.State)
	}
	w.clock.Add(72 * time.Hour)
	w.run()
	if n := len(w.sentTo("sam@client5.example")); n != 1 {
		t.Fatalf("sam received %d messages after replying", n)
	}

	// 50 recipients at most.
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("sam@client5.example", nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 51; i++ {
		err := c.Rcpt("ada@acme.example.com", nil)
		if i <= 50 && err != nil {
			t.Fatalf("recipient %d refused: %v", i, err)
		}
		if i == 51 && err == nil {
			t.Fatal("a 51st recipient was accepted")
		}
	}
	// 10 MiB at most.
	wc, err = c.Data()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(wc, "From: sam@client5.example\r\nMessage-ID: <big@client5.example>\r\nSubject: big\r\n\r\n")
	line := strings.Repeat("x", 998) + "\r\n"
	for written := 0; written <= 10<<20; written += len(line) {
		if _, err := io.WriteString(wc, line); err != nil {
			break
		}
	}
	if err := wc.Close(); !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("oversized message: %v", err)
	}
}

// TestInboundEffects: company stop (free-mail excepted), complaint,
// unsubscribe, auto-reply, soft bounce, and a raw reply, each with its
// message_event for the adapter that sent the original.
func TestInboundEffects(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	ctx := context.Background()
	key, name, on := "company", "Company", true
	pool, _, err := w.store.ListPools(ctx, "acme", db.Page{})
	if err != nil {
		t.Fatal(err)
	}
	subj, body, delay := "Hello", "First.", int64(0)
	sk, sk2, body2, delay2 := "one", "two", "Second.", int64(86400)
	if _, err := w.store.CreateSequence(ctx, "acme", dripdrop.SequenceInput{Key: &key, Name: &name, VersionInput: dripdrop.VersionInput{
		PoolID: &pool[0].ID, StopCompanyOnReply: &on,
		SendWindow: &dripdrop.SendWindow{Days: []int{0, 1, 2, 3, 4, 5, 6}, Start: "00:00", End: "23:59", Timezone: "UTC"},
		Steps:      []dripdrop.StepInput{{Key: &sk, Subject: &subj, BodyText: &body, DelaySeconds: &delay}, {Key: &sk2, BodyText: &body2, DelaySeconds: &delay2}},
	}}); err != nil {
		t.Fatal(err)
	}
	enrollIn := func(seq, email string) dripdrop.Enrollment {
		e, _, err := w.store.Enroll(ctx, "acme", dripdrop.EnrollInput{SequenceKey: &seq, Contact: dripdrop.ContactInput{Email: &email}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b, c := enrollIn("company", "a@bigco.example"), enrollIn("welcome", "b@bigco.example"), enrollIn("company", "c@bigco.example")
	d, e := enrollIn("company", "d@gmail.com"), enrollIn("company", "e@gmail.com")
	f, g, h, i := enrollIn("welcome", "f@f.example"), enrollIn("welcome", "g@g.example"), enrollIn("welcome", "h@h.example"), enrollIn("welcome", "i@i.example")
	w.run()
	mid := func(addr string) string { return w.sentTo(addr)[0].Header().Get("Message-Id") }
	state := func(id uuid.UUID) string {
		en := w.get(id)
		if en.StopReason != nil {
			return string(en.State) + "/" + *en.StopReason
		}
		return string(en.State)
	}

	// A raw reply from a@bigco stops a and, with company stop, c and b (another sequence, same tenant).
	raw := fmt.Sprintf("From: A <a@bigco.example>\r\nTo: ada@acme.example.com\r\nSubject: Re: Hello\r\nMessage-ID: <raw-reply@bigco.example>\r\nReferences: <unknown@elsewhere> %s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Yes please.</p><blockquote>First.</blockquote>", mid("a@bigco.example"))
	r := w.do("POST", "/v1/inbound/raw?adapter_id="+w.adapter.ID.String(), w.keyA, raw, "Content-Type", "message/rfc822")
	if r.status != 201 {
		t.Fatalf("raw reply: %d %s", r.status, r.body)
	}
	res := r.json(t)
	if res["correlation"] != "references" || len(res["effects"].(map[string]any)["company_stopped"].([]any)) != 2 {
		t.Fatalf("raw reply result: %v", res)
	}
	if state(a.ID) != "stopped/replied" || state(b.ID) != "stopped/company_replied" || state(c.ID) != "stopped/company_replied" {
		t.Fatalf("company stop: %s %s %s", state(a.ID), state(b.ID), state(c.ID))
	}
	// Free mail: only the replier stops.
	w.must(201, "POST", "/v1/inbound", w.keyA, map[string]any{"message_id": "<d1@gmail.com>", "from": "d@gmail.com", "in_reply_to": mid("d@gmail.com"), "body_text": "ok", "received_at": "2026-11-24T11:00:00Z"})
	if state(d.ID) != "stopped/replied" || state(e.ID) != "active" {
		t.Fatalf("free-mail: %s %s", state(d.ID), state(e.ID))
	}

	// ARF complaint: suppress + stop.
	arf := fmt.Sprintf("From: fbl@isp.example\r\nMessage-ID: <arf1@isp.example>\r\nSubject: complaint\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nabuse report\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: ada@acme.example.com\r\nMessage-ID: %s\r\n\r\n--b--\r\n", mid("f@f.example"))
	r = w.do("POST", "/v1/inbound/raw", w.keyA, arf, "Content-Type", "message/rfc822")
	if res := r.json(t); r.status != 201 || res["intent"] != "complaint" || res["correlation"] != "dsn" {
		t.Fatalf("arf: %d %s", r.status, r.body)
	}
	// Unsubscribe request, auto-reply, soft bounce.
	w.must(201, "POST", "/v1/inbound", w.keyA, map[string]any{"message_id": "<g1@g.example>", "from": "g@g.example", "in_reply_to": mid("g@g.example"),
		"subject": "Re: Quick question", "body_text": "Bitte tragen Sie mich aus Ihrem Verteiler aus.", "received_at": "2026-11-24T11:00:00Z"})
	w.must(201, "POST", "/v1/inbound", w.keyA, map[string]any{"message_id": "<h1@h.example>", "from": "h@h.example", "in_reply_to": mid("h@h.example"),
		"subject": "Re: Quick question", "body_text": "Ticket 42 received.", "headers": map[string]any{"Auto-Submitted": "auto-replied"}, "received_at": "2026-11-24T11:00:00Z"})
	w.must(201, "POST", "/v1/inbound", w.keyA, map[string]any{"message_id": "<i1@mx.i.example>", "from": "MAILER-DAEMON@mx.i.example", "references": []string{mid("i@i.example")},
		"subject": "Delivery delayed", "body_text": "451 4.2.2 Mailbox full, will retry", "intent": "bounce", "received_at": "2026-11-24T11:00:00Z"})
	for _, c := range []struct {
		id         uuid.UUID
		addr, want string
		suppressed bool
	}{
		{f.ID, "f@f.example", "stopped/complained", true},
		{g.ID, "g@g.example", "stopped/unsubscribed", true},
		{h.ID, "h@h.example", "active", false},
		{i.ID, "i@i.example", "active", false},
	} {
		sup, _ := w.store.IsSuppressed(ctx, "acme", c.addr)
		if state(c.id) != c.want || sup != c.suppressed {
			t.Errorf("%s: %s suppressed=%v, want %s suppressed=%v", c.addr, state(c.id), sup, c.want, c.suppressed)
		}
	}
	// Nothing more goes to the contacts that replied, complained or unsubscribed.
	w.clock.Add(49 * time.Hour)
	w.run()
	for _, addr := range []string{"a@bigco.example", "b@bigco.example", "c@bigco.example", "d@gmail.com", "f@f.example", "g@g.example"} {
		if n := len(w.sentTo(addr)); n != 1 {
			t.Errorf("%s received %d messages, want 1", addr, n)
		}
	}
	if n := len(w.sentTo("e@gmail.com")); n != 2 {
		t.Errorf("e@gmail.com received %d messages, want 2", n)
	}
	rows := dbtest.Query(t, w.dbURL, `SELECT type || coalesce('/' || subtype, '') FROM message_events
		WHERE tenant_key = 'acme' AND type <> 'sent' AND adapter_id = $1 ORDER BY occurred_at, type`, w.adapter.ID)
	var types []string
	for _, r := range rows {
		types = append(types, r[0].(string))
	}
	sort.Strings(types)
	if strings.Join(types, ",") != "auto_reply,bounced/soft,complained,replied,replied,unsubscribed" {
		t.Fatalf("message events: %v", types)
	}
}

// TestInboundHealthInput: a hard bounce is health input for the adapter that
// sent the original, checked at once: 1 bounce in 20 sends (5 % ≥ 2 %)
// rests the adapter in the same transaction.
func TestInboundHealthInput(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	for i := 0; i < 20; i++ {
		w.enroll(fmt.Sprintf("p%02d@health.example", i))
	}
	w.run()
	if n := len(w.sink.Messages()); n != 20 {
		t.Fatalf("%d sends, want 20", n)
	}
	rcpt := "p07@health.example"
	dsn := postfixDSN(rcpt, w.sentTo(rcpt)[0].Header().Get("Message-Id"), "5.1.1", "550 5.1.1 User unknown")
	if r := w.do("POST", "/v1/inbound/raw", w.keyA, dsn, "Content-Type", "message/rfc822"); r.status != 201 {
		t.Fatalf("dsn: %d %s", r.status, r.body)
	}
	a, err := w.store.GetAdapter(context.Background(), "acme", w.adapter.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.HealthState != "resting" {
		t.Fatalf("adapter is %s after a 5 %% bounce rate, want resting", a.HealthState)
	}
	if ev := w.events.Named("dripdrop.health.bounce_threshold"); len(ev) != 1 || ev[0]["adapter_id"] != w.adapter.ID.String() {
		t.Fatalf("bounce_threshold events: %v", ev)
	}
}

// loopbackTransport reaches the test's SMTP sink on 127.0.0.1, which the
// outbound-destination guard refuses unless private targets are allowed.
func loopbackTransport() *dispatch.SMTPTransport {
	tr := dispatch.NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	return tr
}
