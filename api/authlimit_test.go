package api_test

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"

	"github.com/dripdrop/dripdrop/api"
)

// More than 20 failed authentications a minute from one address → 429 with
// Retry-After, for tenant keys and the admin token; successful requests from
// the same address are never limited and other addresses are unaffected.
func TestFailedAuthenticationLimit(t *testing.T) {
	t.Parallel()
	e := newEnvConfig(t, func(c *api.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	})
	key := e.tenant("acme")
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }

	wrong := "dd_acme.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for i := 1; i <= 20; i++ {
		assertProblem(t, e.do("GET", "/v1/adapters", wrong, nil, from("203.0.113.7")...), 401, "unauthorized", "")
		if i%5 == 0 { // interleaved successes neither count nor get limited
			e.must(200, "GET", "/v1/adapters", key, nil)
		}
	}
	for _, r := range []resp{
		e.do("GET", "/v1/adapters", wrong, nil, from("203.0.113.7")...),
		e.do("GET", "/v1/adapters", "", nil, from("203.0.113.7")...),
		e.do("POST", "/v1/tenants", "wrong-admin-token", map[string]any{"tenant_key": "x", "name": "x"}, from("203.0.113.7")...),
	} {
		assertProblem(t, r, 429, "too_many_auth_failures", "")
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 60 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	// The limited address still gets through with a valid key and the admin token.
	for i := 0; i < 30; i++ {
		if r := e.do("GET", "/v1/adapters", key, nil, from("203.0.113.7")...); r.status != 200 {
			t.Fatalf("a valid key from a limited address: %d %s", r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/tenants/acme/keys", adminToken, nil, from("203.0.113.7")...); r.status != 200 {
		t.Fatalf("the admin token from a limited address: %d %s", r.status, r.body)
	}
	// Another address has its own count; another /64 too, the same /64 not.
	assertProblem(t, e.do("GET", "/v1/adapters", wrong, nil, from("198.51.100.1")...), 401, "unauthorized", "")
	for i := 0; i < 21; i++ {
		e.do("GET", "/v1/adapters", wrong, nil, from(fmt.Sprintf("2001:db8:1:2::%x", i+1))...)
	}
	assertProblem(t, e.do("GET", "/v1/adapters", wrong, nil, from("2001:db8:1:2:ffff::1")...), 429, "too_many_auth_failures", "")
	assertProblem(t, e.do("GET", "/v1/adapters", wrong, nil, from("2001:db8:1:3::1")...), 401, "unauthorized", "")
	// The admin token counts the same way.
	for i := 0; i < 20; i++ {
		assertProblem(t, e.do("GET", "/v1/tenants/acme/keys", "guess-"+strconv.Itoa(i), nil, from("192.0.2.50")...), 401, "unauthorized", "")
	}
	assertProblem(t, e.do("GET", "/v1/tenants/acme/keys", "guess-21", nil, from("192.0.2.50")...), 429, "too_many_auth_failures", "")
}

// Without a trusted proxy, X-Forwarded-For is ignored: the client cannot
// dodge the limit by inventing addresses.
func TestFailedAuthenticationLimitIgnoresForwardedForByDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < 20; i++ {
		assertProblem(t, e.do("GET", "/v1/adapters", "nope", nil, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)), 401, "unauthorized", "")
	}
	assertProblem(t, e.do("GET", "/v1/adapters", "nope", nil, "X-Forwarded-For", "198.51.100.99"), 429, "too_many_auth_failures", "")
}
