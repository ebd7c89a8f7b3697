package dispatch_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/imaptest"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/internal/oauthtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailsync"
	"github.com/dripdrop/dripdrop/oauth"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/webhook"
)

// Every catalog event that reports a committed change reaches subscribers:
// each scenario below drives its events through a real path (the HTTP API,
// the dispatcher against an SMTP sink, ingest, the health check, the
// webhook worker) and finds every one of them in GET /v1/telemetry/events,
// with exactly the catalog's metadata keys. The scenarios' event lists and
// the catalog are checked against each other, so an event added to the
// catalog without a scenario here fails.

// feedWorld is a dispatch world with the HTTP API on the same store.
type feedWorld struct {
	*world
	http *httptest.Server
	key  string
}

func newFeedWorld(t *testing.T, adapterIn dripdrop.AdapterInput, steps ...dripdrop.StepInput) *feedWorld {
	t.Helper()
	w := newWorld(t, adapterIn, steps...)
	k, err := w.store.CreateAPIKey(context.Background(), w.tenant, "feed")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(api.Config{Store: w.store}))
	t.Cleanup(hs.Close)
	return &feedWorld{world: w, http: hs, key: k.Secret}
}

// call sends a JSON request with the tenant's key and decodes the answer,
// failing the test unless the status is want.
func (f *feedWorld) call(want int, method, path string, body any) map[string]any {
	f.t.Helper()
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.http.URL+path, rdr)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		f.t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			f.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return m
}

// enroll enrolls email into the welcome sequence over the API.
func (f *feedWorld) enroll(email string) string {
	f.t.Helper()
	m := f.call(201, "POST", "/v1/enrollments", map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": email, "first_name": "Bob"}})
	return m["id"].(string)
}

// batch enrolls the addresses into the welcome sequence with one
// POST /v1/enrollments/batch and returns the results.
func (f *feedWorld) batch(emails ...string) []any {
	f.t.Helper()
	contacts := make([]any, len(emails))
	for i, e := range emails {
		contacts[i] = map[string]any{"email": e, "first_name": "Bob", "vars": map[string]any{"plan": "pro"}}
	}
	return f.call(200, "POST", "/v1/enrollments/batch", map[string]any{"sequence_key": "welcome", "contacts": contacts})["results"].([]any)
}

// sentMessageID is the Message-ID of the first message the sink received for rcpt.
func (f *feedWorld) sentMessageID(rcpt string) string {
	f.t.Helper()
	for _, m := range f.sink.Messages() {
		if slices.Contains(m.To, rcpt) {
			return m.MessageID
		}
	}
	f.t.Fatalf("no message to %s", rcpt)
	return ""
}

// inbound posts a normalized inbound message: 201 when it is new, 200
// when it repeats one.
func (f *feedWorld) inbound(want int, m map[string]any) map[string]any {
	f.t.Helper()
	if _, ok := m["received_at"]; !ok {
		m["received_at"] = f.clock.Now().Format(time.RFC3339)
	}
	return f.call(want, "POST", "/v1/inbound", m)
}

// feed reads the tenant's feed until every name in want is listed (the
// feed holds an event back while an older writer is still in progress) or
// 5 s pass, and returns the events by name.
func (f *feedWorld) feed(want []string) map[string][]map[string]any {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string][]map[string]any{}
		after := "0"
		for {
			m := f.call(200, "GET", "/v1/telemetry/events?limit=1000&after="+url.QueryEscape(after), nil)
			data := m["data"].([]any)
			for _, d := range data {
				e := d.(map[string]any)
				got[e["name"].(string)] = append(got[e["name"].(string)], e)
				after = fmt.Sprint(e["id"])
			}
			if len(data) < 1000 {
				break
			}
		}
		missing := false
		for _, n := range want {
			missing = missing || len(got[n]) == 0
		}
		if !missing || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedScenarios name the events each drives; every event of the catalog
// that is not in-process only must be named by one of them.
var feedScenarios = []struct {
	name   string
	events []string
	run    func(t *testing.T) *feedWorld
}{
	{"enroll, send, complete", []string{"dripdrop.dispatch.adapter_pinned", "dripdrop.dispatch.sent", "dripdrop.enrollment.completed"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Hello", 0))
			f.enroll("bob@example.com")
			f.run()
			return f
		}},
	{"a batch import pins its contacts", []string{"dripdrop.dispatch.adapter_pinned"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			f.batch("ann@example.com", "ben@example.com")
			return f
		}},
	{"health signal rests the adapter; an enroll finds the pool exhausted",
		[]string{"dripdrop.health.external_signal", "dripdrop.health.state_changed", "dripdrop.dispatch.pool_exhausted"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			f.call(200, "POST", "/v1/adapters/"+f.adapter.ID.String()+"/health", map[string]any{"health_state": "resting", "source": "test"})
			f.call(409, "POST", "/v1/enrollments", map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": "x@example.com"}})
			return f
		}},
	{"a resting adapter defers its sends", []string{"dripdrop.policy.adapter_resting", "dripdrop.dispatch.deferred"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			f.enroll("bob@example.com")
			f.call(200, "POST", "/v1/adapters/"+f.adapter.ID.String()+"/health", map[string]any{"health_state": "resting", "source": "test"})
			f.run()
			return f
		}},
	{"a revoked OAuth2 grant: the mailbox must be reconnected", []string{"dripdrop.adapter.reconnect_required"},
		func(t *testing.T) *feedWorld {
			smtp := "smtp"
			f := newFeedWorld(t, dripdrop.AdapterInput{Provider: &smtp})
			ctx := context.Background()
			as := oauthtest.New(t, f.clock.Now)
			custom, cid, secret, auth, tok := "custom", as.ClientID, as.ClientSecret, as.AuthURL(), as.TokenURL()
			app, err := privateTargetStore(t, f.world).CreateOAuthApp(ctx, f.tenant, dripdrop.OAuthAppInput{Provider: &custom, ClientID: &cid, ClientSecret: &secret,
				AuthURL: &auth, TokenURL: &tok, Scopes: []string{"mail"}})
			if err != nil {
				t.Fatal(err)
			}
			oauth2 := dripdrop.AuthOAuth2
			if _, err := f.store.UpdateAdapter(ctx, f.tenant, f.adapter.ID, dripdrop.AdapterInput{Auth: &oauth2, OAuthAppID: &app.ID}); err != nil {
				t.Fatal(err)
			}
			src := oauth.NewSource(f.store, oauth.Config{Guard: netguard.Guard{AllowPrivate: true}})
			rt := as.Grant(f.adapter.FromAddress)
			if _, err := src.StoreRefreshToken(ctx, f.tenant, f.adapter.ID, dripdrop.OAuthTokenInput{RefreshToken: &rt}); err != nil {
				t.Fatal(err)
			}
			as.Revoke(rt)
			f.clock.Add(56 * time.Minute) // the access token is due for a refresh
			f.enroll("bob@example.com")
			tr := sinkTransport()
			tr.Tokens = src
			d, err := dispatch.New(dispatch.Config{Store: f.store, Transport: tr, Workers: 2, Lease: time.Minute, SendTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			testkit.Settle(t, d.Tick, d.Drain)
			return f
		}},
	{"ramp cap", []string{"dripdrop.policy.ramp_cap"},
		func(t *testing.T) *feedWorld {
			floor := 1
			f := newFeedWorld(t, dripdrop.AdapterInput{DailyCap: some(10), RampFloor: &floor, RampIncrement: some(1)}, step("only", "Hi", "Hello", 0))
			f.enroll("a@example.com")
			f.enroll("b@example.com")
			f.run()
			return f
		}},
	{"share cap", []string{"dripdrop.policy.sub_cap"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{DailyCap: some(10)}, step("only", "Hi", "Hello", 0))
			seq := f.call(200, "GET", "/v1/sequences?limit=1", nil)["data"].([]any)[0].(map[string]any)["id"].(string)
			f.call(200, "PUT", "/v1/sequences/"+seq+"/versions/1/budgets/"+f.adapter.ID.String(), map[string]any{"max_share_pct": 10})
			f.enroll("a@example.com")
			f.enroll("b@example.com")
			f.run()
			return f
		}},
	{"minimum gap", []string{"dripdrop.policy.min_gap"},
		func(t *testing.T) *feedWorld {
			// The gap blocks the adapter (next_send_at) after a send; the
			// policy itself defers a send when the gap grew meanwhile.
			gap := 600
			f := newFeedWorld(t, dripdrop.AdapterInput{MinGapSeconds: &gap}, step("only", "Hi", "Hello", 0))
			f.enroll("a@example.com")
			f.run()
			f.clock.Add(601 * time.Second)
			f.call(200, "PATCH", "/v1/adapters/"+f.adapter.ID.String(), map[string]any{"min_gap_seconds": 900})
			f.enroll("b@example.com")
			f.run()
			return f
		}},
	{"outside the sending window", []string{"dripdrop.policy.quiet_hours"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			// A second sequence that sends on Sundays only (the clock is a Tuesday).
			f.call(201, "POST", "/v1/sequences", map[string]any{"key": "sundays", "name": "Sundays", "pool_id": f.pool.ID,
				"send_window": map[string]any{"days": []int{0}, "start": "09:00", "end": "17:00", "timezone": "UTC"},
				"steps":       []any{map[string]any{"key": "only", "subject": "Hi", "body_text": "Hello"}}})
			f.call(201, "POST", "/v1/enrollments", map[string]any{"sequence_key": "sundays", "contact": map[string]any{"email": "a@example.com"}})
			f.run()
			return f
		}},
	{"a suppressed recipient is skipped and stopped", []string{"dripdrop.policy.suppressed", "dripdrop.enrollment.stopped"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			f.enroll("bob@example.com")
			f.call(201, "POST", "/v1/suppressions", map[string]any{"email": "bob@example.com", "reason": "manual"})
			f.run()
			return f
		}},
	{"a missing variable fails the step and pauses the enrollment",
		[]string{"dripdrop.template.missing_variable", "dripdrop.dispatch.failed", "dripdrop.enrollment.paused"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Your plan: {{plan}}", 0))
			f.enroll("bob@example.com")
			f.run()
			return f
		}},
	{"spintax warnings and a malformed template at send time",
		[]string{"dripdrop.template.spintax_warning", "dripdrop.template.spintax_error"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "{Hi|}", "Hello", 0))
			// A body stored before authoring validation existed: the send
			// falls back to the original text and says so.
			dbtest.Exec(t, f.url, `UPDATE steps SET body_text = 'Hello {there' WHERE tenant_key = 'acme'`)
			f.enroll("bob@example.com")
			f.run()
			return f
		}},
	{"a temporary failure is retried", []string{"dripdrop.dispatch.retry"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Hello", 0))
			f.sink.SetFaults(func(string, int) smtpsink.Fault {
				return smtpsink.Fault{Kind: smtpsink.Reject, Code: 451, Enhanced: [3]int{4, 2, 0}, Text: "try again later"}
			})
			f.enroll("bob@example.com")
			f.run()
			return f
		}},
	{"the sender's failure", []string{"dripdrop.dispatch.adapter_error"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Hello", 0))
			f.sink.SetFaults(func(string, int) smtpsink.Fault {
				return smtpsink.Fault{Kind: smtpsink.Reject, Code: 421, Enhanced: [3]int{4, 3, 2}, Text: "shutting down"}
			})
			f.enroll("bob@example.com")
			f.run()
			return f
		}},
	{"a reply stops the enrollment; its repeat is a duplicate; a stranger's mail is unmatched",
		[]string{"dripdrop.ingest.inbound_message", "dripdrop.ingest.duplicate_event", "dripdrop.ingest.unmatched_event", "dripdrop.enrollment.stopped"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0), step("bump", "", "Bump", 86400))
			f.enroll("bob@example.com")
			f.run()
			reply := map[string]any{"message_id": "<reply-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
				"from": "bob@example.com", "subject": "Re: Hello", "body_text": "Sounds good, call me."}
			f.inbound(201, reply)
			f.inbound(200, reply)
			f.inbound(201, map[string]any{"message_id": "<other@example.org>", "from": "someone@example.org", "subject": "Hello", "body_text": "Who are you?"})
			return f
		}},
	{"a reply is categorised, then corrected", []string{"dripdrop.ingest.reply_categorized"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
			f.enroll("bob@example.com")
			f.run()
			res := f.inbound(201, map[string]any{"message_id": "<cat-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
				"from": "bob@example.com", "subject": "Re: Hi", "body_text": "Not right now, maybe next quarter."})
			f.call(200, "PATCH", "/v1/inbound/"+res["id"].(string), map[string]any{"category": "interested", "source": "crm"})
			return f
		}},
	{"a variant wins", []string{"dripdrop.sequence.variant_promoted"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
			f.abSequence([2]int{1, 1}, map[string]any{"min_sent": 5})
			ids := f.enrollAB("w", 30)
			f.run()
			for i, id := range ids {
				if v, _, _ := f.execVariant(id); v == "A" {
					rcpt := fmt.Sprintf("w-%d@example.com", i)
					f.inbound(201, map[string]any{"message_id": fmt.Sprintf("<w-%d@example.com>", i), "in_reply_to": f.sentMessageID(rcpt),
						"from": rcpt, "subject": "Re", "body_text": "Sounds good."})
				}
			}
			return f
		}},
	{"a not_now reply's branch enrolls the contact elsewhere", []string{"dripdrop.enrollment.routed"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0))
			f.sequence("nurture", f.pool.ID.String(), nil, [3]any{"Later", "Later", 0})
			f.sequence("outreach", f.pool.ID.String(), map[string]any{"branches": map[string]any{
				"on_reply": map[string]any{"not_now": map[string]any{"sequence_key": "nurture"}}}}, [3]any{"Hi", "Hello", 0})
			f.enrollInto("outreach", "bob@example.com")
			f.run()
			f.inbound(201, map[string]any{"message_id": "<nn-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
				"from": "bob@example.com", "subject": "Re: Hi", "body_text": "Not now, thanks."})
			return f
		}},
	{"out of office reschedules the next step", []string{"dripdrop.ingest.ooo_rescheduled"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 0), step("bump", "", "Bump", 86400))
			f.enroll("bob@example.com")
			f.run()
			f.inbound(201, map[string]any{"message_id": "<ooo-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
				"from": "bob@example.com", "subject": "Out of office", "body_text": "I am out of the office until December 14.",
				"intent": "ooo"})
			return f
		}},
	{"the pinned adapter is deactivated", []string{"dripdrop.enrollment.paused_pin_unavailable"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			f.enroll("bob@example.com")
			f.call(200, "PATCH", "/v1/adapters/"+f.adapter.ID.String(), map[string]any{"active": false})
			f.run()
			return f
		}},
	{"operator actions", []string{"dripdrop.enrollment.paused", "dripdrop.enrollment.resumed", "dripdrop.enrollment.cancelled", "dripdrop.enrollment.sender_reassigned"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{}, step("intro", "Hi", "Hello", 3600))
			name, prov, from := "second", "sink", "eve@acme.example.com"
			second, err := f.store.CreateAdapter(context.Background(), f.tenant, dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
				Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: f.sink.Port(), TLS: "none"}})
			if err != nil {
				t.Fatal(err)
			}
			id := f.enroll("bob@example.com")
			f.call(200, "POST", "/v1/enrollments/"+id+"/pause", nil)
			f.call(200, "POST", "/v1/enrollments/"+id+"/resume", nil)
			f.call(200, "POST", "/v1/enrollments/"+id+"/repin", map[string]any{"adapter_id": second.ID, "reason": "operator"})
			f.call(200, "POST", "/v1/enrollments/"+id+"/cancel", nil)
			return f
		}},
	{"bounces past the threshold rest the adapter", []string{"dripdrop.health.bounce_threshold"},
		func(t *testing.T) *feedWorld {
			return thresholdWorld(t, "bounce", "550 5.1.1 <c0@example.com>: user unknown")
		}},
	{"complaints past the threshold rest the adapter", []string{"dripdrop.health.complaint_threshold"},
		func(t *testing.T) *feedWorld {
			return thresholdWorld(t, "complaint", "This message was reported as spam.")
		}},
	{"a receiver that answers 410 disables its subscription", []string{"dripdrop.telemetry.subscription_disabled"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
			t.Cleanup(gone.Close)
			store := privateTargetStore(t, f.world)
			events := []string{"dripdrop.dispatch.adapter_pinned"}
			if _, err := store.CreateSubscription(context.Background(), f.tenant, db.SubscriptionInput{URL: &gone.URL, Events: &events}); err != nil {
				t.Fatal(err)
			}
			f.enroll("bob@example.com")
			ww := webhook.New(webhook.Config{Store: store, AllowPrivate: true})
			for i := 0; i < 3; i++ {
				if _, err := ww.Tick(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			return f
		}},
	{"a throttled mailbox sync fails, then recovers", []string{"dripdrop.mailbox.sync_failed", "dripdrop.mailbox.sync_recovered"},
		func(t *testing.T) *feedWorld {
			f := newFeedWorld(t, dripdrop.AdapterInput{})
			mail, err := imaptest.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { mail.Close() })
			user := f.adapter.FromAddress
			mail.AddUser(user, "pw")
			host, p, _ := net.SplitHostPort(mail.Addr)
			port, _ := strconv.Atoi(p)
			if _, err := f.store.UpdateAdapter(context.Background(), f.tenant, f.adapter.ID, dripdrop.AdapterInput{
				Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: f.sink.Port(), TLS: "none", Username: user, Password: "pw"},
				IMAP:        dripdrop.Nullable[dripdrop.IMAPSettings]{Set: true, Valid: true, Value: dripdrop.IMAPSettings{Host: host, Port: port, TLS: "none", Folders: []string{"INBOX"}}},
			}); err != nil {
				t.Fatal(err)
			}
			mail.SetFault(user, "LOGIN", &imaptest.Fault{Code: "THROTTLED", Info: "Request is throttled", Times: 1})
			s := mailsync.New(mailsync.Config{Store: f.store, Tick: 10 * time.Millisecond, ClaimEvery: 20 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = s.Run(ctx) }()
			defer func() { cancel(); <-done }()
			state := func(want string) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					st, err := f.store.MailboxSync(context.Background(), f.tenant, f.adapter.ID)
					if err != nil {
						t.Fatal(err)
					}
					if st.State == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("mailbox sync state %s, want %s", st.State, want)
					}
				}
			}
			state(dripdrop.SyncThrottled)
			f.clock.Add(time.Hour) // past the backoff
			state(dripdrop.SyncOK)
			return f
		}},
}

// thresholdWorld sends 20 messages (the health check's minimum sample) and
// reports one of them bounced or complained about: 5 %, past both
// thresholds.
func thresholdWorld(t *testing.T, intent, text string) *feedWorld {
	f := newFeedWorld(t, dripdrop.AdapterInput{}, step("only", "Hi", "Hello", 0))
	for i := 0; i < 20; i++ {
		f.enroll(fmt.Sprintf("c%d@example.com", i))
	}
	f.run()
	if n := len(f.sink.Messages()); n != 20 {
		t.Fatalf("%d sent, want 20", n)
	}
	f.inbound(201, map[string]any{"message_id": "<report-1@mx.example.com>", "in_reply_to": f.sentMessageID("c0@example.com"),
		"from": "mailer-daemon@mx.example.com", "subject": "Report", "body_text": text, "intent": intent})
	return f
}

func some(v int) dripdrop.Nullable[int] {
	return dripdrop.Nullable[int]{Set: true, Valid: true, Value: v}
}

// privateTargetStore opens a second store on w's database that accepts
// loopback webhook URLs (the test's receivers).
func privateTargetStore(t *testing.T, w *world) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), w.url, db.Options{Vault: w.box, Clock: w.clock, AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestEveryEventReachesTheFeed(t *testing.T) {
	t.Parallel()
	covered := map[string]bool{}
	for _, sc := range feedScenarios {
		for _, n := range sc.events {
			covered[n] = true
		}
	}
	for _, s := range telemetry.Catalog() {
		switch {
		case s.InProcess && covered[s.Name]:
			t.Errorf("%s is in-process only, yet a feed scenario names it", s.Name)
		case !s.InProcess && !covered[s.Name]:
			t.Errorf("%s reports a committed change, but no feed scenario drives it", s.Name)
		}
	}
	for n := range covered {
		if _, ok := telemetry.Lookup(n); !ok {
			t.Errorf("feed scenario names %s, which is not in the catalog", n)
		}
	}
	for _, sc := range feedScenarios {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			f := sc.run(t)
			got := f.feed(sc.events)
			for _, n := range sc.events {
				evs := got[n]
				if len(evs) == 0 {
					names := make([]string, 0, len(got))
					for k := range got {
						names = append(names, k)
					}
					sort.Strings(names)
					t.Errorf("%s is not in the feed (it has %v)", n, names)
					continue
				}
				spec, _ := telemetry.Lookup(n)
				for _, e := range evs {
					md := e["metadata"].(map[string]any)
					keys := make([]string, 0, len(md))
					for k := range md {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					wantKeys := slices.Clone(spec.Metadata)
					sort.Strings(wantKeys)
					if !slices.Equal(keys, wantKeys) {
						t.Errorf("%s in the feed has metadata keys %v, want %v", n, keys, wantKeys)
					}
					ms := e["measurements"].(map[string]any)
					for _, k := range spec.Measurements {
						if _, ok := ms[k]; !ok {
							t.Errorf("%s in the feed lacks measurement %s: %v", n, k, ms)
						}
					}
					if e["tenant_key"] != f.tenant {
						t.Errorf("%s in the feed has tenant %v", n, e["tenant_key"])
					}
				}
			}
		})
	}
}

// TestEveryBatchPinReachesTheFeed: a batch import writes its
// adapter_pinned outbox rows in the statement that inserts the
// enrollments; every created row's pin must be in the feed once, with the
// enrollment and adapter of its result, and a row not created (a repeated
// address, an invalid one) must add none.
func TestEveryBatchPinReachesTheFeed(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{})
	var emails []string
	for i := range 300 {
		emails = append(emails, fmt.Sprintf("c%d@example.com", i))
	}
	results := f.batch(append(emails, "C7@example.com", "nope")...)
	want := map[string]string{} // enrollment → adapter
	for _, r := range results {
		r := r.(map[string]any)
		if r["status"] == "created" {
			want[r["enrollment_id"].(string)] = r["adapter_id"].(string)
		}
	}
	if len(want) != 300 {
		t.Fatalf("%d rows created, want 300", len(want))
	}
	pins := f.feed([]string{"dripdrop.dispatch.adapter_pinned"})["dripdrop.dispatch.adapter_pinned"]
	if len(pins) != len(want) {
		t.Fatalf("%d adapter_pinned events in the feed, want %d", len(pins), len(want))
	}
	for _, e := range pins {
		md := e["metadata"].(map[string]any)
		id := md["enrollment_id"].(string)
		if a, ok := want[id]; !ok || md["adapter_id"] != a || md["tenant_key"] != f.tenant {
			t.Fatalf("feed event %v: no created row of that enrollment and adapter (or seen twice)", md)
		}
		delete(want, id)
	}
}

// signedReceiver records webhook requests whose Standard Webhooks
// signature verifies under secret.
type signedReceiver struct {
	mu     sync.Mutex
	secret string
	names  map[string]int
	bad    int
}

func (r *signedReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), body)
	if req.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)) {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var e struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(body, &e)
	r.names[e.Name]++
	w.WriteHeader(http.StatusOK)
}

// TestWebhookReceivesHealthAndIngestEvents: a subscription to a health and
// an ingest event receives both, signed, from the webhook worker.
func TestWebhookReceivesHealthAndIngestEvents(t *testing.T) {
	t.Parallel()
	f := newFeedWorld(t, dripdrop.AdapterInput{})
	recv := &signedReceiver{names: map[string]int{}}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	store := privateTargetStore(t, f.world)
	events := []string{"dripdrop.health.external_signal", "dripdrop.health.state_changed", "dripdrop.ingest.inbound_message"}
	sub, err := store.CreateSubscription(context.Background(), f.tenant, db.SubscriptionInput{URL: &hs.URL, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	recv.secret = sub.Secret
	recv.mu.Unlock()

	f.enroll("bob@example.com")
	f.run()
	f.inbound(201, map[string]any{"message_id": "<reply-1@example.com>", "in_reply_to": f.sentMessageID("bob@example.com"),
		"from": "bob@example.com", "subject": "Re: Hello", "body_text": "Interested, tell me more."})
	f.call(200, "POST", "/v1/adapters/"+f.adapter.ID.String()+"/health", map[string]any{"health_state": "resting", "source": "monitor"})

	ww := webhook.New(webhook.Config{Store: store, AllowPrivate: true})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ww.Tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		recv.mu.Lock()
		done := recv.names["dripdrop.ingest.inbound_message"] == 1 && recv.names["dripdrop.health.external_signal"] == 1 && recv.names["dripdrop.health.state_changed"] == 1
		got, bad := fmt.Sprint(recv.names), recv.bad
		recv.mu.Unlock()
		if bad != 0 {
			t.Fatalf("%d webhook requests failed signature verification", bad)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook received %s, want one inbound_message, external_signal and state_changed", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.names) != 3 {
		t.Fatalf("the subscription received events it did not ask for: %v", recv.names)
	}
}
