package ui_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/api/ui"
)

// tenantData is text only a signed-in acme page shows.
var tenantData = []string{"Alice mailbox acme", "Bob mailbox acme", "main pool acme", "Welcome acme", `class="tenant"`}

func hasTenantData(body string) bool {
	for _, s := range tenantData {
		if strings.Contains(body, s) {
			return true
		}
	}
	return false
}

// sessionCookie is the client's current session cookie value.
func (c *client) sessionCookie() string {
	c.t.Helper()
	u, _ := url.Parse(c.w.srv.URL + "/ui/")
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "dripdrop_session" {
			return ck.Value
		}
	}
	return ""
}

// withCookie is a fresh client that presents a given session cookie (a
// copy of a cookie kept after the server cleared it).
func (w *world) withCookie(value string) *client {
	c := w.client()
	u, _ := url.Parse(w.srv.URL + "/ui/")
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "dripdrop_session", Value: value, Path: "/ui/"}})
	return c
}

func TestSessionCookieNamesItsKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	keys := w.api("GET", "/v1/tenants/acme/keys", adminToken, nil, 200)["data"].([]any)
	keyID := keys[0].(map[string]any)["id"].(string)
	c := w.client()
	c.login(w.acme.key)
	parts := strings.Split(c.sessionCookie(), ".")
	if len(parts) != 5 || parts[0] != "YWNtZQ" || parts[1] != keyID {
		t.Fatalf("session cookie %q: want base64url(tenant).key-id.expiry.nonce.mac with key id %s", strings.Join(parts, "."), keyID)
	}
	// Another key id under the same signature is no session.
	parts[1] = "00000000-0000-7000-8000-000000000001"
	if p := w.withCookie(strings.Join(parts, ".")).get("/ui/"); p.status != http.StatusSeeOther || hasTenantData(p.body) {
		t.Fatalf("cookie with a swapped key id: %d", p.status)
	}
	// The cookie format before key binding (four parts) is no session.
	old := strings.Join([]string{parts[0], parts[2], parts[3], parts[4]}, ".")
	if p := w.withCookie(old).get("/ui/"); p.status != http.StatusSeeOther {
		t.Fatalf("four-part cookie: %d, want 303", p.status)
	}
}

func TestRevokedKeyEndsItsSessions(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// A second acme key; the first stays active.
	k := w.api("POST", "/v1/tenants/acme/keys", adminToken, map[string]any{"name": "laptop"}, 201)
	secret, id := k["key"].(string), k["id"].(string)

	revoked, kept := w.client(), w.client()
	if p := revoked.login(secret); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in with the second key: %d", p.status)
	}
	kept.login(w.acme.key)
	home := revoked.get("/ui/")
	if home.status != 200 || !strings.Contains(home.body, "Alice mailbox acme") {
		t.Fatalf("overview before revocation: %d", home.status)
	}
	token := revoked.csrf()
	cookie := revoked.sessionCookie()

	w.api("DELETE", "/v1/tenants/acme/keys/"+id, adminToken, nil, 200)
	w.api("GET", "/v1/adapters", secret, nil, http.StatusUnauthorized)

	// The next page request goes to sign-in, with no tenant data, and the
	// cookie is cleared.
	p := revoked.get("/ui/adapters")
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Fatalf("page after revocation: %d %q, want 303 to /ui/login", p.status, p.header.Get("Location"))
	}
	if hasTenantData(p.body) {
		t.Fatalf("page after revocation carries tenant data: %s", p.body)
	}
	if ck := p.header.Get("Set-Cookie"); !strings.Contains(ck, "dripdrop_session=") || !strings.Contains(ck, "Max-Age=0") {
		t.Errorf("revoked session's cookie not cleared: %q", ck)
	}
	// A copy of the cookie kept by the client is no better: every page,
	// the feed and actions refuse it.
	replay := w.withCookie(cookie)
	for _, path := range []string{"/ui/", "/ui/adapters", "/ui/adapters/" + w.acme.adapterA, "/ui/pools/" + w.acme.pool,
		"/ui/sequences/" + w.acme.seq, "/ui/enrollments/" + w.acme.enrollments[1]} {
		p := replay.get(path)
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" || hasTenantData(p.body) {
			t.Errorf("GET %s with the revoked session: %d %q", path, p.status, p.header.Get("Location"))
		}
	}
	if p := replay.get("/ui/feed"); p.status != http.StatusUnauthorized || hasTenantData(p.body) {
		t.Errorf("feed with the revoked session: %d, want 401", p.status)
	}
	p = w.withCookie(cookie).do("POST", "/ui/adapters/"+w.acme.adapterA+"/rest", url.Values{"csrf": {token}})
	if p.status != http.StatusUnauthorized || hasTenantData(p.body) {
		t.Errorf("action with the revoked session: %d, want 401", p.status)
	}
	if got := w.healthState("acme", w.acme.adapterA); got != "ramping" {
		t.Errorf("the revoked session changed the adapter: %s", got)
	}
	// The sign-in form shows (no redirect loop back to /ui/).
	if p := w.withCookie(cookie).get("/ui/login"); p.status != 200 || !strings.Contains(p.body, `name="api_key"`) {
		t.Errorf("login page with the revoked session: %d", p.status)
	}

	// The session of the other, unrevoked key keeps working.
	if p := kept.get("/ui/adapters"); p.status != 200 || !strings.Contains(p.body, "Alice mailbox acme") {
		t.Fatalf("session of the unrevoked key: %d", p.status)
	}
	// Signing in again with the revoked key is refused.
	if p := w.client().login(secret); p.status != http.StatusUnauthorized {
		t.Fatalf("sign-in with the revoked key: %d, want 401", p.status)
	}
}

func TestRevokedKeyEndsAnOpenFeed(t *testing.T) {
	// Not parallel: ui.SetFeedKeyCheck changes a package-level interval every open feed reads.
	t.Cleanup(ui.SetFeedKeyCheck(50 * time.Millisecond))
	w := newWorld(t)
	k := w.api("POST", "/v1/tenants/acme/keys", adminToken, map[string]any{"name": "feed"}, 201)
	c := w.client()
	c.login(k["key"].(string))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/ui/feed", nil)
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("feed: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
		}
		ended <- sc.Err()
	}()
	select {
	case <-ended:
		t.Fatal("the feed ended before the key was revoked")
	case <-time.After(300 * time.Millisecond):
	}
	w.api("DELETE", "/v1/tenants/acme/keys/"+k["id"].(string), adminToken, nil, 200)
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("feed ended with %v, want a clean end of stream", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the feed of a revoked key's session is still open 5 s after the revocation")
	}
}
