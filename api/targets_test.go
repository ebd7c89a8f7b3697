package api_test

import (
	"testing"

	"github.com/google/uuid"
)

// Every form of a destination on the operator's network is refused on
// create and patch with 422 forbidden_target and the field; nothing changes.
func TestAdapterForbiddenTargets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	hosts := []string{
		"169.254.169.254", "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "localhost", "LocalHost.", "2130706433",
		"0x7f000001", "0177.0.0.1", "127.1", "metadata.google.internal", "metadata", "::1", "[::1]", "::ffff:127.0.0.1",
		"::ffff:169.254.169.254", "fe80::1", "fd00::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "100.100.100.200",
		"redis.default.svc.cluster.local",
	}
	body := func(host string, port int) map[string]any {
		return map[string]any{"name": "X", "provider": "smtp", "from_address": "x@acme.example.com",
			"credentials": map[string]any{"host": host, "port": port}}
	}
	for _, h := range hosts {
		assertProblem(t, e.do("POST", "/v1/adapters", key, body(h, 587)), 422, "forbidden_target", "credentials.host")
	}
	for _, p := range []int{22, 80, 443, 3306, 5432, 6379, 11211} {
		assertProblem(t, e.do("POST", "/v1/adapters", key, body("smtp.acme.example.com", p)), 422, "forbidden_target", "credentials.port")
	}
	// A malformed port is still out_of_range, not forbidden_target.
	assertProblem(t, e.do("POST", "/v1/adapters", key, body("smtp.acme.example.com", 70000)), 422, "out_of_range", "credentials.port")
	if list := e.must(200, "GET", "/v1/adapters", key, nil); len(list["data"].([]any)) != 0 {
		t.Fatalf("refused creates left adapters behind: %v", list)
	}

	a := e.must(201, "POST", "/v1/adapters", key, body("smtp.acme.example.com", 465))
	id := a["id"].(string)
	for _, h := range hosts {
		assertProblem(t, e.do("PATCH", "/v1/adapters/"+id, key, map[string]any{"credentials": map[string]any{"host": h, "port": 25}}), 422, "forbidden_target", "credentials.host")
	}
	assertProblem(t, e.do("PATCH", "/v1/adapters/"+id, key, map[string]any{"credentials": map[string]any{"host": "smtp.acme.example.com", "port": 6379}}), 422, "forbidden_target", "credentials.port")
	for _, p := range []int{25, 465, 587, 2525} {
		e.must(200, "PATCH", "/v1/adapters/"+id, key, map[string]any{"credentials": map[string]any{"host": "8.8.8.8", "port": p}})
	}
	creds, err := e.store.AdapterCredentials(t.Context(), "acme", uuid.MustParse(id))
	if err != nil || creds.Host != "8.8.8.8" || creds.Port != 2525 {
		t.Fatalf("stored credentials %+v %v", creds, err)
	}
}
