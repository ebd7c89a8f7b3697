package api_test

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/netguard"
)

func verifySMTP(ctx context.Context, c dripdrop.SMTPCredentials, from string) dripdrop.VerifyResult {
	return dispatch.Verify(ctx, c, from, nil, nil)
}

func TestHealthSignalAndReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	path := "/v1/adapters/" + f.adapterA + "/health"

	h := e.must(200, "GET", path, f.key, nil)
	if h["health_state"] != "active" || h["rest_backoff_seconds"] != float64(86400) || h["next_transition"] != nil {
		t.Fatalf("a new adapter's health: %v", h)
	}
	th := h["thresholds"].(map[string]any)
	if th["min_sample"] != float64(20) || th["bounce_rate"] != 0.02 || th["complaint_rate"] != 0.003 {
		t.Fatalf("thresholds %v", th)
	}

	// Validation: nothing changes on a rejected signal.
	for _, c := range []struct {
		body  map[string]any
		code  string
		field string
	}{
		{map[string]any{"health_state": "resting"}, "required", "source"},
		{map[string]any{"health_state": "sleeping", "source": "x"}, "invalid_value", "health_state"},
		{map[string]any{"health_score": 1.5, "source": "x"}, "out_of_range", "health_score"},
		{map[string]any{"health_score": -0.1, "source": "x"}, "out_of_range", "health_score"},
		{map[string]any{"health_state": "resting", "resting_until": "2000-01-01T00:00:00Z", "source": "x"}, "out_of_range", "resting_until"},
		{map[string]any{"source": "x", "bogus": 1}, "unknown_field", "bogus"},
	} {
		assertProblem(t, e.do("POST", path, f.key, c.body), 422, c.code, c.field)
	}
	if n := len(e.events.Named("dripdrop.health.external_signal")); n != 0 {
		t.Fatalf("%d signals recorded by rejected requests", n)
	}

	// A score only: no transition; the score scales the WDRR weight.
	h = e.must(200, "POST", path, f.key, map[string]any{"health_score": 0.5, "source": "postmaster"})
	if h["health_state"] != "active" || h["health_score"] != 0.5 || len(e.events.Named("dripdrop.health.state_changed")) != 0 {
		t.Fatalf("score signal: %v", h)
	}
	// A forced rest: external_signal, then state_changed; the score is kept.
	h = e.must(200, "POST", path, f.key, map[string]any{"health_state": "resting", "source": "dashboard", "reason": "spam_trap"})
	if h["health_state"] != "resting" || h["health_score"] != 0.5 || h["resting_until"] == nil {
		t.Fatalf("rest signal: %v", h)
	}
	sig := e.events.Named("dripdrop.health.external_signal")
	sc := e.events.Named("dripdrop.health.state_changed")
	if len(sig) != 2 || sig[1]["health_state"] != "resting" || sig[1]["source"] != "dashboard" || len(sc) != 1 {
		t.Fatalf("events: signals %v, state_changed %v", sig, sc)
	}
	if keys := slices.Sorted(maps.Keys(sc[0])); !slices.Equal(keys, []string{"adapter_id", "from", "reason", "source", "tenant_key", "to"}) {
		t.Fatalf("state_changed keys %v", keys)
	}
	if sc[0]["from"] != "active" || sc[0]["to"] != "resting" || sc[0]["reason"] != "spam_trap" {
		t.Fatalf("state_changed %v", sc[0])
	}
	tr := h["transitions"].([]any)
	if len(tr) != 3 || tr[0].(map[string]any)["action"] != "health_state_changed" || tr[0].(map[string]any)["to"] != "resting" {
		t.Fatalf("transitions %v", tr)
	}
	if nt := h["next_transition"].(map[string]any); nt["to"] != "probing" || nt["at"] != h["resting_until"] {
		t.Fatalf("next transition %v", nt)
	}
	// A resting adapter takes no new pins.
	r := e.do("POST", "/v1/enrollments", f.key, map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": "new@acme.example.com"}})
	assertProblem(t, r, 409, "pool_exhausted", "*")
	// Back to active, omitted score kept.
	h = e.must(200, "POST", path, f.key, map[string]any{"health_state": "active", "source": "dashboard"})
	if h["health_state"] != "active" || h["resting_until"] != nil || h["health_score"] != 0.5 {
		t.Fatalf("resume signal: %v", h)
	}
	// Score 0: ineligible.
	e.must(200, "POST", path, f.key, map[string]any{"health_score": 0, "source": "dashboard"})
	assertProblem(t, e.do("POST", "/v1/enrollments", f.key, map[string]any{"sequence_key": "welcome", "contact": map[string]any{"email": "new@acme.example.com"}}), 409, "pool_exhausted", "*")

	// Another tenant's adapter is not found.
	other := e.tenant("other")
	assertProblem(t, e.do("GET", path, other, nil), 404, "not_found", "*")
	assertProblem(t, e.do("POST", path, other, map[string]any{"health_state": "resting", "source": "x"}), 404, "not_found", "*")
}

func TestVerifyAdapter(t *testing.T) {
	t.Parallel()
	sink, err := smtpsink.Start("127.0.0.1:0", smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	// The sink is on loopback, on a free port: allow both, as dev does.
	e := newEnvConfig(t, func(c *api.Config) { c.Guard = netguard.Guard{AllowPrivate: true, SMTPPorts: []int{sink.Port()}} })
	key := e.tenant("acme")
	a := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "Ada", "provider": "sink", "from_address": "ada@acme.example.com",
		"credentials": map[string]any{"host": "127.0.0.1", "port": sink.Port(), "tls": "none", "username": "ada", "password": "pw"}})
	path := "/v1/adapters/" + a["id"].(string) + "/verify"
	v := e.must(200, "POST", path, key, nil)
	var stages []string
	for _, s := range v["stages"].([]any) {
		st := s.(map[string]any)
		stages = append(stages, st["stage"].(string))
		if st["ok"] != true || st["duration_ms"] == nil || (st["stage"] != "connect" && (st["code"] == nil || st["reply"] == "")) {
			t.Fatalf("stage %v", st)
		}
	}
	if v["ok"] != true || !slices.Equal(stages, []string{"connect", "greeting", "ehlo", "auth", "quit"}) {
		t.Fatalf("verify: %v", v)
	}
	if len(sink.Messages()) != 0 || sink.AuthAttempts() != 1 {
		t.Fatal("verify sent something or did not authenticate")
	}
	// A wrong password: the AUTH stage fails with the server's 535.
	sink.SetAuth(func(string, string) error { return smtpsink.AuthFailed })
	v = e.must(200, "POST", path, key, nil)
	st := v["stages"].([]any)
	last := st[len(st)-1].(map[string]any)
	if v["ok"] != false || v["failed_stage"] != "auth" || last["stage"] != "auth" || last["code"] != float64(535) || last["reply"] != "5.7.8 Authentication credentials invalid" {
		t.Fatalf("verify with a wrong password: %v", v)
	}
	// Refused connection.
	sink.Close()
	v = e.must(200, "POST", path, key, nil)
	if v["ok"] != false || v["failed_stage"] != "connect" {
		t.Fatalf("verify against a closed port: %v", v)
	}
	// No credentials: 409.
	p := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "Plain", "provider": "sink", "from_address": "p@acme.example.com"})
	assertProblem(t, e.do("POST", "/v1/adapters/"+p["id"].(string)+"/verify", key, nil), 409, "invalid_state", "credentials")
}
