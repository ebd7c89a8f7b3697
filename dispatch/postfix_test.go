package dispatch

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// postfixInstance is a Postfix run by a test from its own configuration
// directory: its own queue, a loopback port, a certificate from the test's
// CA, and every accepted message discarded (nothing leaves the machine).
type postfixInstance struct {
	dir     string
	port    int
	version string
}

// startPostfix starts a private Postfix, or skips the test (fails it
// under CI=true) when Postfix is missing or the test is not root: its
// master process needs root. scripts/ensure-postfix installs it.
func startPostfix(t *testing.T, ca testCA) *postfixInstance {
	t.Helper()
	unavailable := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("the real-Postfix test cannot run under CI=true: %s", why)
		}
		t.Skipf("skipping the real-Postfix test: %s (scripts/ensure-postfix installs Postfix; the test needs root)", why)
	}
	postfix, err := exec.LookPath("postfix")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/postfix"); serr != nil {
			unavailable("postfix is not installed")
		}
		postfix = "/usr/sbin/postfix"
	}
	postconf := filepath.Join(filepath.Dir(postfix), "postconf")
	if os.Geteuid() != 0 {
		unavailable("not running as root")
	}
	out, err := exec.Command(postconf, "-d", "-h", "mail_version").Output()
	if err != nil {
		unavailable("postconf -d mail_version: " + err.Error())
	}
	p := &postfixInstance{version: strings.TrimSpace(string(out))}
	t.Logf("Postfix %s", p.version)

	// The daemons, running as the postfix user, must reach the queue.
	base, err := os.MkdirTemp("", "dripdrop-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	p.dir = base
	// postfix check creates the queue's subdirectories, not the queue.
	if err := os.Mkdir(filepath.Join(base, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if u, err := user.Lookup("postfix"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = os.Chown(filepath.Join(base, "data"), uid, gid)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(base, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", string(ca.leafPEM), 0o644)
	write("key.pem", string(ca.keyPEM), 0o600)
	write("senders", "refused-sender@acme.example.com REJECT\n", 0o644)
	write("recipients", "gone@example.com 550 5.1.1 User unknown\n", 0o644)
	write("main.cf", fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = relay.test.example
mydomain = test.example
myorigin = test.example
mydestination =
relay_domains =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
default_transport = discard
relay_transport = discard
local_transport = discard
smtputf8_enable = no
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[1]s/cert.pem
smtpd_tls_key_file = %[1]s/key.pem
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_non_fqdn_helo_hostname
smtpd_sender_restrictions = check_sender_access texthash:%[1]s/senders
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:%[1]s/recipients
`, base), 0o644)
	write("master.cf", fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`, p.port), 0o644)

	run := func(args ...string) (string, error) {
		cmd := exec.Command(postfix, append([]string{"-c", base}, args...)...)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := run("check"); err != nil {
		t.Fatalf("postfix -c %s check: %v\n%s", base, err, out)
	}
	if out, err := run("start"); err != nil {
		t.Fatalf("postfix -c %s start: %v\n%s\nmaillog:\n%s", base, err, out, p.maillog())
	}
	t.Cleanup(func() {
		if out, err := run("stop"); err != nil {
			t.Errorf("postfix -c %s stop: %v\n%s", base, err, out)
		}
		if t.Failed() {
			t.Logf("Postfix's maillog:\n%s", p.maillog())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix does not listen on port %d: %v\nmaillog:\n%s", p.port, err, p.maillog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (p *postfixInstance) maillog() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// waitLog waits until Postfix's log has n lines containing every one of
// parts, and returns how many there are.
func (p *postfixInstance) countLog(t *testing.T, n int, parts ...string) int {
	t.Helper()
	count := func() int {
		c := 0
		for _, line := range strings.Split(p.maillog(), "\n") {
			ok := true
			for _, part := range parts {
				ok = ok && strings.Contains(line, part)
			}
			if ok {
				c++
			}
		}
		return c
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // postlogd writes asynchronously
	}
	time.Sleep(200 * time.Millisecond) // and a late duplicate would show now
	return count()
}

// Against a real Postfix: a rejected recipient on a reused connection is
// asked once, a sender restriction answered at RCPT is the adapter's
// failure, the adapter's HELO is what Postfix checks, and its private-CA
// certificate is trusted through tls_ca_pem.
func TestRealPostfix(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	p := startPostfix(t, ca)
	tr := loopbackTransport()
	defer tr.Close()
	adapter := uuid.New()
	send := func(from, to, helo string) error {
		d := replyDelivery(p.port, adapter, to)
		d.From = from
		d.Credentials.TLS, d.Credentials.HELO, d.Credentials.TLSCAPEM = "require_starttls", helo, ca.pem
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := tr.Send(ctx, d)
		return err
	}
	const from, helo = "ada@acme.example.com", "mta.acme.example"

	// Trusted through tls_ca_pem, with the configured (fully-qualified) HELO.
	if err := send(from, "first@example.com", helo); err != nil {
		t.Fatalf("a first send through Postfix %s: %v", p.version, err)
	}
	if tr.Idle() != 1 {
		t.Fatalf("%d idle connections after a send, want 1", tr.Idle())
	}
	// Rejected at RCPT on the reused connection: one RCPT, a bounce, the
	// connection kept.
	se := sendErr(t, send(from, "gone@example.com", helo))
	if !se.Bounce() || se.AdapterFault || se.Code != 550 {
		t.Fatalf("gone@: bounce=%v adapter=%v (%v)", se.Bounce(), se.AdapterFault, se)
	}
	if n := p.countLog(t, 1, "reject: RCPT", "<gone@example.com>"); n != 1 {
		t.Fatalf("Postfix logged %d RCPT rejections of the recipient, want 1:\n%s", n, p.maillog())
	}
	if tr.Idle() != 1 {
		t.Fatalf("%d idle connections after a rejected RCPT, want the connection kept", tr.Idle())
	}
	// A sender restriction, answered at RCPT (smtpd_delay_reject): the adapter's.
	se = sendErr(t, send("refused-sender@acme.example.com", "bob@example.com", helo))
	if !se.AdapterFault || se.Reason != "sender_rejected" || !strings.Contains(se.Message, "Sender address rejected") {
		t.Fatalf("a refused sender: adapter=%v reason=%q (%v)", se.AdapterFault, se.Reason, se)
	}
	if n := p.countLog(t, 1, "reject: RCPT", "Sender address rejected"); n != 1 {
		t.Fatalf("Postfix logged %d sender rejections, want 1:\n%s", n, p.maillog())
	}
	// And the message after both is delivered on the same connection.
	if err := send(from, "next@example.com", helo); err != nil {
		t.Fatal(err)
	}
	// One connection for the four sends (and one from startPostfix's probe).
	if n := p.countLog(t, 2, "]: connect from"); n != 2 {
		t.Fatalf("Postfix saw %d connections (one a probe) for four sends, want the one connection reused:\n%s", n, p.maillog())
	}
	// Postfix checks the name the adapter says: a bare "localhost" is refused
	// by reject_non_fqdn_helo_hostname (at RCPT), and it is the adapter's fault.
	other := uuid.New()
	d := replyDelivery(p.port, other, "bob@example.com")
	d.Credentials.TLS, d.Credentials.HELO, d.Credentials.TLSCAPEM = "require_starttls", "localhost", ca.pem
	_, err := tr.Send(context.Background(), d)
	se = sendErr(t, err)
	if !se.AdapterFault || se.Reason != "policy" || !strings.Contains(se.Message, "Helo command rejected") {
		t.Fatalf("HELO localhost: adapter=%v reason=%q (%v)", se.AdapterFault, se.Reason, se)
	}
	if n := p.countLog(t, 1, "Helo command rejected", "helo=<localhost>"); n != 1 {
		t.Fatalf("Postfix logged %d HELO rejections of localhost, want 1:\n%s", n, p.maillog())
	}
	if n := p.countLog(t, 1, "helo=<"+helo+">"); n < 2 {
		t.Fatalf("Postfix logged the configured HELO %d times, want it on each rejection:\n%s", n, p.maillog())
	}
	// Without the CA, Postfix's certificate is not trusted: a tls failure.
	d = replyDelivery(p.port, uuid.New(), "bob@example.com")
	d.Credentials.TLS, d.Credentials.HELO = "require_starttls", helo
	_, err = tr.Send(context.Background(), d)
	if se = sendErr(t, err); !se.AdapterFault || se.Reason != "tls" {
		t.Fatalf("untrusted Postfix certificate: adapter=%v reason=%q (%v)", se.AdapterFault, se.Reason, se)
	}
}
