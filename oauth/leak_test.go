package oauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"time"

	"github.com/dripdrop/dripdrop/db/localpg"
)

// assertNoTokenLeaks searches every token the authorization server issued,
// and the client secret, where none may be in clear: the logs, every
// event, every API and callback response, and a pg_dump of the database.
func (r *rig) assertNoTokenLeaks() {
	r.t.Helper()
	secrets := append(r.as.Issued(), r.as.ClientSecret)
	if len(secrets) < 3 {
		r.t.Fatalf("only %d secrets issued: the leak check would prove nothing", len(secrets))
	}
	evs, err := json.Marshal(r.Events.Events())
	if err != nil {
		r.t.Fatal(err)
	}
	pgDump, err := localpg.Tool("pg_dump")
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dump, err := exec.CommandContext(ctx, pgDump, "--no-owner", "--data-only", "--dbname="+r.URL).Output()
	if err != nil {
		r.t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(dump, []byte("oauth_tokens")) || !bytes.Contains(dump, []byte(r.as.ClientID)) {
		r.t.Fatal("the dump holds no oauth_tokens table or client id: it is not this database")
	}
	r.mu.Lock()
	bodies := bytes.Join(r.bodies, []byte("\n"))
	r.mu.Unlock()
	places := map[string][]byte{"logs": []byte(r.logs.String()), "events": evs, "API responses": bodies, "pg_dump": dump}
	for where, b := range places {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				i := bytes.Index(b, []byte(s))
				r.t.Fatalf("a token (%s…) is in clear in the %s: …%s…", s[:6], where, strings.TrimSpace(string(b[max(0, i-80):min(len(b), i+len(s)+20)])))
			}
		}
	}
}
