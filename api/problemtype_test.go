package api_test

import (
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop"
)

// TestProblemTypesResolve: every problem's type is a page the engine
// serves, whose title describes the problem type; a 415 names the header.
func TestProblemTypesResolve(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	r := e.do("POST", "/v1/adapters", key, `{"name":"x"}`, "Content-Type", "application/x-www-form-urlencoded")
	assertProblem(t, r, 415, "unsupported_media_type", "Content-Type")
	p := r.json(t)
	if !strings.Contains(p["detail"].(string), "Content-Type: application/json") {
		t.Fatalf("415 does not name the header to send: %v", p["detail"])
	}
	if p["title"] != dripdrop.ErrorTitle("unsupported_media_type") || p["title"] == "Unsupported Media Type" {
		t.Fatalf("title %v does not describe the problem type", p["title"])
	}
	page := e.do("GET", p["type"].(string), "", nil)
	if page.status != 200 || !strings.Contains(string(page.body), "Content-Type: application/json") {
		t.Fatalf("GET %v: %d\n%s", p["type"], page.status, page.body)
	}
	for _, code := range dripdrop.ErrorCodes() {
		r := e.do("GET", "/errors/"+code, "", nil)
		if r.status != 200 || !strings.Contains(string(r.body), dripdrop.ErrorTitle(code)) {
			t.Errorf("GET /errors/%s: %d", code, r.status)
		}
	}
	assertProblem(t, e.do("GET", "/errors/no_such_code", "", nil), 404, "not_found", "")
}
