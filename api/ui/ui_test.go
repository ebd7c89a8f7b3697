package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestSignInSessionCookieAndLogout(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client()
	if p := c.get("/ui/"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Fatalf("signed out /ui/: %d %q, want 303 to /ui/login", p.status, p.header.Get("Location"))
	}
	if p := c.get("/ui/login"); p.status != 200 || !strings.Contains(p.body, `name="api_key"`) {
		t.Fatalf("login page: %d", p.status)
	}
	p := c.login("dd_not_a_key")
	if p.status != http.StatusUnauthorized || p.header.Get("Set-Cookie") != "" || !strings.Contains(p.body, "not accepted") {
		t.Fatalf("bad key: %d cookie %q", p.status, p.header.Get("Set-Cookie"))
	}
	p = c.login(w.acme.key)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in: %d %q", p.status, p.header.Get("Location"))
	}
	ck := p.header.Get("Set-Cookie")
	for _, want := range []string{"dripdrop_session=", "HttpOnly", "SameSite=Strict", "Path=/ui/", "Max-Age=43200"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie over plain http is Secure: %q", ck)
	}
	if strings.Contains(ck, w.acme.key) || strings.Contains(ck, strings.SplitN(w.acme.key, "_", 2)[1]) {
		t.Fatalf("the session cookie carries the API key: %q", ck)
	}
	home := c.get("/ui/")
	if home.status != 200 || !strings.Contains(home.body, "Alice mailbox acme") || !strings.Contains(home.body, "acme") {
		t.Fatalf("overview after sign-in: %d\n%s", home.status, home.body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "Cache-Control"} {
		if home.header.Get(h) == "" {
			t.Errorf("overview lacks %s", h)
		}
	}
	// A tampered cookie (another tenant's name, same signature) is no session.
	u, _ := url.Parse(w.srv.URL + "/ui/")
	cookies := c.http.Jar.Cookies(u)
	parts := strings.Split(cookies[0].Value, ".")
	parts[0] = "b3RoZXI" // base64url("other")
	forged := w.client()
	forged.http.Jar.SetCookies(u, []*http.Cookie{{Name: "dripdrop_session", Value: strings.Join(parts, "."), Path: "/ui/"}})
	if p := forged.get("/ui/adapters"); p.status != http.StatusSeeOther {
		t.Fatalf("forged session cookie accepted: %d", p.status)
	}
	// Logout needs the CSRF token too, then clears the cookie.
	if p := c.do("POST", "/ui/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Fatalf("logout without CSRF token: %d, want 403", p.status)
	}
	p = c.do("POST", "/ui/logout", url.Values{"csrf": {c.csrf()}})
	if p.status != http.StatusSeeOther || !strings.Contains(p.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %q", p.status, p.header.Get("Set-Cookie"))
	}
	if p := c.get("/ui/"); p.status != http.StatusSeeOther {
		t.Fatalf("after logout /ui/: %d, want 303", p.status)
	}
}

func TestCSRFRejectsActions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client()
	c.login(w.acme.key)
	token := c.csrf()
	other := w.client()
	other.login(w.other.key)
	otherToken := other.csrf()
	path := "/ui/adapters/" + w.acme.adapterA + "/rest"
	for name, p := range map[string]page{
		"no token":                 c.do("POST", path, url.Values{}),
		"wrong token":              c.do("POST", path, url.Values{"csrf": {"x" + token}}),
		"another session's token":  c.do("POST", path, url.Values{"csrf": {otherToken}}),
		"cross-site Origin":        c.do("POST", path, url.Values{"csrf": {token}}, "Origin", "https://evil.example"),
		"no session at all":        w.client().do("POST", path, url.Values{"csrf": {token}}),
		"cross-site sign-in":       w.client().do("POST", "/ui/login", url.Values{"api_key": {w.acme.key}}, "Origin", "https://evil.example"),
		"cross-site verify action": c.do("POST", "/ui/adapters/"+w.acme.adapterA+"/verify", url.Values{}, "Origin", "https://evil.example"),
	} {
		if p.status != http.StatusForbidden && p.status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 403 or 401", name, p.status)
		}
		if p.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: set a cookie", name)
		}
	}
	if got := w.healthState("acme", w.acme.adapterA); got != "ramping" {
		t.Fatalf("a rejected action changed the adapter: %s", got)
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client()
	c.login(w.other.key)
	for _, path := range []string{
		"/ui/adapters/" + w.acme.adapterA,
		"/ui/pools/" + w.acme.pool,
		"/ui/sequences/" + w.acme.seq,
		"/ui/enrollments/" + w.acme.enrollments[0],
		"/ui/adapters/not-a-uuid",
		"/ui/nowhere",
	} {
		p := c.get(path)
		if p.status != http.StatusNotFound {
			t.Errorf("GET %s as another tenant: %d, want 404", path, p.status)
		}
		if strings.Contains(p.body, "Alice mailbox acme") || strings.Contains(p.body, "lead-acme") {
			t.Errorf("GET %s leaks the other tenant's data", path)
		}
	}
	token := c.csrf()
	for _, action := range []string{"rest", "resume", "verify"} {
		p := c.do("POST", "/ui/adapters/"+w.acme.adapterA+"/"+action, url.Values{"csrf": {token}})
		if p.status != http.StatusNotFound {
			t.Errorf("POST %s on another tenant's adapter: %d, want 404", action, p.status)
		}
	}
	if got := w.healthState("acme", w.acme.adapterA); got != "ramping" {
		t.Fatalf("another tenant changed the adapter: %s", got)
	}
	// Lists show only the session's tenant.
	for _, path := range []string{"/ui/", "/ui/adapters", "/ui/pools", "/ui/sequences"} {
		p := c.get(path)
		if p.status != 200 || strings.Contains(p.body, "acme") || !strings.Contains(p.body, "other") {
			t.Errorf("GET %s as other: %d, leaks or lacks data", path, p.status)
		}
	}
}

func TestRestResumeAreHealthSignals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client()
	c.login(w.acme.key)
	token := c.csrf()
	path := "/ui/adapters/" + w.acme.adapterA
	p := c.do("POST", path+"/rest", url.Values{"csrf": {token}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), path+"?flash=") {
		t.Fatalf("rest: %d %q", p.status, p.header.Get("Location"))
	}
	if got := w.healthState("acme", w.acme.adapterA); got != "resting" {
		t.Fatalf("after rest: %s", got)
	}
	rows := dbtest.Query(t, w.dbURL, `SELECT actor, data->>'reason' FROM audit_log WHERE tenant_key = 'acme' AND entity_id = $1::uuid AND action = 'health_state_changed' ORDER BY created_at DESC LIMIT 1`, w.acme.adapterA)
	if rows[0][0] != "dashboard" || rows[0][1] != "operator_rest" {
		t.Fatalf("transition audit: %v", rows[0])
	}
	if p := c.get(path); !strings.Contains(p.body, "operator_rest") || !strings.Contains(p.body, `data-testid="state">resting`) {
		t.Fatalf("adapter page after rest: %s", p.body)
	}
	c.do("POST", path+"/resume", url.Values{"csrf": {token}})
	if got := w.healthState("acme", w.acme.adapterA); got != "active" {
		t.Fatalf("after resume: %s", got)
	}
	// Verify reports each stage with the adapter's own settings.
	p = c.do("POST", path+"/verify", url.Values{"csrf": {token}})
	if p.status != 200 || !strings.Contains(p.body, "passed") || !strings.Contains(p.body, "Authentication successful for ali@acme.example.com") {
		t.Fatalf("verify: %d\n%s", p.status, p.body)
	}
}

func TestSignInFailuresAreLimited(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client()
	for i := 1; i <= 20; i++ {
		if p := c.login("dd_wrong.key"); p.status != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i, p.status)
		}
	}
	p := c.login("dd_wrong.key")
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed sign-ins") {
		t.Fatalf("21st failed sign-in: %d Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
	// The limit is shared with the API's bearer authentication.
	req, _ := http.NewRequest("GET", w.srv.URL+"/v1/adapters", nil)
	req.Header.Set("Authorization", "Bearer dd_wrong.key")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("API after the dashboard's failures: %d, want 429", res.StatusCode)
	}
}

func TestFeedNeedsASession(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	if p := w.client().get("/ui/feed"); p.status != http.StatusUnauthorized {
		t.Fatalf("feed without a session: %d, want 401", p.status)
	}
}
