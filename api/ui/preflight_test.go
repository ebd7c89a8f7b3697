package ui_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/preflight/dnsresolver"
	"github.com/dripdrop/dripdrop/preflight/dnstest"
)

// The adapter page shows its From domain's preflight badge with each
// check's finding and DNS evidence.
func TestAdapterPageDomainBadge(t *testing.T) {
	t.Parallel()
	zone := dnstest.Start(t,
		`broken.test. 300 IN TXT "v=spf1 +all"`,
		`broken.test. 300 IN MX 0 .`,
	)
	r := &dnsresolver.Resolver{Servers: []string{zone.Addr}, Timeout: 300 * time.Millisecond}
	k := testkit.NewWorld(t, testkit.SystemClock(), testkit.WithoutTenant(), testkit.WithStoreOptions(func(o *db.Options) { o.Resolver = r }))
	srv := httptest.NewServer(api.New(api.Config{Store: k.Store, AdminToken: adminToken, DashboardKey: []byte("a dashboard key of at least 32 bytes")}))
	t.Cleanup(srv.Close)
	w := &world{t: t, dbURL: k.URL, store: k.Store, srv: srv}
	ctx := context.Background()
	_, key, err := k.Store.CreateTenant(ctx, "badge", "")
	if err != nil {
		t.Fatal(err)
	}
	name, provider, from := "Broken", "smtp", "x@broken.test"
	a, err := k.Store.CreateAdapter(ctx, "badge", dripdrop.AdapterInput{Name: &name, Provider: &provider, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "relay.example.com", Port: 587}, ProviderCaps: map[string]int{"microsoft": 20}})
	if err != nil {
		t.Fatal(err)
	}
	c := w.client()
	c.login(key.Secret)
	p := c.get("/ui/adapters/" + a.ID.String())
	if p.status != 200 || !strings.Contains(p.body, `data-testid="domain-status">not checked yet`) {
		t.Fatalf("before the check: %d\n%s", p.status, p.body)
	}
	if _, err := k.Store.CheckDomain(ctx, "badge", "broken.test", db.DomainCheckInput{}); err != nil {
		t.Fatal(err)
	}
	p = c.get("/ui/adapters/" + a.ID.String())
	for _, want := range []string{
		`<span class="badge preflight-fail" data-testid="domain-status">fail</span>`,
		`<code>spf_pass_all</code>`, `<code>mx_null</code>`, `<code>dmarc_missing</code>`,
		`<code>v=spf1 &#43;all</code>`, // the evidence: the record as published
		`at most 20 a day to microsoft recipients (provider_cap)`,
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("adapter page lacks %s", want)
		}
	}
}
