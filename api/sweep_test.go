package api_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// TestTenantIsolationSweep calls every tenant route with tenant A's key and
// tenant B's ids: each answers 404 (or, for collections, shows nothing of
// B's), and B's data is byte-identical afterwards. A new route without a case
// here fails the test.
func TestTenantIsolationSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.fixture("tenant-a")
	b := e.fixture("tenant-b")
	e.must(201, "POST", "/v1/suppressions", b.key, map[string]any{"email": "only-b@example.com"})
	bSub := e.must(201, "POST", "/v1/telemetry/subscriptions", b.key, map[string]any{"url": "https://hooks.example.com/b"})["id"].(string)
	e.must(200, "POST", "/v1/enrollments/"+b.enrollment+"/pause", b.key, nil) // an event in B's feed
	dbtest.WaitOutboxPublished(t, e.dbURL)
	bEvent := e.must(200, "GET", "/v1/telemetry/events", b.key, nil)["data"].([]any)[0].(map[string]any)["id"]
	bApp := e.must(201, "POST", "/v1/oauth/apps", b.key, map[string]any{"provider": "google", "client_id": "b-client", "client_secret": "b-secret"})["id"].(string)
	e.must(200, "PATCH", "/v1/adapters/"+b.adapterA, b.key, map[string]any{"imap": map[string]any{"preset": "google"}}) // B's mailbox sync exists
	bInbound := e.must(201, "POST", "/v1/inbound", b.key, map[string]any{"message_id": "<only-b-reply@example.com>", "from": "lead@example.org",
		"body_text": "Not right now.", "received_at": "2026-11-24T10:00:00Z"})["id"].(string)

	bSnapshot := func() []byte {
		var buf bytes.Buffer
		for _, p := range []string{"/v1/adapters", "/v1/pools", "/v1/sequences", "/v1/suppressions",
			"/v1/adapters/" + b.adapterA, "/v1/pools/" + b.pool, "/v1/sequences/" + b.seq, "/v1/enrollments/" + b.enrollment,
			"/v1/telemetry/subscriptions/" + bSub, "/v1/telemetry/events", "/v1/oauth/apps", "/v1/oauth/apps/" + bApp, "/v1/inbound/" + bInbound, "/v1/domains/tenant-b.example.com", "/v1/settings"} {
			buf.Write(e.do("GET", p, b.key, nil).body)
		}
		return buf.Bytes()
	}
	before, countsBefore := bSnapshot(), dbtest.RowCounts(t, e.dbURL)

	seqBody := map[string]any{"pool_id": b.pool, "steps": []any{map[string]any{"subject": "s", "body_text": "b"}}}
	// Each route: path with B's ids, body, and whether it is a collection
	// whose answer must simply not contain B's ids.
	cases := map[string]struct {
		path       string
		body       any
		collection bool
	}{
		"POST /v1/adapters":                                        {"/v1/adapters", nil, true},
		"GET /v1/adapters":                                         {"/v1/adapters", nil, true},
		"GET /v1/adapters/{id}":                                    {"/v1/adapters/" + b.adapterA, nil, false},
		"PATCH /v1/adapters/{id}":                                  {"/v1/adapters/" + b.adapterA, map[string]any{"name": "pwned"}, false},
		"DELETE /v1/adapters/{id}":                                 {"/v1/adapters/" + b.adapterA + "?force=true", nil, false},
		"POST /v1/pools":                                           {"/v1/pools", map[string]any{"name": "x", "members": []any{map[string]any{"adapter_id": b.adapterA}}}, false},
		"GET /v1/pools":                                            {"/v1/pools", nil, true},
		"GET /v1/pools/{id}":                                       {"/v1/pools/" + b.pool, nil, false},
		"PATCH /v1/pools/{id}":                                     {"/v1/pools/" + b.pool, map[string]any{"name": "pwned"}, false},
		"DELETE /v1/pools/{id}":                                    {"/v1/pools/" + b.pool + "?force=true", nil, false},
		"POST /v1/pools/{id}/members":                              {"/v1/pools/" + b.pool + "/members", map[string]any{"adapter_id": b.adapterB}, false},
		"PATCH /v1/pools/{id}/members/{adapter_id}":                {"/v1/pools/" + b.pool + "/members/" + b.adapterA, map[string]any{"weight": 9}, false},
		"DELETE /v1/pools/{id}/members/{adapter_id}":               {"/v1/pools/" + b.pool + "/members/" + b.adapterA, nil, false},
		"POST /v1/sequences":                                       {"/v1/sequences", map[string]any{"key": "steal", "name": "x", "pool_id": b.pool, "steps": seqBody["steps"]}, false},
		"GET /v1/sequences":                                        {"/v1/sequences", nil, true},
		"GET /v1/sequences/{id}":                                   {"/v1/sequences/" + b.seq, nil, false},
		"POST /v1/sequences/{id}/versions":                         {"/v1/sequences/" + b.seq + "/versions", seqBody, false},
		"PATCH /v1/sequences/{id}/versions/{n}":                    {"/v1/sequences/" + b.seq + "/versions/1", map[string]any{"stop_on_reply": false}, false},
		"POST /v1/sequences/{id}/versions/{n}/activate":            {"/v1/sequences/" + b.seq + "/versions/1/activate", nil, false},
		"PUT /v1/sequences/{id}/versions/{n}/budgets/{adapter_id}": {"/v1/sequences/" + b.seq + "/versions/1/budgets/" + b.adapterA, map[string]any{"max_share_pct": 5}, false},
		"POST /v1/enrollments":                                     {"/v1/enrollments", map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": "lead@tenant-b.example.com"}}, true},
		"POST /v1/enrollments/batch":                               {"/v1/enrollments/batch", nil, true},
		"GET /v1/enrollments/{id}":                                 {"/v1/enrollments/" + b.enrollment, nil, false},
		"GET /v1/enrollments":                                      {"/v1/enrollments?adapter_id=" + b.adapterA, nil, true},
		"PATCH /v1/enrollments/{id}":                               {"/v1/enrollments/" + b.enrollment, map[string]any{"first_name": "pwned"}, false},
		"GET /v1/sequences/{id}/stats":                             {"/v1/sequences/" + b.seq + "/stats", nil, false},
		"POST /v1/enrollments/{id}/pause":                          {"/v1/enrollments/" + b.enrollment + "/pause", nil, false},
		"POST /v1/enrollments/{id}/resume":                         {"/v1/enrollments/" + b.enrollment + "/resume", nil, false},
		"POST /v1/enrollments/{id}/cancel":                         {"/v1/enrollments/" + b.enrollment + "/cancel", nil, false},
		"POST /v1/enrollments/{id}/repin":                          {"/v1/enrollments/" + b.enrollment + "/repin", map[string]any{"adapter_id": b.adapterB}, false},
		"POST /v1/suppressions":                                    {"/v1/suppressions", nil, true},
		"GET /v1/adapters/{id}/capacity":                           {"/v1/adapters/" + b.adapterA + "/capacity", nil, false},
		"GET /v1/adapters/{id}/health":                             {"/v1/adapters/" + b.adapterA + "/health", nil, false},
		"POST /v1/adapters/{id}/health":                            {"/v1/adapters/" + b.adapterA + "/health", map[string]any{"health_state": "resting", "source": "x"}, false},
		"POST /v1/adapters/{id}/verify":                            {"/v1/adapters/" + b.adapterA + "/verify", nil, false},
		"GET /v1/adapters/{id}/sync":                               {"/v1/adapters/" + b.adapterA + "/sync", nil, false},
		"POST /v1/adapters/{id}/sync":                              {"/v1/adapters/" + b.adapterA + "/sync", nil, false},
		"POST /v1/adapters/{id}/oauth/start":                       {"/v1/adapters/" + b.adapterA + "/oauth/start", nil, false},
		"PUT /v1/adapters/{id}/oauth/token":                        {"/v1/adapters/" + b.adapterA + "/oauth/token", map[string]any{"refresh_token": "rt-x"}, false},
		"POST /v1/oauth/apps":                                      {"/v1/oauth/apps", nil, true},
		"GET /v1/oauth/apps":                                       {"/v1/oauth/apps", nil, true},
		"GET /v1/oauth/apps/{id}":                                  {"/v1/oauth/apps/" + bApp, nil, false},
		"DELETE /v1/oauth/apps/{id}":                               {"/v1/oauth/apps/" + bApp, nil, false},
		"POST /v1/enrollments/{id}/retry":                          {"/v1/enrollments/" + b.enrollment + "/retry", nil, false},
		"GET /v1/enrollments/{id}/explain":                         {"/v1/enrollments/" + b.enrollment + "/explain", nil, false},
		"POST /v1/spintax/preview":                                 {"/v1/spintax/preview", nil, true},
		"POST /v1/forecast":                                        {"/v1/forecast", map[string]any{"changes": map[string]any{"add_adapters": []any{map[string]any{"pool_id": b.pool, "count": 1}}}}, false},
		"GET /v1/telemetry/catalog":                                {"/v1/telemetry/catalog", nil, true},
		"GET /v1/suppressions":                                     {"/v1/suppressions", nil, true},
		"DELETE /v1/suppressions":                                  {"/v1/suppressions?email=only-b@example.com", nil, false},
		"POST /v1/inbound": {"/v1/inbound", map[string]any{"message_id": "<x@b.example>", "from": "x@b.example",
			"received_at": "2026-11-24T10:00:00Z", "adapter_id": b.adapterA}, false},
		// Raw messages are message/rfc822; their isolation (B's adapter_id,
		// B's Message-IDs) is covered in inbound_test.go.
		"POST /v1/inbound/raw":   {"/v1/inbound/raw", nil, true},
		"GET /v1/inbound/{id}":   {"/v1/inbound/" + bInbound, nil, false},
		"PATCH /v1/inbound/{id}": {"/v1/inbound/" + bInbound, map[string]any{"category": "interested"}, false},
		// A tenant's own provider configuration: A's key writes only A's.
		"PUT /v1/inbound/providers/{provider}": {"/v1/inbound/providers/mailgun", nil, true},
		// Authenticated by the provider's signature with the named tenant's
		// material, never by the key: esp_test.go covers tenants without it.
		"POST /v1/inbound/events/{provider}":              {"/v1/inbound/events/mailgun", nil, true},
		"GET /v1/telemetry/events":                        {"/v1/telemetry/events", nil, true},
		"GET /v1/telemetry/stream":                        {"/v1/telemetry/stream", nil, true},
		"POST /v1/telemetry/subscriptions":                {"/v1/telemetry/subscriptions", nil, true},
		"GET /v1/telemetry/subscriptions":                 {"/v1/telemetry/subscriptions", nil, true},
		"GET /v1/telemetry/subscriptions/{id}":            {"/v1/telemetry/subscriptions/" + bSub, nil, false},
		"PATCH /v1/telemetry/subscriptions/{id}":          {"/v1/telemetry/subscriptions/" + bSub, map[string]any{"active": false}, false},
		"DELETE /v1/telemetry/subscriptions/{id}":         {"/v1/telemetry/subscriptions/" + bSub, nil, false},
		"POST /v1/telemetry/subscriptions/{id}/redeliver": {"/v1/telemetry/subscriptions/" + bSub + "/redeliver", map[string]any{"event_id": bEvent}, false},
		"GET /v1/domains":                                 {"/v1/domains", nil, true},
		"GET /v1/domains/{domain}":                        {"/v1/domains/tenant-b.example.com", nil, false},
		// A domain is a name, not B's id: A checking it makes A's own
		// record (B's stays as it is, which the snapshot proves).
		"POST /v1/domains/{domain}/check": {"/v1/domains/tenant-b.example.com/check", nil, true},
		"GET /v1/settings":                {"/v1/settings", nil, true},
		"PATCH /v1/settings":              {"/v1/settings", nil, true},
	}
	bIDs := []string{b.adapterA, b.adapterB, b.pool, b.seq, b.enrollment, "only-b@example.com", bSub, bApp, bInbound, "tenant-b.example.com"}
	for _, rt := range e.server.Routes() {
		if !strings.HasPrefix(rt.Path, "/v1/") || strings.HasPrefix(rt.Path, "/v1/tenants") {
			continue
		}
		name := rt.Method + " " + rt.Path
		c, ok := cases[name]
		if !ok {
			t.Errorf("route %s has no tenant-isolation case", name)
			continue
		}
		if c.collection {
			if rt.Method != "GET" {
				continue // creates without references to B's ids cannot reach B
			}
			var r resp
			if rt.Path == "/v1/telemetry/stream" { // endless: read what A's stream sends in 2 s
				r = e.stream(c.path, a.key, 2*time.Second)
			} else {
				r = e.do("GET", c.path, a.key, nil)
			}
			for _, id := range bIDs {
				if bytes.Contains(r.body, []byte(id)) {
					t.Errorf("%s with A's key shows B's %s", name, id)
				}
			}
			continue
		}
		r := e.do(rt.Method, c.path, a.key, c.body)
		if r.status != 404 {
			t.Errorf("%s with A's key on B's ids: status %d, want 404\n%s", name, r.status, r.body)
		}
	}
	if after := bSnapshot(); !bytes.Equal(before, after) {
		t.Fatal("tenant B's data changed during the sweep")
	}
	if countsAfter := dbtest.RowCounts(t, e.dbURL); !reflect.DeepEqual(countsBefore, countsAfter) {
		t.Fatalf("row counts changed during the sweep:\nbefore %v\nafter  %v", countsBefore, countsAfter)
	}
}

// TestBadInputChangesNothing sends malformed bodies to every route that
// takes one: each gets a 4xx problem with a code and a field, and no row
// anywhere changes.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	sub := e.must(201, "POST", "/v1/telemetry/subscriptions", f.key, map[string]any{"url": "https://hooks.example.com/a"})["id"].(string)
	step := map[string]any{"subject": "Hi", "body_text": "Body"}
	inbound := e.must(201, "POST", "/v1/inbound", f.key, map[string]any{"message_id": "<bad-input-reply@example.com>", "from": "lead@example.org",
		"body_text": "Sounds good.", "received_at": "2026-11-24T10:00:00Z"})["id"].(string)
	type route struct {
		method, path string
		valid        map[string]any
		wrongType    [2]any // field, value
		outOfRange   [2]any
	}
	routes := []route{
		{"POST", "/v1/adapters", map[string]any{"name": "n", "provider": "sink", "from_address": "n@acme.example.com"}, [2]any{"daily_cap", "many"}, [2]any{"min_gap_seconds", -1}},
		{"PATCH", "/v1/adapters/" + f.adapterA, map[string]any{"name": "n"}, [2]any{"active", "yes"}, [2]any{"daily_cap", 0}},
		{"POST", "/v1/pools", map[string]any{"name": "p2"}, [2]any{"name", 42}, [2]any{"on_pin_unavailable", "explode"}},
		{"PATCH", "/v1/pools/" + f.pool, map[string]any{"name": "p3"}, [2]any{"on_pin_unavailable", 1}, [2]any{"on_pin_unavailable", "sometimes"}},
		{"POST", "/v1/pools/" + f.pool + "/members", map[string]any{"adapter_id": f.adapterB}, [2]any{"weight", "heavy"}, [2]any{"weight", 0}},
		{"PATCH", "/v1/pools/" + f.pool + "/members/" + f.adapterA, map[string]any{"weight": 2}, [2]any{"weight", 1.5}, [2]any{"weight", -3}},
		{"POST", "/v1/sequences", map[string]any{"key": "s2", "name": "S2", "pool_id": f.pool, "steps": []any{step}}, [2]any{"steps", "one"}, [2]any{"send_window", map[string]any{"days": []int{9}, "start": "08:00", "end": "18:00"}}},
		{"POST", "/v1/sequences/" + f.seq + "/versions", map[string]any{"pool_id": f.pool, "steps": []any{step}}, [2]any{"stop_on_reply", "no"}, [2]any{"steps", []any{map[string]any{"subject": "s", "body_text": "b", "delay_seconds": -5}}}},
		{"PUT", "/v1/sequences/" + f.seq + "/versions/1/budgets/" + f.adapterA, map[string]any{"max_share_pct": 50}, [2]any{"max_share_pct", "half"}, [2]any{"max_share_pct", 101}},
		{"POST", "/v1/suppressions", map[string]any{"email": "x@acme.example.com"}, [2]any{"email", true}, [2]any{"reason", "because"}},
		{"POST", "/v1/spintax/preview", map[string]any{"template": "{a|b}"}, [2]any{"n", "ten"}, [2]any{"n", 1000}},
		{"POST", "/v1/forecast", map[string]any{"horizon_days": 7}, [2]any{"horizon_days", "week"}, [2]any{"horizon_days", 1000}},
		{"POST", "/v1/enrollments", map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": "new@acme.example.com"}}, [2]any{"contact", "x@y.z"}, [2]any{"contact", map[string]any{"email": "new@acme.example.com", "vars": map[string]any{"1bad": "x"}}}},
		{"POST", "/v1/enrollments/batch", map[string]any{"sequence_key": "welcome", "contacts": []any{map[string]any{"email": "new@acme.example.com"}}}, [2]any{"contacts", "all"}, [2]any{"contacts", []any{}}},
		{"POST", "/v1/adapters/" + f.adapterA + "/health", map[string]any{"source": "x"}, [2]any{"health_score", "high"}, [2]any{"health_score", 2}},
		{"PATCH", "/v1/enrollments/" + f.enrollment, map[string]any{"first_name": "Ada"}, [2]any{"first_name", 5}, [2]any{"timezone", "Mars/Olympus"}},
		{"POST", "/v1/enrollments/" + f.enrollment + "/repin", map[string]any{"adapter_id": f.adapterB}, [2]any{"adapter_id", 5}, [2]any{"reason", ""}},
		{"POST", "/v1/telemetry/subscriptions", map[string]any{"url": "https://hooks.example.com/x"}, [2]any{"events", "dripdrop."}, [2]any{"url", "http://127.0.0.1/hook"}},
		{"PATCH", "/v1/telemetry/subscriptions/" + sub, map[string]any{"active": true}, [2]any{"active", "yes"}, [2]any{"events", []any{""}}},
		{"POST", "/v1/telemetry/subscriptions/" + sub + "/redeliver", map[string]any{"event_id": 1}, [2]any{"event_id", "one"}, [2]any{"event_id", -1}},
		{"POST", "/v1/tenants", map[string]any{"tenant_key": "newco"}, [2]any{"tenant_key", 7}, [2]any{"tenant_key", strings.Repeat("a", 80)}},
		{"POST", "/v1/inbound", map[string]any{"message_id": "<x@y.example>", "from": "a@y.example", "received_at": "2026-11-24T10:00:00Z"}, [2]any{"references", 42}, [2]any{"intent", "angry"}},
		{"PATCH", "/v1/inbound/" + inbound, map[string]any{"category": "not_now"}, [2]any{"category", 5}, [2]any{"category", "hot"}},
		{"PUT", "/v1/inbound/providers/mailgun", map[string]any{"signing_key": "k"}, [2]any{"signing_key", 5}, [2]any{"signing_key", strings.Repeat("k", 5000)}},
		{"POST", "/v1/oauth/apps", map[string]any{"provider": "google", "client_id": "x"}, [2]any{"client_id", 5}, [2]any{"provider", "yahoo"}},
		{"PUT", "/v1/adapters/" + f.adapterA + "/oauth/token", map[string]any{"refresh_token": "rt-x"}, [2]any{"refresh_token", 5}, [2]any{"refresh_token", strings.Repeat("r", 9000)}},
		{"POST", "/v1/domains/acme.example.com/check", map[string]any{"provider": "google"}, [2]any{"provider", 5}, [2]any{"dkim_selectors", []any{"not a selector"}}},
		{"PATCH", "/v1/settings", map[string]any{"require_domain_auth": "block"}, [2]any{"require_domain_auth", 5}, [2]any{"require_domain_auth", "sometimes"}},
	}
	for _, rt := range e.server.Routes() {
		if rt.Method == "POST" || rt.Method == "PUT" || rt.Method == "PATCH" {
			found := false
			for _, c := range routes {
				if c.method == rt.Method && routeMatches(rt, c.path) {
					found = true
				}
			}
			bodyless := strings.HasPrefix(rt.Path, "/u/") || strings.HasSuffix(rt.Path, "/activate") || strings.HasSuffix(rt.Path, "/pause") || strings.HasSuffix(rt.Path, "/resume") || strings.HasSuffix(rt.Path, "/cancel") ||
				strings.HasSuffix(rt.Path, "/retry") || strings.HasSuffix(rt.Path, "/verify") || strings.HasSuffix(rt.Path, "/oauth/start") || strings.HasSuffix(rt.Path, "/sync")
			raw := strings.HasSuffix(rt.Path, "/inbound/raw") || // message/rfc822: bad input covered in inbound_test.go
				strings.HasPrefix(rt.Path, "/v1/inbound/events/") // providers' payloads: covered in esp_test.go
			if !found && !bodyless && !raw && !strings.HasSuffix(rt.Path, "/keys") && !strings.HasSuffix(rt.Path, "/versions/{n}") {
				t.Errorf("route %s %s has no bad-input case", rt.Method, rt.Path)
			}
		}
	}
	before := dbtest.RowCounts(t, e.dbURL)
	for _, c := range routes {
		key := f.key
		if strings.HasPrefix(c.path, "/v1/tenants") {
			key = adminToken
		}
		with := func(field string, v any) map[string]any {
			m := map[string]any{}
			for k, x := range c.valid {
				m[k] = x
			}
			m[field] = v
			return m
		}
		tooLarge := 2 << 20 // 2 MiB over the 1 MiB limit
		if strings.HasSuffix(c.path, "/batch") {
			tooLarge = 33 << 20
		}
		firstField := ""
		for k := range c.valid {
			firstField = k
		}
		bad := map[string]struct {
			body       any
			wantStatus int
			code       string
			field      string
		}{
			"wrong type":    {with(c.wrongType[0].(string), c.wrongType[1]), 422, "*", c.wrongType[0].(string)},
			"out of range":  {with(c.outOfRange[0].(string), c.outOfRange[1]), 422, "*", "*"},
			"unknown field": {with("tenant_key_override", "x"), 422, "unknown_field", "tenant_key_override"},
			"invalid utf8":  {[]byte(`{"` + firstField + `": "bad ` + "\xff\xfe" + ` bytes"}`), 400, "invalid_utf8", firstField},
			"escaped nul":   {[]byte(`{"` + firstField + `": "nul \u0000 here"}`), 422, "invalid_character", firstField},
			"raw nul":       {[]byte(`{"` + firstField + `": "nul ` + "\x00" + ` here"}`), 422, "invalid_character", firstField},
			"malformed":     {`{"` + firstField + `": `, 400, "invalid_json", "*"},
			"not an object": {`[1,2,3]`, 422, "invalid_type", "*"},
			"empty":         {``, 400, "invalid_json", "body"},
			"too large":     {`{"` + firstField + `": "` + strings.Repeat("x", tooLarge) + `"}`, 413, "payload_too_large", "body"},
		}
		for name, b := range bad {
			t.Run(c.method+" "+c.path+"/"+name, func(t *testing.T) {
				r := e.do(c.method, c.path, key, b.body)
				if r.status < 400 || r.status >= 500 {
					t.Fatalf("status %d, want 4xx\n%s", r.status, r.body)
				}
				if b.wantStatus != 0 && r.status != b.wantStatus {
					t.Fatalf("status %d, want %d\n%s", r.status, b.wantStatus, r.body)
				}
				if r.header.Get("Content-Type") != "application/problem+json" {
					t.Fatalf("content type %q", r.header.Get("Content-Type"))
				}
				m := r.json(t)
				code, _ := m["code"].(string)
				field, _ := m["field"].(string)
				if code == "" || field == "" {
					t.Fatalf("problem without code or field: %s", r.body)
				}
				if b.code != "*" && code != b.code {
					t.Fatalf("code %q, want %q: %s", code, b.code, r.body)
				}
				if b.field != "*" && field != b.field && !strings.HasSuffix(field, "."+b.field) {
					t.Fatalf("field %q, want %q: %s", field, b.field, r.body)
				}
			})
		}
	}
	if after := dbtest.RowCounts(t, e.dbURL); !reflect.DeepEqual(before, after) {
		t.Fatalf("rejected requests changed rows:\nbefore %v\nafter  %v", before, after)
	}
}

func routeMatches(rt api.Route, path string) bool {
	pp := strings.Split(strings.SplitN(path, "?", 2)[0], "/")
	rp := strings.Split(rt.Path, "/")
	if len(pp) != len(rp) {
		return false
	}
	for i := range rp {
		if strings.HasPrefix(rp[i], "{") {
			continue
		}
		if rp[i] != pp[i] {
			return false
		}
	}
	return true
}
