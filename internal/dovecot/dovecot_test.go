package dovecot

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// conn is a minimal IMAP conversation for checking the harness itself.
type conn struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	cc := &conn{t: t, c: c, r: bufio.NewReader(c)}
	if line := cc.line(); !strings.HasPrefix(line, "* OK") {
		t.Fatalf("greeting %q", line)
	}
	return cc
}

func (c *conn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns the untagged lines and the tagged status.
func (c *conn) cmd(format string, args ...any) ([]string, string) {
	c.t.Helper()
	c.tag++
	tag := fmt.Sprintf("a%d", c.tag)
	fmt.Fprintf(c.c, "%s %s\r\n", tag, fmt.Sprintf(format, args...))
	var untagged []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func TestPasswordLoginFixturesAndFlags(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Users: []User{{Name: "sales@acme.example", Password: "s3cret"}}})
	t.Logf("%s on %s", s.Version, s.Addr())
	old := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	inbox, err := s.Deliver("sales@acme.example", Message{Raw: []byte("From: a@b.example\nSubject: hi\nMessage-ID: <m1@b.example>\n\nhello\n"), Received: old})
	if err != nil {
		t.Fatal(err)
	}
	junk, err := s.Deliver("sales@acme.example", Message{Folder: "Junk", Raw: []byte("From: c@d.example\nSubject: junk\n\nx\n"), Flags: []string{`\Seen`}})
	if err != nil {
		t.Fatal(err)
	}

	c := dial(t, s.Addr())
	if _, st := c.cmd(`LOGIN "sales@acme.example" "wrong"`); !strings.HasPrefix(st, "NO") {
		t.Fatalf("wrong password: %q", st)
	}
	if _, st := c.cmd(`LOGIN "sales@acme.example" "s3cret"`); !strings.HasPrefix(st, "OK") {
		t.Fatalf("login: %q\n%s", st, s.Log())
	}
	lines, _ := c.cmd(`LIST "" "*" RETURN (SPECIAL-USE)`)
	if !strings.Contains(strings.Join(lines, "\n"), `\Junk) "/" Junk`) {
		t.Fatalf("no \\Junk special-use folder in %q", lines)
	}
	lines, st := c.cmd(`EXAMINE INBOX`)
	if !strings.HasPrefix(st, "OK") || !strings.Contains(strings.Join(lines, "\n"), "* 1 EXISTS") {
		t.Fatalf("EXAMINE INBOX: %q %q", lines, st)
	}
	lines, _ = c.cmd(`FETCH 1 (INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`)
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "20-Nov-2026 09:00:00 +0000") || !strings.Contains(all, "<m1@b.example>") {
		t.Fatalf("fetch: %q", all)
	}
	// SELECT + a FETCH of the body (not PEEK) sets \Seen on the server:
	// Flags must see it.
	c.cmd(`SELECT INBOX`)
	c.cmd(`FETCH 1 BODY[TEXT]`)
	c.cmd(`LOGOUT`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := s.Flags("sales@acme.example", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if len(f) == 1 && strings.Join(f[inbox], " ") == `\Seen` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("INBOX flags %v, want %s seen", f, inbox)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := s.Flags("sales@acme.example", "Junk")
	if err != nil || strings.Join(f[junk], " ") != `\Seen` {
		t.Fatalf("Junk flags %v %v", f, err)
	}

	// A user added later logs in without a restart.
	if err := s.AddUser("new@acme.example", "pw2"); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, s.Addr())
	if _, st := c2.cmd(`LOGIN "new@acme.example" "pw2"`); !strings.HasPrefix(st, "OK") {
		t.Fatalf("added user: %q\n%s", st, s.Log())
	}
}

func TestOAuth2Passdb(t *testing.T) {
	t.Parallel()
	calls := make(chan string, 10)
	introspect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		tok := r.PostForm.Get("token")
		calls <- tok
		w.Header().Set("Content-Type", "application/json")
		if tok == "good-token" {
			fmt.Fprint(w, `{"active":true,"username":"sales@acme.example"}`)
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	}))
	t.Cleanup(introspect.Close)
	s := Start(t, Options{
		Users:  []User{{Name: "sales@acme.example", Password: "pw"}},
		OAuth2: &OAuth2{IntrospectionURL: introspect.URL + "/introspect", ActiveAttribute: "active", ActiveValue: "true"},
	})
	xoauth2 := func(user, token string) string {
		return base64.StdEncoding.EncodeToString([]byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"))
	}
	c := dial(t, s.Addr())
	lines, _ := c.cmd("CAPABILITY")
	if caps := strings.Join(lines, " "); !strings.Contains(caps, "AUTH=XOAUTH2") || !strings.Contains(caps, "AUTH=OAUTHBEARER") {
		t.Fatalf("capabilities %q", caps)
	}
	c.tag++
	fmt.Fprintf(c.c, "a%d AUTHENTICATE XOAUTH2 %s\r\n", c.tag, xoauth2("sales@acme.example", "bad-token"))
	// A failed XOAUTH2 gets a challenge the client answers with an empty line.
	l := c.line()
	if strings.HasPrefix(l, "+ ") {
		fmt.Fprint(c.c, "\r\n")
		l = c.line()
	}
	if !strings.HasPrefix(l, fmt.Sprintf("a%d NO", c.tag)) {
		t.Fatalf("bad token: %q", l)
	}
	if tok := <-calls; tok != "bad-token" {
		t.Fatalf("introspected %q", tok)
	}
	c.tag++
	fmt.Fprintf(c.c, "a%d AUTHENTICATE XOAUTH2 %s\r\n", c.tag, xoauth2("sales@acme.example", "good-token"))
	l = c.line()
	for strings.HasPrefix(l, "* ") {
		l = c.line()
	}
	if !strings.HasPrefix(l, fmt.Sprintf("a%d OK", c.tag)) {
		t.Fatalf("good token: %q\n%s", l, s.Log())
	}
	// Passwords still work next to the oauth2 passdb.
	c2 := dial(t, s.Addr())
	if _, st := c2.cmd(`LOGIN "sales@acme.example" "pw"`); !strings.HasPrefix(st, "OK") {
		t.Fatalf("password login beside oauth2: %q", st)
	}
}
