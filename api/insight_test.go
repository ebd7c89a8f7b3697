package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestExplainAndCapacity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	dbtest.Exec(t, e.dbURL, `UPDATE adapters SET daily_cap = 10, min_gap_seconds = 90, last_send_at = now() WHERE id = $1::uuid`, f.adapterA)
	dbtest.Exec(t, e.dbURL, `INSERT INTO adapter_daily_usage (tenant_key, adapter_id, day, sequence_version_id, sent)
		SELECT 'acme', $1::uuid, (now() AT TIME ZONE 'UTC')::date, v.id, 4 FROM sequence_versions v WHERE v.sequence_id = $2::uuid`, f.adapterA, f.seq)
	e.must(200, "PUT", "/v1/sequences/"+f.seq+"/versions/1/budgets/"+f.adapterA, f.key, map[string]any{"max_share_pct": 50})
	c := e.must(200, "GET", "/v1/adapters/"+f.adapterA+"/capacity", f.key, nil)
	if c["effective_cap"] != float64(10) || c["sent"] != float64(4) || c["remaining"] != float64(6) || c["timezone"] != "UTC" {
		t.Fatalf("capacity: %v", c)
	}
	seqs := c["sequences"].([]any)
	if len(seqs) != 1 || seqs[0].(map[string]any)["share_cap"] != float64(5) || seqs[0].(map[string]any)["sequence_key"] != "welcome" {
		t.Fatalf("capacity shares: %v", seqs)
	}
	ex := e.must(200, "GET", "/v1/enrollments/"+f.enrollment+"/explain", f.key, nil)
	verdicts := ex["verdicts"].([]any)
	if len(verdicts) != 9 {
		t.Fatalf("explain: %d verdicts, want 9: %v", len(verdicts), ex)
	}
	binding := ex["binding"].(map[string]any)
	// 4 sent of a 5-message share: the binding policy is the 90 s gap, unless
	// the default Monday–Friday window is closed right now.
	if p := binding["policy"]; p != "min_gap" && p != "send_window" {
		t.Fatalf("binding %v", binding)
	}
	next, err := time.Parse(time.RFC3339Nano, ex["next_eligible_at"].(string))
	if err != nil || !next.After(time.Now()) {
		t.Fatalf("next_eligible_at %v", ex["next_eligible_at"])
	}
	for _, v := range verdicts {
		if v.(map[string]any)["inputs"] == nil {
			t.Fatalf("verdict without inputs: %v", v)
		}
	}
}

func TestSpintaxPreview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("acme")
	p := e.must(200, "POST", "/v1/spintax/preview", key, map[string]any{"template": "{Hi|Hello} {{first_name|there}}, {a|b||c}", "n": 50, "vars": map[string]any{"first_name": "Ada"}})
	if p["variants"] != float64(6) || p["distinct"] != float64(6) || len(p["renderings"].([]any)) != 50 || len(p["warnings"].([]any)) != 1 || len(p["errors"].([]any)) != 0 {
		t.Fatalf("preview: %v", p)
	}
	bad := e.must(200, "POST", "/v1/spintax/preview", key, map[string]any{"template": "{Hi|Hello"})
	errs := bad["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["reason"] != "unbalanced_braces" || errs[0].(map[string]any)["offset"] != float64(0) {
		t.Fatalf("malformed preview: %v", bad)
	}
	missing := e.must(200, "POST", "/v1/spintax/preview", key, map[string]any{"template": "Hi {{first_name}}"})
	if errs := missing["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["code"] != "missing_variable" {
		t.Fatalf("missing variable preview: %v", missing)
	}
	assertProblem(t, e.do("POST", "/v1/spintax/preview", key, map[string]any{"template": "x", "n": 0}), 422, "out_of_range", "n")
}

func TestOneClickUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	tok := dripdrop.UnsubscribeToken(testUnsubKey, "acme", mustParse(t, f.enrollment))
	if r := e.do("GET", "/u/"+tok, "", nil); r.status != 200 || !strings.Contains(string(r.body), `method="post"`) {
		t.Fatalf("confirmation page: %d %s", r.status, r.body)
	}
	for i := 0; i < 2; i++ { // repeats are harmless
		e.must(200, "POST", "/u/"+tok, "", nil)
	}
	en := e.must(200, "GET", "/v1/enrollments/"+f.enrollment, f.key, nil)
	if en["state"] != "stopped" || en["stop_reason"] != "unsubscribed" {
		t.Fatalf("after unsubscribe: %v", en)
	}
	if sup, _ := e.store.IsSuppressed(t.Context(), "acme", "lead@acme.example.com"); !sup {
		t.Fatal("address not suppressed")
	}
	assertProblem(t, e.do("POST", "/u/"+tok[:len(tok)-3]+"abc", "", nil), 404, "not_found", "")
	forged := dripdrop.UnsubscribeToken([]byte("some other key of 32 bytes!!!!!!"), "acme", mustParse(t, f.enrollment))
	assertProblem(t, e.do("POST", "/u/"+forged, "", nil), 404, "not_found", "")
}

// The /u/ responses carry the security headers, errors included, and the
// token reveals neither the tenant nor the enrollment.
func TestUnsubscribePageSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	tok := dripdrop.UnsubscribeToken(testUnsubKey, "acme", mustParse(t, f.enrollment))
	if strings.Contains(tok, "acme") || strings.Contains(tok, f.enrollment) {
		t.Fatalf("token %s reveals its content", tok)
	}
	for _, r := range []resp{e.do("GET", "/u/"+tok, "", nil), e.do("GET", "/u/nonsense", "", nil), e.do("POST", "/u/nonsense", "", nil), e.do("POST", "/u/"+tok, "", nil)} {
		csp := r.header.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none'") || r.header.Get("X-Frame-Options") != "DENY" || r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("status %d: CSP %q, X-Frame-Options %q, Cache-Control %q", r.status, csp, r.header.Get("X-Frame-Options"), r.header.Get("Cache-Control"))
		}
	}
}

// Links minted before tokens became opaque (base64url(tenant|id) "." MAC)
// keep working.
func TestLegacyUnsubscribeLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.fixture("acme")
	payload := "acme|" + f.enrollment
	m := hmac.New(sha256.New, testUnsubKey)
	m.Write([]byte("unsubscribe/v1|" + payload))
	old := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
	e.must(200, "POST", "/u/"+old, "", nil)
	if en := e.must(200, "GET", "/v1/enrollments/"+f.enrollment, f.key, nil); en["stop_reason"] != "unsubscribed" {
		t.Fatalf("legacy link did not unsubscribe: %v", en)
	}
}
