package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop/db/dbtest"
)

func TestAdapterPageShowsMailboxSync(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client()
	c.login(w.acme.key)
	path := "/ui/adapters/" + w.acme.adapterA
	if p := c.get(path); strings.Contains(p.body, "Mailbox sync") {
		t.Fatal("an adapter without imap settings shows a mailbox sync section")
	}
	w.api("PATCH", "/v1/adapters/"+w.acme.adapterA, w.acme.key, map[string]any{"imap": map[string]any{"preset": "google"}}, 200)
	// What a failing sync leaves behind (the loop writes it; see mailsync).
	dbtest.Exec(t, w.dbURL, `UPDATE mailbox_sync SET state = 'throttled', failures = 2, last_error = 'NO [THROTTLED] Request is throttled',
		last_error_reason = 'throttled', last_error_at = now(), cursors = '{"INBOX":{"uidvalidity":7,"last_uid":42,"highest_modseq":99}}',
		fetched = 12, candidates = 3, applied = 2, skipped = 9 WHERE tenant_key = 'acme' AND adapter_id = $1::uuid`, w.acme.adapterA)
	p := c.get(path)
	for _, want := range []string{`data-testid="sync-state">throttled`, "imap.gmail.com:993 (tls)", "Last error (throttled", "Request is throttled",
		"<td>INBOX</td><td class=\"n\">7</td><td class=\"n\">42</td><td class=\"n\">99</td>", "Envelopes read 12 · read whole 3 · applied 2 · skipped (never downloaded whole, never stored) 9 · 2 consecutive failures", `id="sync-now"`} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("adapter page lacks %q:\n%s", want, p.body)
		}
	}
	p = c.do("POST", path+"/sync", url.Values{"csrf": {c.csrf()}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), path+"?flash=") {
		t.Fatalf("sync now: %d %q", p.status, p.header.Get("Location"))
	}
	if rows := dbtest.Query(t, w.dbURL, `SELECT sync_requested_at IS NOT NULL FROM mailbox_sync WHERE tenant_key = 'acme' AND adapter_id = $1::uuid`, w.acme.adapterA); rows[0][0] != true {
		t.Fatal("sync now did not request a sync")
	}
	// Another tenant's key cannot request it.
	o := w.client()
	o.login(w.other.key)
	if p := o.do("POST", path+"/sync", url.Values{"csrf": {o.csrf()}}); p.status != http.StatusNotFound {
		t.Fatalf("other tenant's sync now: %d", p.status)
	}
}
