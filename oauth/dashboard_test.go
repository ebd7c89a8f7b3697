package oauth_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop"
)

// The dashboard's adapter page shows the auth kind and the token state
// (never a token), and its Connect Google / Connect Microsoft / Reconnect
// buttons start the connect flow.
func TestDashboardConnectButtons(t *testing.T) {
	t.Parallel()
	r := newRig(t, "")
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (int, http.Header, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, r.api.URL+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		r.keep(b)
		return res.StatusCode, res.Header, string(b)
	}
	if st, _, _ := do("POST", "/ui/login", url.Values{"api_key": {r.APIKey}}); st != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", st)
	}
	csrfRE := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	page := func(id string) string {
		t.Helper()
		st, _, b := do("GET", "/ui/adapters/"+id, nil)
		if st != 200 {
			t.Fatalf("adapter page: %d\n%s", st, b)
		}
		return b
	}
	id := r.adapter.String()
	p := page(id)
	for _, want := range []string{`data-testid="auth">oauth2<`, `data-testid="token-state">not_connected<`, `>Connect mailbox</button>`} {
		if !strings.Contains(p, want) {
			t.Fatalf("unconnected oauth2 adapter page lacks %s", want)
		}
	}
	csrf := csrfRE.FindStringSubmatch(p)[1]
	st, h, _ := do("POST", "/ui/adapters/"+id+"/connect", url.Values{"csrf": {csrf}, "app_id": {r.app.ID.String()}})
	if st != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), r.as.AuthURL()+"?") {
		t.Fatalf("connect: %d %q", st, h.Get("Location"))
	}
	if cst, page, _ := r.browse(h.Get("Location")); cst != 200 || !strings.Contains(page, "Mailbox connected") {
		t.Fatalf("callback after the dashboard's connect: %d\n%s", cst, page)
	}
	p = page(id)
	if !strings.Contains(p, `data-testid="token-state">connected<`) || !strings.Contains(p, `>Reconnect</button>`) {
		t.Fatal("a connected adapter's page shows no connected state or no Reconnect button")
	}
	// Verify from the dashboard runs the OAuth2 check: a token stage first.
	p = func() string {
		_, _, b := do("POST", "/ui/adapters/"+id+"/verify", url.Values{"csrf": {csrf}})
		return b
	}()
	if !strings.Contains(p, "<td>token</td><td>ok</td>") || !strings.Contains(p, "passed") {
		t.Fatalf("dashboard verify of an oauth2 adapter:\n%s", p)
	}

	// A password adapter gets Connect Google / Connect Microsoft for the
	// tenant's apps; Connect Google switches it to oauth2 on Gmail's server.
	for _, in := range []map[string]any{
		{"provider": "google", "client_id": "g-client.apps.googleusercontent.com", "client_secret": "g-secret"},
		{"provider": "microsoft", "client_id": "ms-client", "client_secret": "ms-secret", "microsoft_tenant": "contoso.onmicrosoft.com"},
	} {
		r.must(201, "POST", "/v1/oauth/apps", in)
	}
	name, from, smtp := "Bea", "bea@acme.example.com", "smtp"
	pw, err := r.Store.CreateAdapter(context.Background(), r.Tenant, dripdrop.AdapterInput{Name: &name, Provider: &smtp, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "smtp.acme.example.com", Port: 587, Username: from, Password: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	p = page(pw.ID.String())
	if !strings.Contains(p, `data-testid="auth">password<`) || !strings.Contains(p, ">Connect Google</button>") || !strings.Contains(p, ">Connect Microsoft</button>") {
		t.Fatal("a password adapter's page lacks Connect Google / Connect Microsoft")
	}
	apps := regexp.MustCompile(`name="app_id" value="([^"]+)">\s*<button type="submit" class="connect">Connect Google<`).FindStringSubmatch(p)
	if apps == nil {
		t.Fatal("no Connect Google form")
	}
	st, h, _ = do("POST", "/ui/adapters/"+pw.ID.String()+"/connect", url.Values{"csrf": {csrf}, "app_id": {apps[1]}})
	loc := h.Get("Location")
	if st != http.StatusSeeOther || !strings.HasPrefix(loc, "https://accounts.google.com/o/oauth2/auth?") ||
		!strings.Contains(loc, "code_challenge_method=S256") || !strings.Contains(loc, "access_type=offline") || !strings.Contains(loc, "prompt=consent") ||
		!strings.Contains(loc, "redirect_uri="+url.QueryEscape(r.api.URL+"/oauth/callback")) {
		t.Fatalf("Connect Google: %d %s", st, loc)
	}
	a, err := r.Store.GetAdapter(context.Background(), r.Tenant, pw.ID)
	if err != nil || a.Auth != dripdrop.AuthOAuth2 || a.OAuth.Provider != "google" {
		t.Fatalf("after Connect Google: %+v %v", a, err)
	}
	creds, _ := r.Store.AdapterCredentials(context.Background(), r.Tenant, pw.ID)
	if creds.Host != "smtp.gmail.com" || creds.Port != 587 || creds.Password != "" {
		t.Fatalf("after Connect Google the adapter logs in to %s:%d (password kept: %v)", creds.Host, creds.Port, creds.Password != "")
	}
	r.assertNoTokenLeaks()
}
