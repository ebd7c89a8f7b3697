package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/preflight"
	"github.com/dripdrop/dripdrop/preflight/dnsresolver"
	"github.com/dripdrop/dripdrop/preflight/dnstest"
)

var (
	dkimOnce sync.Once
	dkimKey  *rsa.PrivateKey
)

// preflightZone serves the fixture zones of the preflight API tests from a
// DNS server on loopback.
func preflightZone(t testing.TB, extra ...string) *dnstest.Server {
	t.Helper()
	dkimOnce.Do(func() {
		var err error
		if dkimKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	srv := dnstest.Start(t,
		`good.test. 3600 IN TXT "v=spf1 include:_spf.google.com ~all"`,
		`_spf.google.com. 3600 IN TXT "v=spf1 ip4:192.0.2.0/24 ~all"`,
		`google._domainkey.good.test. 3600 IN TXT `+dnstest.DKIMRecord(t, &dkimKey.PublicKey),
		`_dmarc.good.test. 3600 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"`,
		`good.test. 3600 IN MX 1 aspmx.l.google.com.`,
		`plusall.test. 300 IN TXT "v=spf1 +all"`,
		`plusall.test. 300 IN MX 10 mx.plusall.test.`,
		`nullmx.test. 300 IN MX 0 .`,
		`aonly.test. 300 IN A 192.0.2.10`,
		`nothing.test. 300 IN TXT "no mail here"`,
		`ms-corp.test. 300 IN MX 0 ms-corp-test.mail.protection.outlook.com.`,
	)
	srv.Add(t, extra...)
	srv.ServFail("servfail.test")
	srv.Silent("slow.test")
	srv.Silent("_dmarc.slow.test")
	srv.Silent("google._domainkey.slow.test")
	return srv
}

// newPreflightEnv is newEnv with a store that resolves through the fixture
// DNS server and a clock the test moves.
func newPreflightEnv(t testing.TB, extra ...string) (*env, *dnstest.Server, *testkit.Clock) {
	t.Helper()
	zone := preflightZone(t, extra...)
	r := &dnsresolver.Resolver{Servers: []string{zone.Addr}, Timeout: 300 * time.Millisecond}
	opts := append([]testkit.Option{testkit.WithoutTenant(), testkit.WithStoreOptions(func(o *db.Options) { o.Resolver = r })}, onCitus(t)...)
	if _, bench := t.(*testing.B); bench {
		opts = append(opts, testkit.WithURL(dbtest.DurableURL(t)), testkit.SystemClock())
	}
	k := testkit.NewWorld(t, opts...)
	srv := api.New(api.Config{Store: k.Store, AdminToken: adminToken, UnsubscribeKey: testUnsubKey, Clock: k.Clock})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &env{t: t, events: k.Events, dbURL: k.URL, store: k.Store, server: srv, http: hs}, zone, k.Clock
}

func checkOf(t *testing.T, dom map[string]any, name string) map[string]any {
	t.Helper()
	for _, c := range dom["checks"].([]any) {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("no %s check in %v", name, dom)
	return nil
}

func TestDomainsAPI(t *testing.T) {
	t.Parallel()
	e, _, _ := newPreflightEnv(t)
	key := e.tenant("dom")
	// An adapter on Gmail's SMTP: its From domain is known at once and
	// checked with Google's include and selector.
	e.must(201, "POST", "/v1/adapters", key, map[string]any{
		"name": "jane", "provider": "smtp", "from_address": "jane@good.test",
		"credentials": map[string]any{"host": "smtp.gmail.com", "port": 587, "username": "jane@good.test", "password": "app-password"},
	})
	list := e.must(200, "GET", "/v1/domains", key, nil)
	data := list["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["domain"] != "good.test" || data[0].(map[string]any)["checked"] != false {
		t.Fatalf("domains after adapter create: %v", list)
	}
	dom := e.must(200, "POST", "/v1/domains/good.test/check", key, nil)
	if dom["status"] != "pass" || dom["provider"] != "google" || dom["checked"] != true {
		t.Fatalf("good.test: %v", dom)
	}
	for _, name := range []string{"spf", "dkim", "dmarc", "mx"} {
		if c := checkOf(t, dom, name); c["status"] != "pass" || len(c["evidence"].([]any)) == 0 {
			t.Errorf("good.test %s = %v", name, c)
		}
	}
	if checkOf(t, dom, "dkim")["facts"].(map[string]any)["key_bits"] != float64(2048) {
		t.Fatalf("dkim facts: %v", checkOf(t, dom, "dkim"))
	}
	got := e.must(200, "GET", "/v1/domains/GOOD.test", key, nil)
	if got["status"] != "pass" || got["checked_at"] == nil || len(got["adapter_ids"].([]any)) != 1 {
		t.Fatalf("GET good.test: %v", got)
	}
	// A broken domain, checked before any adapter uses it, with a
	// configured selector.
	bad := e.must(200, "POST", "/v1/domains/plusall.test/check", key, map[string]any{"dkim_selectors": []string{"s1"}})
	if bad["status"] != "fail" || checkOf(t, bad, "spf")["code"] != "spf_pass_all" || checkOf(t, bad, "dkim")["code"] != "dkim_missing" || checkOf(t, bad, "dmarc")["code"] != "dmarc_missing" {
		t.Fatalf("plusall.test: %v", bad)
	}
	if sel := bad["dkim_selectors"].([]any); len(sel) != 1 || sel[0] != "s1" {
		t.Fatalf("selectors not kept: %v", bad["dkim_selectors"])
	}
	// A domain whose DNS does not answer is unknown, never fail.
	slow := e.must(200, "POST", "/v1/domains/slow.test/check", key, nil)
	if slow["status"] != "unknown" || checkOf(t, slow, "spf")["status"] != "unknown" {
		t.Fatalf("slow.test: %v", slow)
	}
	// Pagination by name.
	p1 := e.must(200, "GET", "/v1/domains?limit=2", key, nil)
	if len(p1["data"].([]any)) != 2 || p1["next_cursor"] == nil {
		t.Fatalf("page 1: %v", p1)
	}
	p2 := e.must(200, "GET", "/v1/domains?limit=2&cursor="+p1["next_cursor"].(string), key, nil)
	if d := p2["data"].([]any); len(d) != 1 || d[0].(map[string]any)["domain"] != "slow.test" {
		t.Fatalf("page 2: %v", p2)
	}
	assertProblem(t, e.do("GET", "/v1/domains/never.test", key, nil), 404, "not_found", "*")
	assertProblem(t, e.do("POST", "/v1/domains/not_a_domain/check", key, nil), 422, "invalid_value", "domain")
	assertProblem(t, e.do("POST", "/v1/domains/good.test/check", key, map[string]any{"provider": "aol"}), 422, "invalid_value", "provider")
	// Another tenant sees none of it.
	other := e.tenant("dom-other")
	if d := e.must(200, "GET", "/v1/domains", other, nil)["data"].([]any); len(d) != 0 {
		t.Fatalf("other tenant sees %v", d)
	}
	assertProblem(t, e.do("GET", "/v1/domains/good.test", other, nil), 404, "not_found", "*")
}

func TestRequireDomainAuthBlock(t *testing.T) {
	t.Parallel()
	e, _, clock := newPreflightEnv(t)
	key := e.tenant("blk")
	if s := e.must(200, "GET", "/v1/settings", key, nil); s["require_domain_auth"] != "warn" {
		t.Fatalf("default setting: %v", s)
	}
	assertProblem(t, e.do("PATCH", "/v1/settings", key, map[string]any{"require_domain_auth": "maybe"}), 422, "invalid_value", "require_domain_auth")
	e.must(200, "PATCH", "/v1/settings", key, map[string]any{"require_domain_auth": "block"})
	bad := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "bad", "provider": "smtp", "from_address": "x@plusall.test",
		"credentials": map[string]any{"host": "relay.example.com", "port": 587}})
	flaky := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "flaky", "provider": "smtp", "from_address": "x@slow.test",
		"credentials": map[string]any{"host": "relay.example.com", "port": 587}})
	d := e.must(200, "POST", "/v1/domains/plusall.test/check", key, nil)
	enf := d["enforcement"].(map[string]any)
	since, _ := time.Parse(time.RFC3339Nano, d["failing_since"].(string))
	blocksAt, _ := time.Parse(time.RFC3339Nano, enf["blocks_at"].(string))
	if d["status"] != "fail" || enf["blocking"] != false || blocksAt.Sub(since) != 72*time.Hour {
		t.Fatalf("first failure: %v", d)
	}
	e.must(200, "POST", "/v1/domains/slow.test/check", key, nil)
	// Within the grace period nothing rests.
	clock.Add(72*time.Hour - time.Minute)
	e.must(200, "POST", "/v1/domains/plusall.test/check", key, nil)
	if a := e.must(200, "GET", "/v1/adapters/"+bad["id"].(string), key, nil); a["health_state"] == "resting" {
		t.Fatalf("rested inside the grace period: %v", a)
	}
	// Past it, the failing domain's adapter rests; the unknown one never does.
	clock.Add(2 * time.Minute)
	d = e.must(200, "POST", "/v1/domains/plusall.test/check", key, nil)
	if d["enforcement"].(map[string]any)["blocking"] != true {
		t.Fatalf("not blocking after 72 h: %v", d)
	}
	h := e.must(200, "GET", "/v1/adapters/"+bad["id"].(string)+"/health", key, nil)
	if h["health_state"] != "resting" {
		t.Fatalf("adapter of a failing domain: %v", h)
	}
	found := false
	for _, tr := range h["transitions"].([]any) {
		if m := tr.(map[string]any); m["reason"] == db.ReasonDomainAuthFailed && m["to"] == "resting" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no domain_auth_failed transition: %v", h["transitions"])
	}
	if s := e.must(200, "POST", "/v1/domains/slow.test/check", key, nil); s["status"] != "unknown" {
		t.Fatalf("slow.test: %v", s["status"])
	}
	if a := e.must(200, "GET", "/v1/adapters/"+flaky["id"].(string), key, nil); a["health_state"] == "resting" {
		t.Fatalf("a DNS failure rested an adapter: %v", a)
	}
}

// recipientSequence creates a tenant with a pool and a sequence at the
// given verify_recipients level.
func recipientSequence(t testing.TB, e *env, tenant, level string) string {
	t.Helper()
	key := e.tenant(tenant)
	return recipientSequenceFor(t, e, key, "s", level)
}

// recipientSequenceFor adds a sequence (and an adapter and pool of its
// own) at the given verify_recipients level to the tenant of key.
func recipientSequenceFor(t testing.TB, e *env, key, seq, level string) string {
	t.Helper()
	a := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "a", "provider": "smtp", "from_address": "a@good.test",
		"credentials": map[string]any{"host": "relay.example.com", "port": 587}})
	p := e.must(201, "POST", "/v1/pools", key, map[string]any{"name": "pool-" + seq, "members": []any{map[string]any{"adapter_id": a["id"]}}})
	s := e.must(201, "POST", "/v1/sequences", key, map[string]any{"key": seq, "name": "S", "pool_id": p["id"], "verify_recipients": level,
		"steps": []any{map[string]any{"key": "intro", "subject": "Hi", "body_text": "Hello"}}})
	if v := s["versions"].([]any)[0].(map[string]any); v["verify_recipients"] != level {
		t.Fatalf("version: %v", v)
	}
	return key
}

func TestRecipientChecksMX(t *testing.T) {
	t.Parallel()
	recipientChecksMX(t)
}

func recipientChecksMX(t *testing.T) {
	e, zone, _ := newPreflightEnv(t)
	key := recipientSequence(t, e, "rcpt", "mx")
	enroll := func(email string) resp {
		return e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "s", "contact": map[string]any{"email": email}})
	}
	for email, code := range map[string]string{
		"info@good.test":      "role_address",
		"No-Reply@good.test":  "role_address",
		"jane@mailinator.com": "disposable_domain",
		"jane@nullmx.test":    "undeliverable_domain",
		"jane@nothing.test":   "undeliverable_domain",
		"jane@nxdomain.test":  "undeliverable_domain",
	} {
		assertProblem(t, enroll(email), 422, code, "contact.email")
	}
	for email, provider := range map[string]any{
		"jane@good.test":     "google",
		"jane@aonly.test":    "other",
		"jane@ms-corp.test":  "microsoft",
		"jane@servfail.test": nil, // the DNS failed: accepted, provider unknown
		"jane@gmail.com":     "google",
	} {
		r := enroll(email)
		if r.status != 201 || r.json(t)["recipient_provider"] != provider {
			t.Errorf("enroll %s: %d %s, want 201 with provider %v", email, r.status, r.body, provider)
		}
	}
	// The domain verdicts are cached: another address at good.test asks
	// no more questions.
	before := zone.Asked("good.test", "MX")
	if r := enroll("bob@good.test"); r.status != 201 {
		t.Fatalf("bob: %d %s", r.status, r.body)
	}
	if after := zone.Asked("good.test", "MX"); after != before || before != 1 {
		t.Fatalf("good.test MX asked %d then %d times", before, after)
	}
	// A rejected request changed nothing.
	if l := e.must(200, "GET", "/v1/enrollments?sequence_key=s&limit=200", key, nil)["data"].([]any); len(l) != 6 {
		t.Fatalf("%d enrollments, want 6", len(l))
	}
	// Batch: one verdict per row, none dropped.
	res := e.must(200, "POST", "/v1/enrollments/batch", key, map[string]any{"sequence_key": "s", "contacts": []any{
		map[string]any{"email": "carol@good.test"},
		map[string]any{"email": "sales@good.test"},
		map[string]any{"email": "x@yopmail.com"},
		map[string]any{"email": "dan@nullmx.test"},
		map[string]any{"email": "erin@aonly.test"},
		map[string]any{"email": "SALES@good.test"},
		map[string]any{"email": "jane@good.test"},
	}})
	want := []struct{ status, code string }{{"created", ""}, {"error", "role_address"}, {"error", "disposable_domain"}, {"error", "undeliverable_domain"}, {"created", ""}, {"error", "role_address"}, {"existing", ""}}
	rows := res["results"].([]any)
	if len(rows) != len(want) || res["created"] != float64(2) || res["errors"] != float64(4) || res["existing"] != float64(1) {
		t.Fatalf("batch: %v", res)
	}
	for i, w := range want {
		r := rows[i].(map[string]any)
		code := ""
		if er, ok := r["error"].(map[string]any); ok {
			code = er["code"].(string)
		}
		if r["status"] != w.status || code != w.code {
			t.Errorf("row %d = %v, want %s %s", i, r, w.status, w.code)
		}
	}
	carol := rows[0].(map[string]any)["enrollment_id"].(string)
	if en := e.must(200, "GET", "/v1/enrollments/"+carol, key, nil); en["recipient_provider"] != "google" {
		t.Fatalf("batch row provider: %v", en["recipient_provider"])
	}
}

func TestRecipientChecksLevels(t *testing.T) {
	t.Parallel()
	e, zone, _ := newPreflightEnv(t)
	// syntax (the default): the lists apply, the DNS is not asked.
	syn := recipientSequence(t, e, "rsyn", "syntax")
	enroll := func(key, email string) resp {
		return e.do("POST", "/v1/enrollments", key, map[string]any{"sequence_key": "s", "contact": map[string]any{"email": email}})
	}
	assertProblem(t, enroll(syn, "info@nullmx.test"), 422, "role_address", "contact.email")
	assertProblem(t, enroll(syn, "jane@mailinator.com"), 422, "disposable_domain", "contact.email")
	if r := enroll(syn, "jane@nullmx.test"); r.status != 201 {
		t.Fatalf("syntax level asked DNS: %d %s", r.status, r.body)
	}
	if r := enroll(syn, "josé@bücher.example"); r.status != 201 {
		t.Fatalf("IDN address: %d %s", r.status, r.body)
	}
	if n := zone.Total(); n != 0 {
		t.Fatalf("syntax level asked %d DNS questions", n)
	}
	// off: only the address form.
	off := recipientSequence(t, e, "roff", "off")
	if r := enroll(off, "info@mailinator.com"); r.status != 201 {
		t.Fatalf("off level rejected: %d %s", r.status, r.body)
	}
	assertProblem(t, e.do("POST", "/v1/sequences", off, map[string]any{"key": "bad", "name": "B", "pool_id": "00000000-0000-0000-0000-000000000000", "verify_recipients": "strict",
		"steps": []any{map[string]any{"key": "intro", "subject": "Hi", "body_text": "Hello"}}}), 422, "invalid_value", "verify_recipients")
}

func TestHolidayWindowExplain(t *testing.T) {
	t.Parallel()
	e, _, clock := newPreflightEnv(t)
	key := e.tenant("hol")
	a := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "a", "provider": "smtp", "from_address": "a@good.test",
		"credentials": map[string]any{"host": "relay.example.com", "port": 587}})
	p := e.must(201, "POST", "/v1/pools", key, map[string]any{"name": "main", "members": []any{map[string]any{"adapter_id": a["id"]}}})
	seq := func(k string, holidays []string) resp {
		return e.do("POST", "/v1/sequences", key, map[string]any{"key": k, "name": "H", "pool_id": p["id"],
			"send_window": map[string]any{"days": []int{0, 1, 2, 3, 4, 5, 6}, "start": "00:00", "end": "23:59", "holidays": holidays},
			"steps":       []any{map[string]any{"key": "intro", "subject": "Hi", "body_text": "Hello"}}})
	}
	assertProblem(t, seq("bad", []string{"XX"}), 422, "invalid_value", "send_window.holidays")
	assertProblem(t, seq("bad", []string{"us"}), 422, "invalid_value", "send_window.holidays")
	if r := seq("hol", []string{"US", "DE"}); r.status != 201 {
		t.Fatalf("sequence: %d %s", r.status, r.body)
	}
	clock.Set(time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)) // Thanksgiving, 10:00 in New York
	en := e.must(201, "POST", "/v1/enrollments", key, map[string]any{"sequence_key": "hol", "contact": map[string]any{"email": "jane@aonly.test", "timezone": "America/New_York"}})
	ex := e.must(200, "GET", "/v1/enrollments/"+en["id"].(string)+"/explain", key, nil)
	b := ex["binding"].(map[string]any)
	if b["policy"] != "holiday" || b["inputs"].(map[string]any)["calendar"] != "US" || !sameInstant(ex["next_eligible_at"], "2026-11-27T05:00:00Z") {
		t.Fatalf("explain on Thanksgiving: %v", ex)
	}
	// A contact in Berlin on the same instant: the 26th is a US holiday
	// there too (the calendar applies to the contact's local date).
	en = e.must(201, "POST", "/v1/enrollments", key, map[string]any{"sequence_key": "hol", "contact": map[string]any{"email": "hans@aonly.test", "timezone": "Europe/Berlin"}})
	ex = e.must(200, "GET", "/v1/enrollments/"+en["id"].(string)+"/explain", key, nil)
	if b := ex["binding"].(map[string]any); b["policy"] != "holiday" || !sameInstant(ex["next_eligible_at"], "2026-11-26T23:00:00Z") {
		t.Fatalf("explain in Berlin: %v", ex)
	}
}

func sameInstant(got any, want string) bool {
	g, err1 := time.Parse(time.RFC3339Nano, fmt.Sprint(got))
	w, err2 := time.Parse(time.RFC3339, want)
	return err1 == nil && err2 == nil && g.Equal(w)
}

// A pool with provider_matching "prefer" pins each contact to a member of
// the contact's provider (by WDRR among them), and to any member when
// none matches.
func TestProviderMatchingPrefer(t *testing.T) {
	t.Parallel()
	e, _, _ := newPreflightEnv(t)
	key := e.tenant("pm")
	adapter := func(name, host, provider string) string {
		in := map[string]any{"name": name, "provider": "smtp", "from_address": name + "@good.test",
			"credentials": map[string]any{"host": host, "port": 587}}
		if provider != "" {
			in["mailbox_provider"] = provider
		}
		return e.must(201, "POST", "/v1/adapters", key, in)["id"].(string)
	}
	g1 := adapter("g1", "smtp.gmail.com", "")
	m1 := adapter("m1", "smtp.office365.com", "")
	g2 := adapter("g2", "relay.example.com", "google")
	if a := e.must(200, "GET", "/v1/adapters/"+g1, key, nil); a["mailbox_provider"] != "google" {
		t.Fatalf("provider from the SMTP host: %v", a["mailbox_provider"])
	}
	assertProblem(t, e.do("POST", "/v1/adapters", key, map[string]any{"name": "x", "provider": "sink", "from_address": "x@good.test", "mailbox_provider": "aol"}), 422, "invalid_value", "mailbox_provider")
	members := []any{map[string]any{"adapter_id": g1}, map[string]any{"adapter_id": m1}, map[string]any{"adapter_id": g2}}
	assertProblem(t, e.do("POST", "/v1/pools", key, map[string]any{"name": "bad", "provider_matching": "always"}), 422, "invalid_value", "provider_matching")
	pool := e.must(201, "POST", "/v1/pools", key, map[string]any{"name": "match", "provider_matching": "prefer", "members": members})
	if pool["provider_matching"] != "prefer" {
		t.Fatalf("pool: %v", pool)
	}
	e.must(201, "POST", "/v1/sequences", key, map[string]any{"key": "m", "name": "M", "pool_id": pool["id"], "verify_recipients": "mx",
		"steps": []any{map[string]any{"key": "intro", "subject": "Hi", "body_text": "Hello"}}})
	pin := func(email string) string {
		return e.must(201, "POST", "/v1/enrollments", key, map[string]any{"sequence_key": "m", "contact": map[string]any{"email": email}})["adapter_id"].(string)
	}
	var googlePins []string
	for i := range 4 {
		googlePins = append(googlePins, pin(fmt.Sprintf("g%d@good.test", i)))
	}
	if fmt.Sprint(googlePins) != fmt.Sprint([]string{g1, g2, g1, g2}) {
		t.Fatalf("google recipients pinned to %v, want g1 g2 g1 g2", googlePins)
	}
	for i := range 3 {
		if got := pin(fmt.Sprintf("m%d@ms-corp.test", i)); got != m1 {
			t.Fatalf("microsoft recipient pinned to %s, want m1", got)
		}
	}
	// "other" matches no member: any member may take it.
	if got := pin("o@aonly.test"); got != g1 && got != m1 && got != g2 {
		t.Fatalf("other recipient pinned to %s", got)
	}
	// The batch path prefers the same way.
	res := e.must(200, "POST", "/v1/enrollments/batch", key, map[string]any{"sequence_key": "m", "contacts": []any{
		map[string]any{"email": "b1@ms-corp.test"}, map[string]any{"email": "b2@good.test"}, map[string]any{"email": "b3@gmail.com"},
	}})
	rows := res["results"].([]any)
	if rows[0].(map[string]any)["adapter_id"] != m1 {
		t.Fatalf("batch microsoft row: %v", rows[0])
	}
	for _, r := range rows[1:] {
		if a := r.(map[string]any)["adapter_id"]; a != g1 && a != g2 {
			t.Fatalf("batch google row pinned to %v", a)
		}
	}
	// Turning matching off: plain WDRR over all three.
	e.must(200, "PATCH", "/v1/pools/"+pool["id"].(string), key, map[string]any{"provider_matching": "off"})
	seen := map[string]bool{}
	for i := range 6 {
		seen[pin(fmt.Sprintf("x%d@ms-corp.test", i))] = true
	}
	if len(seen) != 3 {
		t.Fatalf("without matching, microsoft recipients went to %v", seen)
	}
}

func TestProviderCapsAPI(t *testing.T) {
	t.Parallel()
	providerCapsAPI(t)
}

func providerCapsAPI(t *testing.T) {
	e, _, _ := newPreflightEnv(t)
	key := e.tenant("caps")
	assertProblem(t, e.do("POST", "/v1/adapters", key, map[string]any{"name": "x", "provider": "sink", "from_address": "x@good.test", "provider_caps": map[string]any{"aol": 5}}), 422, "invalid_value", "provider_caps")
	assertProblem(t, e.do("POST", "/v1/adapters", key, map[string]any{"name": "x", "provider": "sink", "from_address": "x@good.test", "provider_caps": map[string]any{"microsoft": 0}}), 422, "out_of_range", "provider_caps.microsoft")
	a := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "a", "provider": "smtp", "from_address": "a@good.test",
		"credentials": map[string]any{"host": "relay.example.com", "port": 587}, "provider_caps": map[string]any{"microsoft": 20, "google": 50}})
	if c := a["provider_caps"].(map[string]any); c["microsoft"] != float64(20) || c["google"] != float64(50) {
		t.Fatalf("caps: %v", a["provider_caps"])
	}
	a = e.must(200, "PATCH", "/v1/adapters/"+a["id"].(string), key, map[string]any{"provider_caps": map[string]any{"microsoft": 5}})
	if c := a["provider_caps"].(map[string]any); len(c) != 1 || c["microsoft"] != float64(5) {
		t.Fatalf("patched caps: %v", a["provider_caps"])
	}
	p := e.must(201, "POST", "/v1/pools", key, map[string]any{"name": "main", "members": []any{map[string]any{"adapter_id": a["id"]}}})
	e.must(201, "POST", "/v1/sequences", key, map[string]any{"key": "c", "name": "C", "pool_id": p["id"],
		"steps": []any{map[string]any{"key": "intro", "subject": "Hi", "body_text": "Hello"}}})
	en := e.must(201, "POST", "/v1/enrollments", key, map[string]any{"sequence_key": "c", "contact": map[string]any{"email": "ann@outlook.com"}})
	if en["recipient_provider"] != "microsoft" {
		t.Fatalf("recipient provider: %v", en["recipient_provider"])
	}
	ex := e.must(200, "GET", "/v1/enrollments/"+en["id"].(string)+"/explain", key, nil)
	var pc map[string]any
	for _, v := range ex["verdicts"].([]any) {
		if m := v.(map[string]any); m["policy"] == "provider_cap" {
			pc = m
		}
	}
	if pc == nil || pc["action"] != "allow" || pc["inputs"].(map[string]any)["provider_cap"] != float64(5) ||
		pc["inputs"].(map[string]any)["recipient_provider"] != "microsoft" || pc["inputs"].(map[string]any)["sent_today_for_provider"] != float64(0) {
		t.Fatalf("provider_cap verdict: %v", pc)
	}
}

// The dkim_alignment check in the domain report: unknown (and not counted)
// until mailbox sync recorded our own sent copy, then pass or fail on its
// signature's d=, kept across DNS re-checks.
func TestDomainDKIMAlignmentAPI(t *testing.T) {
	t.Parallel()
	e, _, clock := newPreflightEnv(t)
	key := e.tenant("dkimal")
	e.must(201, "POST", "/v1/adapters", key, map[string]any{
		"name": "jane", "provider": "smtp", "from_address": "jane@good.test",
		"credentials": map[string]any{"host": "smtp.gmail.com", "port": 587, "username": "jane@good.test", "password": "app-password"},
	})
	dom := e.must(200, "POST", "/v1/domains/good.test/check", key, nil)
	if c := checkOf(t, dom, "dkim_alignment"); dom["status"] != "pass" || c["status"] != "unknown" || c["code"] != "dkim_alignment_unseen" {
		t.Fatalf("before a sent copy: domain %v, check %v", dom["status"], c)
	}
	record := func(sigs ...preflight.DKIMSignature) map[string]any {
		t.Helper()
		if err := e.store.RecordSentCopy(context.Background(), "dkimal", preflight.SentCopy{
			MessageID: "m-" + fmt.Sprint(len(sigs)) + "@good.test", FromDomain: "good.test", Signatures: sigs, SeenAt: clock.Now(),
		}); err != nil {
			t.Fatal(err)
		}
		return e.must(200, "GET", "/v1/domains/good.test", key, nil)
	}
	// Signed by the provider's domain: not aligned, the domain fails.
	got := record(preflight.DKIMSignature{D: "gmail.com", S: "20230601"})
	c := checkOf(t, got, "dkim_alignment")
	ev := c["evidence"].([]any)
	if got["status"] != "fail" || got["failing_since"] == nil || c["status"] != "fail" || c["code"] != "dkim_not_aligned" || len(ev) != 1 ||
		ev[0].(map[string]any)["values"].([]any)[0] != "d=gmail.com; s=20230601" {
		t.Fatalf("gmail.com signature: domain %v, check %v", got["status"], c)
	}
	// A DNS re-check keeps what was seen.
	again := e.must(200, "POST", "/v1/domains/good.test/check", key, nil)
	if again["status"] != "fail" || checkOf(t, again, "dkim_alignment")["code"] != "dkim_not_aligned" || checkOf(t, again, "spf")["status"] != "pass" {
		t.Fatalf("after a re-check: %v", again)
	}
	// Google's Sent copy without a signature: unknown, not counted.
	got = record()
	if c := checkOf(t, got, "dkim_alignment"); got["status"] != "pass" || got["failing_since"] != nil || c["code"] != "dkim_alignment_unsigned_copy" || c["status"] != "unknown" {
		t.Fatalf("unsigned google copy: domain %v, check %v", got["status"], c)
	}
	// Signed by the domain itself: aligned.
	got = record(preflight.DKIMSignature{D: "good.test", S: "google"})
	if c := checkOf(t, got, "dkim_alignment"); got["status"] != "pass" || c["code"] != "dkim_aligned" || c["facts"].(map[string]any)["d"] != "good.test" {
		t.Fatalf("aligned: domain %v, check %v", got["status"], c)
	}
}
