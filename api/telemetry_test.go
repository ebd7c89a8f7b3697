package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestSubscriptionsCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	other := e.tenant("globex")

	for _, u := range []string{"http://127.0.0.1:9000/hook", "http://[::1]/x", "https://10.1.2.3/x", "http://169.254.169.254/latest", "http://localhost:8080/"} {
		assertProblem(t, e.do("POST", "/v1/telemetry/subscriptions", key, map[string]any{"url": u}), 422, "forbidden_target", "url")
	}
	assertProblem(t, e.do("POST", "/v1/telemetry/subscriptions", key, map[string]any{"url": "ftp://hooks.example.com/"}), 422, "invalid_value", "url")
	assertProblem(t, e.do("POST", "/v1/telemetry/subscriptions", key, map[string]any{"url": "https://hooks.example.com/", "secret": "whsec_c2hvcnQ="}), 422, "invalid_value", "secret")
	assertProblem(t, e.do("POST", "/v1/telemetry/subscriptions", key, map[string]any{}), 422, "required", "url")
	assertProblem(t, e.do("POST", "/v1/telemetry/subscriptions", key, map[string]any{"url": "https://hooks.example.com/", "colour": "red"}), 422, "unknown_field", "colour")
	if n := len(e.must(200, "GET", "/v1/telemetry/subscriptions", key, nil)["data"].([]any)); n != 0 {
		t.Fatalf("rejected requests created %d subscriptions", n)
	}

	sub := e.must(201, "POST", "/v1/telemetry/subscriptions", key, map[string]any{"url": "https://hooks.example.com/dripdrop", "events": []string{"dripdrop.enrollment."}})
	secret, _ := sub["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < 6+32 {
		t.Fatalf("secret %q", secret)
	}
	id := sub["id"].(string)
	got := e.must(200, "GET", "/v1/telemetry/subscriptions/"+id, key, nil)
	if _, shown := got["secret"]; shown || got["active"] != true || got["url"] != "https://hooks.example.com/dripdrop" {
		t.Fatalf("GET %v", got)
	}
	own := "whsec_" + strings.Repeat("QUJD", 8) // base64 of 24 bytes
	if s := e.must(201, "POST", "/v1/telemetry/subscriptions", key, map[string]any{"url": "https://hooks.example.com/2", "secret": own}); s["secret"] != own {
		t.Fatalf("given secret answered as %v", s["secret"])
	}
	assertProblem(t, e.do("PATCH", "/v1/telemetry/subscriptions/"+id, key, map[string]any{"url": "http://192.168.1.1/"}), 422, "forbidden_target", "url")
	p := e.must(200, "PATCH", "/v1/telemetry/subscriptions/"+id, key, map[string]any{"active": false, "events": []string{"dripdrop.dispatch.sent"}})
	if p["active"] != false || fmt.Sprint(p["events"]) != "[dripdrop.dispatch.sent]" || p["url"] != "https://hooks.example.com/dripdrop" {
		t.Fatalf("PATCH %v", p)
	}
	assertProblem(t, e.do("GET", "/v1/telemetry/subscriptions/"+id, other, nil), 404, "not_found", "")
	assertProblem(t, e.do("DELETE", "/v1/telemetry/subscriptions/"+id, other, nil), 404, "not_found", "")
	if r := e.do("DELETE", "/v1/telemetry/subscriptions/"+id, key, nil); r.status != 204 {
		t.Fatalf("DELETE %d %s", r.status, r.body)
	}
	assertProblem(t, e.do("GET", "/v1/telemetry/subscriptions/"+id, key, nil), 404, "not_found", "")
}

func TestEventFeedAndRedeliver(t *testing.T) {
	t.Parallel()
	eventFeedAndRedeliver(t)
}

func eventFeedAndRedeliver(t *testing.T) {
	e := newEnv(t)
	f := e.fixture("acme")
	g := e.fixture("globex")
	// Recorded with or without a subscription: the outbox is the tenant's feed.
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/pause", f.key, nil)
	dbtest.WaitOutboxPublished(t, e.dbURL)
	if d := e.must(200, "GET", "/v1/telemetry/events?prefix=dripdrop.enrollment.paused", f.key, nil)["data"].([]any); len(d) != 1 {
		t.Fatalf("events without a subscription: %v", d)
	}
	sub := e.must(201, "POST", "/v1/telemetry/subscriptions", f.key, map[string]any{"url": "https://hooks.example.com/", "events": []string{"dripdrop.enrollment."}})
	e.must(201, "POST", "/v1/telemetry/subscriptions", g.key, map[string]any{"url": "https://hooks.example.com/g"})
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/resume", f.key, nil)
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/pause", f.key, nil)
	e.must(200, "POST", "/v1/enrollments/"+g.enrollment+"/cancel", g.key, nil)

	dbtest.WaitOutboxPublished(t, e.dbURL)
	all := e.must(200, "GET", "/v1/telemetry/events?prefix=dripdrop.enrollment.", f.key, nil)
	data := all["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("acme feed %v", data)
	}
	first, second := data[1].(map[string]any), data[2].(map[string]any)
	if first["name"] != "dripdrop.enrollment.resumed" || second["name"] != "dripdrop.enrollment.paused" || first["tenant_key"] != "acme" {
		t.Fatalf("feed %v", data)
	}
	if m := first["measurements"].(map[string]any); m["count"] != float64(1) {
		t.Fatalf("measurements %v", m)
	}
	page := e.must(200, "GET", fmt.Sprintf("/v1/telemetry/events?after=%v&limit=1&prefix=dripdrop.enrollment.", first["id"]), f.key, nil)
	if d := page["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != second["id"] || page["next_after"] != second["id"] {
		t.Fatalf("page after %v: %v", first["id"], page)
	}
	if d := e.must(200, "GET", "/v1/telemetry/events?prefix=dripdrop.enrollment.pa", f.key, nil)["data"].([]any); len(d) != 2 {
		t.Fatalf("prefix filter: %v", d)
	}
	gd := e.must(200, "GET", "/v1/telemetry/events?prefix=dripdrop.enrollment.", g.key, nil)["data"].([]any)
	if len(gd) != 1 || gd[0].(map[string]any)["name"] != "dripdrop.enrollment.cancelled" {
		t.Fatalf("globex feed %v", gd)
	}
	assertProblem(t, e.do("GET", "/v1/telemetry/events?after=x", f.key, nil), 400, "invalid_cursor", "after")
	assertProblem(t, e.do("GET", "/v1/telemetry/events?limit=0", f.key, nil), 422, "out_of_range", "limit")

	path := "/v1/telemetry/subscriptions/" + sub["id"].(string) + "/redeliver"
	if r := e.must(202, "POST", path, f.key, map[string]any{"since": first["id"]}); r["scheduled"] != float64(2) || r["scope"] != "since" {
		t.Fatalf("redeliver since: %v", r)
	}
	if r := e.must(202, "POST", path, f.key, map[string]any{"event_id": second["id"]}); r["scheduled"] != float64(1) || r["scope"] != "single" {
		t.Fatalf("redeliver single: %v", r)
	}
	assertProblem(t, e.do("POST", path, f.key, map[string]any{}), 422, "required", "event_id")
	assertProblem(t, e.do("POST", path, f.key, map[string]any{"event_id": gd[0].(map[string]any)["id"]}), 404, "not_found", "")
	assertProblem(t, e.do("POST", path, g.key, map[string]any{"event_id": second["id"]}), 404, "not_found", "")
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	e.must(201, "POST", "/v1/telemetry/subscriptions", f.key, map[string]any{"url": "https://hooks.example.com/"})
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/pause", f.key, nil)
	dbtest.WaitOutboxPublished(t, e.dbURL)
	first := e.must(200, "GET", "/v1/telemetry/events?prefix=dripdrop.enrollment.paused", f.key, nil)["data"].([]any)[0].(map[string]any)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/telemetry/stream?prefix=dripdrop.enrollment.", nil)
	req.Header.Set("Authorization", "Bearer "+f.key)
	req.Header.Set("Last-Event-ID", fmt.Sprint(first["id"]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Events after Last-Event-ID only: the resume, then the cancel.
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/resume", f.key, nil)
	e.must(200, "POST", "/v1/enrollments/"+f.enrollment+"/cancel", f.key, nil)
	sc := bufio.NewScanner(resp.Body)
	var names []string
	var ids []string
	for len(names) < 2 && sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			names = append(names, v)
		}
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, v)
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && !strings.Contains(v, `"tenant_key":"acme"`) {
			t.Errorf("data %s", v)
		}
	}
	if fmt.Sprint(names) != "[dripdrop.enrollment.resumed dripdrop.enrollment.cancelled]" || len(ids) != 2 || ids[0] == fmt.Sprint(first["id"]) {
		t.Fatalf("stream events %v ids %v (resumed after %v)", names, ids, first["id"])
	}
}

// stream reads an event stream for d and returns what arrived.
func (e *env) stream(path, key string, d time.Duration) resp {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Last-Event-ID", "0")
	res, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body) // ends with the deadline
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// A quiet stream still writes a heartbeat comment every interval (so
// proxies and clients can tell an idle stream from a dead one), and only
// when no event was written in that interval.
func TestEventStreamHeartbeat(t *testing.T) {
	// Not parallel: api.SetStreamHeartbeat changes a package-level interval every server reads.
	defer api.SetStreamHeartbeat(300 * time.Millisecond)()
	e := newEnv(t)
	f := e.fixture("acme")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Resume from the newest event: nothing is due, the stream is idle.
	dbtest.WaitOutboxPublished(t, e.dbURL)
	page := e.must(200, "GET", "/v1/telemetry/events?limit=500", f.key, nil)
	after := int64(page["next_after"].(float64))
	req, _ := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/telemetry/stream", nil)
	req.Header.Set("Authorization", "Bearer "+f.key)
	req.Header.Set("Last-Event-ID", fmt.Sprint(after))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	var beats int
	start := time.Now()
	for beats < 2 && sc.Scan() {
		switch line := sc.Text(); {
		case line == ": heartbeat":
			beats++
		case strings.HasPrefix(line, "event: "):
			t.Fatalf("an idle stream sent %s", line)
		}
	}
	if beats != 2 {
		t.Fatalf("%d heartbeats, want 2 (%v)", beats, sc.Err())
	}
	// Two intervals at least went by: a heartbeat is never early.
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Fatalf("two heartbeats in %v, want ≥ 600ms", took)
	}
}
