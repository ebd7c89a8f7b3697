package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
)

const adminToken = "ui-test-admin-token"

// world is a running API server with the dashboard and two seeded tenants.
type world struct {
	t     testing.TB
	dbURL string
	store *db.Store
	srv   *httptest.Server
	acme  tenantSeed
	other tenantSeed
}

// tenantSeed is what the seed created for one tenant.
type tenantSeed struct {
	key                string
	adapterA, adapterB string
	pool, seq          string
	enrollments        []string
	// The A/B sequence (variants with an auto-winner, a branch to nurture)
	// and its enrollments (dan and eve got A, fay and gus B).
	abSeq, nurtureSeq string
	abEnrollments     []string
}

func newWorld(t testing.TB) *world {
	t.Helper()
	k := testkit.NewWorld(t, testkit.SystemClock(), testkit.WithoutTenant())
	u, store := k.URL, k.Store
	srv := httptest.NewServer(api.New(api.Config{Store: store, AdminToken: adminToken, DashboardKey: []byte("a dashboard key of at least 32 bytes"),
		Verify: fakeVerify}))
	t.Cleanup(srv.Close)
	w := &world{t: t, dbURL: u, store: store, srv: srv}
	w.acme = w.seed("acme")
	w.other = w.seed("other")
	w.history("acme", w.acme)
	w.abTest("acme", &w.acme)
	return w
}

// abTest creates, through the API, a sequence with two subject variants
// (an auto-winner on reply_rate) and a not_now branch to "nurture", and
// four enrollments; then writes what sending and two categorised replies
// would have left: each execution sent with its variant, dan's reply
// not_now (stopped, replied), eve's interested. No message events: the
// overview's counts stay the history's.
func (w *world) abTest(tenant string, s *tenantSeed) {
	w.t.Helper()
	ex := func(sql string, args ...any) { dbtest.Exec(w.t, w.dbURL, sql, args...) }
	s.nurtureSeq = w.api("POST", "/v1/sequences", s.key, map[string]any{"key": "nurture", "name": "Nurture " + tenant, "pool_id": s.pool,
		"steps": []any{map[string]any{"key": "checkin", "subject": "Checking back", "body_text": "Is now a better time?"}}}, 201)["id"].(string)
	s.abSeq = w.api("POST", "/v1/sequences", s.key, map[string]any{"key": "ab", "name": "A/B " + tenant, "pool_id": s.pool,
		"branches": map[string]any{"on_reply": map[string]any{"not_now": map[string]any{"sequence_key": "nurture", "delay_seconds": 2592000}}},
		"steps": []any{map[string]any{"key": "intro", "body_text": "Hello {{first_name|there}}",
			"variants":    []any{map[string]any{"subject": "Variant A subject"}, map[string]any{"subject": "Variant B subject"}},
			"auto_winner": map[string]any{"metric": "reply_rate", "min_sent": 100}}},
	}, 201)["id"].(string)
	for i, who := range []string{"dan", "eve", "fay", "gus"} {
		e := w.api("POST", "/v1/enrollments", s.key, map[string]any{"sequence_key": "ab", "contact": map[string]any{"email": who + "@ab-" + tenant + ".example.com"}}, 201)
		id := e["id"].(string)
		s.abEnrollments = append(s.abEnrollments, id)
		ex(`UPDATE step_executions SET state = 'sent', sent_at = now() - interval '30 minutes', attempt = 1, variant = $3,
		        out_message_id = '<ab-' || $4::text || '@acme.example.com>', thread_no = 1
		    WHERE tenant_key = $1 AND enrollment_id = $2::uuid`, tenant, id, []string{"A", "A", "B", "B"}[i], who)
	}
	for i, r := range []struct{ category, phrase string }{{"not_now", "not right now"}, {"interested", "sounds good"}} {
		ex(`INSERT INTO inbound_messages (tenant_key, id, provider, message_id, from_address, subject, body_text, intent, correlation,
		        step_execution_id, enrollment_id, received_at, category, category_evidence, category_source, category_updated_at)
		    SELECT $1, gen_random_uuid(), 'inbound', 'ab-reply-' || $3::int, e.email, 'Re: Variant A subject', $4::text, 'reply', 'in_reply_to',
		        x.id, e.id, now() - interval '10 minutes', $5::text, jsonb_build_object('phrase', $4::text, 'language', 'en', 'rule', $5::text), 'engine', now()
		    FROM enrollments e JOIN step_executions x ON x.tenant_key = e.tenant_key AND x.enrollment_id = e.id
		    WHERE e.tenant_key = $1 AND e.id = $2::uuid`, tenant, s.abEnrollments[i], i, r.phrase, r.category)
		ex(`UPDATE enrollments SET reply_category = $3, state = 'stopped', stop_reason = 'replied', ended_at = now()
		    WHERE tenant_key = $1 AND id = $2::uuid`, tenant, s.abEnrollments[i], r.category)
	}
}

// fakeVerify stands in for dispatch.Verify (which dials the adapter's
// server): it reports a check that passed, naming the host it was given.
func fakeVerify(_ context.Context, c dripdrop.SMTPCredentials, from string) dripdrop.VerifyResult {
	return dripdrop.VerifyResult{OK: true, Host: c.Host, Port: c.Port, Stages: []dripdrop.VerifyStage{
		{Stage: "connect", OK: true, DurationMS: 1.5}, {Stage: "auth", OK: true, Code: 235, Reply: "2.7.0 Authentication successful for " + from},
	}}
}

// api calls the JSON API and decodes the answer.
func (w *world) api(method, path, key string, body any, want int) map[string]any {
	w.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		w.t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, out)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	return m
}

// seed creates, through the JSON API, two adapters, a pool with both, a
// two-step sequence and three enrollments.
func (w *world) seed(tenant string) tenantSeed {
	w.t.Helper()
	m := w.api("POST", "/v1/tenants", adminToken, map[string]any{"tenant_key": tenant, "name": tenant}, 201)
	s := tenantSeed{key: m["api_key"].(map[string]any)["key"].(string)}
	for i, name := range []string{"Alice mailbox", "Bob mailbox"} {
		in := map[string]any{
			"name": name + " " + tenant, "provider": "smtp", "from_address": strings.ToLower(name[:3]) + "@" + tenant + ".example.com",
			"credentials": map[string]any{"host": "smtp.example.com", "port": 587, "username": "u", "password": "pw"},
		}
		if i == 0 {
			in["daily_cap"], in["ramp_floor"], in["ramp_increment"] = 40, 5, 3
		}
		id := w.api("POST", "/v1/adapters", s.key, in, 201)["id"].(string)
		if i == 0 {
			s.adapterA = id
		} else {
			s.adapterB = id
		}
	}
	s.pool = w.api("POST", "/v1/pools", s.key, map[string]any{"name": "main pool " + tenant, "members": []any{
		map[string]any{"adapter_id": s.adapterA, "weight": 3}, map[string]any{"adapter_id": s.adapterB, "weight": 1},
	}}, 201)["id"].(string)
	s.seq = w.api("POST", "/v1/sequences", s.key, map[string]any{
		"key": "welcome", "name": "Welcome " + tenant, "pool_id": s.pool,
		"steps": []any{
			map[string]any{"key": "intro", "subject": "Hi {{first_name|there}}", "body_text": "{Hello|Hi} there"},
			map[string]any{"key": "bump", "delay_seconds": 86400, "body_text": "Bumping this"},
		},
	}, 201)["id"].(string)
	for _, who := range []string{"ann", "ben", "cat"} {
		e := w.api("POST", "/v1/enrollments", s.key, map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": who + "@lead-" + tenant + ".example.com", "first_name": who}}, 201)
		s.enrollments = append(s.enrollments, e["id"].(string))
	}
	return s
}

// history writes what a month of sending would have left behind: message
// events of adapter A over 30 days (with a bounce spike 20 days ago), a rest
// and recovery in its audit log, and today's outcomes; the first
// enrollment's first step is sent and replied to.
func (w *world) history(tenant string, s tenantSeed) {
	w.t.Helper()
	ex := func(sql string, args ...any) { dbtest.Exec(w.t, w.dbURL, sql, args...) }
	// 30 days of sends, 10 a day, on adapter A; a bounce spike 20 days ago.
	ex(`INSERT INTO message_events (tenant_key, id, type, adapter_id, occurred_at)
	    SELECT $1, gen_random_uuid(), 'sent', $2::uuid, date_trunc('day', now()) - make_interval(days => d) + interval '10 hours' + make_interval(mins => n)
	    FROM generate_series(1, 29) d, generate_series(1, 10) n`, tenant, s.adapterA)
	ex(`INSERT INTO message_events (tenant_key, id, type, subtype, adapter_id, occurred_at)
	    SELECT $1, gen_random_uuid(), 'bounced', 'hard', $2::uuid, date_trunc('day', now()) - interval '20 days' + interval '12 hours' + make_interval(mins => n)
	    FROM generate_series(1, 3) n`, tenant, s.adapterA)
	ex(`INSERT INTO message_events (tenant_key, id, type, adapter_id, occurred_at)
	    VALUES ($1, gen_random_uuid(), 'complained', $2::uuid, date_trunc('day', now()) - interval '12 days' + interval '13 hours')`, tenant, s.adapterA)
	for _, tr := range []struct{ ago, from, to, reason, source string }{
		{"20 days", "active", "resting", "bounce_threshold", "engine"},
		{"19 days", "resting", "probing", "resting_elapsed", "engine"},
		{"17 days", "probing", "ramping", "probe_success", "engine"},
	} {
		ex(`INSERT INTO audit_log (tenant_key, id, entity_type, entity_id, action, actor, created_at, data)
		    VALUES ($1, gen_random_uuid(), 'adapter', $2::uuid, 'health_state_changed', $6,
		            date_trunc('day', now()) - $3::interval + interval '14 hours',
		            jsonb_build_object('from', $4::text, 'to', $5::text, 'reason', $7::text, 'source', $6::text,
		                               'at', date_trunc('day', now()) - $3::interval + interval '14 hours'))`,
			tenant, s.adapterA, tr.ago, tr.from, tr.to, tr.source, tr.reason)
	}
	// Today: the first enrollment's first step was sent and got a reply;
	// other outcomes and deferrals happened today.
	ex(`UPDATE step_executions SET state = 'sent', sent_at = now() - interval '2 minutes', attempt = 1,
	        out_message_id = '<seed-1@acme.example.com>'
	    WHERE tenant_key = $1 AND enrollment_id = $2::uuid`, tenant, s.enrollments[0])
	ex(`INSERT INTO message_events (tenant_key, id, type, adapter_id, step_execution_id, enrollment_id, sequence_version_id, occurred_at)
	    SELECT $1, gen_random_uuid(), t, x.adapter_id, x.id, x.enrollment_id, e.sequence_version_id, now() - interval '1 minute' * o
	    FROM step_executions x JOIN enrollments e ON e.tenant_key = x.tenant_key AND e.id = x.enrollment_id,
	         (VALUES ('sent', 2), ('replied', 1)) v(t, o)
	    WHERE x.tenant_key = $1 AND x.enrollment_id = $2::uuid`, tenant, s.enrollments[0])
	ex(`UPDATE enrollments SET state = 'stopped', stop_reason = 'replied', ended_at = now() WHERE tenant_key = $1 AND id = $2::uuid`, tenant, s.enrollments[0])
	ex(`UPDATE step_executions SET state = 'cancelled' WHERE tenant_key = $1 AND enrollment_id = $2::uuid AND state = 'scheduled'`, tenant, s.enrollments[0])
	// Four sends of adapter A today (the one above and three more), counted
	// against its cap as the dispatcher reserves them.
	ex(`INSERT INTO message_events (tenant_key, id, type, adapter_id, occurred_at)
	    SELECT $1, gen_random_uuid(), 'sent', $2::uuid, now() - make_interval(mins => 10 + n) FROM generate_series(1, 3) n`, tenant, s.adapterA)
	ex(`INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
	    SELECT $1, $2::uuid, (now() AT TIME ZONE 'UTC')::date, sequence_version_id, 4 FROM enrollments WHERE tenant_key = $1 AND id = $3::uuid`,
		tenant, s.adapterA, s.enrollments[0])
	ex(`INSERT INTO message_events (tenant_key, id, type, subtype, reason, adapter_id, occurred_at)
	    VALUES ($1, gen_random_uuid(), 'ooo', NULL, NULL, $2::uuid, now() - interval '5 minutes'),
	           ($1, gen_random_uuid(), 'bounced', 'hard', NULL, $3::uuid, now() - interval '6 minutes'),
	           ($1, gen_random_uuid(), 'complained', NULL, NULL, $3::uuid, now() - interval '7 minutes'),
	           ($1, gen_random_uuid(), 'deferred', NULL, 'ramp_cap', $2::uuid, now() - interval '8 minutes'),
	           ($1, gen_random_uuid(), 'deferred', NULL, 'ramp_cap', $2::uuid, now() - interval '9 minutes'),
	           ($1, gen_random_uuid(), 'deferred', NULL, 'quiet_hours', $3::uuid, now() - interval '9 minutes')`,
		tenant, s.adapterA, s.adapterB)
}

// browserless client: a cookie jar and no redirects followed.
type client struct {
	t    testing.TB
	w    *world
	http *http.Client
}

func (w *world) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: w.t, w: w, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values, headers ...string) page {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.w.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string) page { c.t.Helper(); return c.do("GET", path, nil) }

func (c *client) login(key string) page {
	c.t.Helper()
	return c.do("POST", "/ui/login", url.Values{"api_key": {key}})
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a signed-in page.
func (c *client) csrf() string {
	c.t.Helper()
	p := c.get("/ui/adapters")
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		c.t.Fatalf("no CSRF token on the adapters page (%d): %s", p.status, p.body)
	}
	return m[1]
}

func (w *world) healthState(tenant, adapter string) string {
	w.t.Helper()
	rows := dbtest.Query(w.t, w.dbURL, `SELECT health_state FROM adapters WHERE tenant_key = $1 AND id = $2::uuid`, tenant, adapter)
	return rows[0][0].(string)
}
