package api_test

import (
	"testing"
)

func TestAdapterIMAPSettingsAndSyncRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	creds := map[string]any{"host": "smtp.gmail.com", "port": 587, "username": "ada@acme.example.com", "password": "app-pw"}
	a := e.must(201, "POST", "/v1/adapters", key, map[string]any{"name": "Ada", "provider": "smtp", "from_address": "ada@acme.example.com",
		"credentials": creds, "imap": map[string]any{"preset": "google"}})
	im, ok := a["imap"].(map[string]any)
	if !ok || im["host"] != "imap.gmail.com" || im["port"] != float64(993) || im["tls"] != "tls" || im["interval_seconds"] != float64(60) || im["enabled"] != true {
		t.Fatalf("imap settings from the google preset: %v", a["imap"])
	}
	if f := im["folders"].([]any); len(f) != 2 || f[0] != "INBOX" || f[1] != `\Junk` {
		t.Fatalf("default folders %v", f)
	}
	id := a["id"].(string)
	if got := e.must(200, "GET", "/v1/adapters/"+id, key, nil)["imap"].(map[string]any); got["host"] != "imap.gmail.com" {
		t.Fatalf("GET adapter imap %v", got)
	}
	st := e.must(200, "GET", "/v1/adapters/"+id+"/sync", key, nil)
	if st["state"] != "pending" || st["last_success_at"] != nil || st["last_error"] != nil || len(st["folders"].([]any)) != 0 {
		t.Fatalf("new sync state %v", st)
	}
	req := e.must(202, "POST", "/v1/adapters/"+id+"/sync", key, nil)
	if req["sync_requested_at"] == nil {
		t.Fatalf("sync now: %v", req)
	}

	// Microsoft preset with an explicit interval; a PATCH replaces the
	// settings whole.
	p := e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"imap": map[string]any{"preset": "microsoft", "interval_seconds": 120, "folders": []string{"INBOX"}}})
	if im := p["imap"].(map[string]any); im["host"] != "outlook.office365.com" || im["interval_seconds"] != float64(120) || len(im["folders"].([]any)) != 1 {
		t.Fatalf("patched imap %v", im)
	}
	// Rejected inputs change nothing.
	for _, c := range []struct {
		body  map[string]any
		code  string
		field string
	}{
		{map[string]any{"imap": map[string]any{"host": "imap.acme.example.com", "tls": "ssl"}}, "invalid_value", "imap.tls"},
		{map[string]any{"imap": map[string]any{"preset": "yahoo"}}, "invalid_value", "imap.preset"},
		{map[string]any{"imap": map[string]any{"port": 993}}, "required", "imap.host"},
		{map[string]any{"imap": map[string]any{"host": "imap.acme.example.com", "interval_seconds": 5}}, "out_of_range", "imap.interval_seconds"},
		{map[string]any{"imap": map[string]any{"host": "imap.acme.example.com", "folders": []string{"INBOX", "inbox"}}}, "invalid_value", "imap.folders"},
		{map[string]any{"imap": map[string]any{"host": "imap.acme.example.com", "folders": []string{`\Trash`}}}, "invalid_value", "imap.folders"},
		{map[string]any{"imap": map[string]any{"host": "imap.acme.example.com", "colour": "blue"}}, "invalid_value", "imap"},
		{map[string]any{"imap": map[string]any{"host": "127.0.0.1"}}, "forbidden_target", "imap.host"},
		{map[string]any{"imap": map[string]any{"host": "mail.internal"}}, "forbidden_target", "imap.host"},
	} {
		assertProblem(t, e.do("PATCH", "/v1/adapters/"+id, key, c.body), 422, c.code, c.field)
	}
	if im := e.must(200, "GET", "/v1/adapters/"+id, key, nil)["imap"].(map[string]any); im["host"] != "outlook.office365.com" {
		t.Fatalf("a rejected PATCH changed imap: %v", im)
	}
	// Disabled: sync now is refused and changes nothing.
	e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"imap": map[string]any{"preset": "microsoft", "enabled": false}})
	before := e.must(200, "GET", "/v1/adapters/"+id+"/sync", key, nil)
	if before["state"] != "disabled" {
		t.Fatalf("state %v", before["state"])
	}
	assertProblem(t, e.do("POST", "/v1/adapters/"+id+"/sync", key, nil), 409, "invalid_state", "imap.enabled")
	if after := e.must(200, "GET", "/v1/adapters/"+id+"/sync", key, nil); after["sync_requested_at"] != before["sync_requested_at"] {
		t.Fatal("a refused sync request changed the state")
	}
	// null removes the settings: the sync routes answer 404.
	if p := e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"imap": nil}); p["imap"] != nil {
		t.Fatalf("imap after null: %v", p["imap"])
	}
	assertProblem(t, e.do("GET", "/v1/adapters/"+id+"/sync", key, nil), 404, "not_found", "imap")
	assertProblem(t, e.do("POST", "/v1/adapters/"+id+"/sync", key, nil), 404, "not_found", "imap")
	// Another tenant sees nothing.
	other := e.tenant("beta")
	assertProblem(t, e.do("GET", "/v1/adapters/"+id+"/sync", other, nil), 404, "not_found", "*")
}
