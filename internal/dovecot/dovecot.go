// Package dovecot runs a private Dovecot IMAP server for tests: its own
// configuration directory, Maildir storage and state under a temp dir, one
// loopback port, users from a passwd-file (and, optionally, an oauth2 passdb
// whose token introspection URL the caller gives), and helpers that write
// Maildir fixture messages and read their flags back without going through
// IMAP.
//
// Dovecot is started "rootless": every process runs as one unprivileged
// account (the current user, or "nobody" when the tests run as root, as in
// CI), with chrooting turned off. The system's Dovecot and its configuration
// are never used. When Dovecot is not installed the test is skipped with a
// message naming scripts/ensure-dovecot — under CI=true it fails instead.
package dovecot

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// User is a mailbox account in the passwd-file passdb.
type User struct {
	Name     string // login name, e.g. "sales@acme.example"
	Password string // plain text; stored with the {PLAIN} scheme
}

// OAuth2 turns on an oauth2 passdb (SASL mechanisms XOAUTH2 and OAUTHBEARER):
// Dovecot checks each bearer token by calling IntrospectionURL.
type OAuth2 struct {
	// IntrospectionURL is called for every token (http:// on loopback is
	// fine). Required.
	IntrospectionURL string
	// Mode is Dovecot's introspection_mode: "post" (default; RFC 7662, the
	// form field token=…), "auth" (GET with Authorization: Bearer) or "get"
	// (the token appended to the URL).
	Mode string
	// UsernameAttribute names the field of the introspection response that
	// must equal the login name; default "username".
	UsernameAttribute string
	// ActiveAttribute/ActiveValue, when set, must be present in the
	// response with that value (e.g. "active" / "true").
	ActiveAttribute, ActiveValue string
}

// TLS serves implicit TLS on a second port and STARTTLS on the plain one.
type TLS struct {
	CertPEM, KeyPEM []byte
}

// Options configure a server.
type Options struct {
	Users  []User
	OAuth2 *OAuth2 // nil: passwords only
	TLS    *TLS    // nil: plain IMAP only (passwords allowed without TLS)
	// ProcessLimit bounds the imap processes (one per connection); default
	// 1100, enough for a benchmark of 1 000 mailboxes.
	ProcessLimit int
}

// Server is a running private Dovecot.
type Server struct {
	Host    string // "127.0.0.1"
	Port    int    // plain IMAP (STARTTLS when TLS is configured)
	TLSPort int    // implicit TLS; 0 without TLS
	Dir     string // the instance's directory (config, logs, mail)
	Version string // `dovecot --version`

	bin     string
	conf    string
	as      account
	cmd     *exec.Cmd
	mu      sync.Mutex
	users   map[string]string
	seq     atomic.Int64
	done    chan struct{}
	waitErr error
}

// Addr is host:port of the plain IMAP listener.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// TLSAddr is host:port of the implicit-TLS listener ("" without TLS).
func (s *Server) TLSAddr() string {
	if s.TLSPort == 0 {
		return ""
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.TLSPort))
}

// Available reports whether Dovecot's binaries are installed, and if not why.
func Available() (bin string, why string) {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr != nil {
			return "", "dovecot is not installed"
		}
		bin = "/usr/sbin/dovecot"
	}
	for _, p := range []string{"/usr/lib/dovecot/imap", "/usr/libexec/dovecot/imap"} {
		if _, err := os.Stat(p); err == nil {
			return bin, ""
		}
	}
	return "", "dovecot is installed without its IMAP server (dovecot-imapd)"
}

// Skip skips t (fails it under CI=true) when Dovecot is not installed.
func Skip(t testing.TB) {
	t.Helper()
	if _, why := Available(); why != "" {
		unavailable(t, why)
	}
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("the real-IMAP (Dovecot) test cannot run under CI=true: %s (scripts/ensure-dovecot installs it)", why)
	}
	t.Skipf("skipping the real-IMAP (Dovecot) test: %s (scripts/ensure-dovecot installs dovecot-imapd)", why)
}

// Start starts a private Dovecot and stops it when t ends. It skips t (fails
// it under CI=true) when Dovecot is missing.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, why := Available()
	if why != "" {
		unavailable(t, why)
	}
	s, err := start(bin, o)
	if err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func start(bin string, o Options) (*Server, error) {
	as, err := runAs()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dripdrop-dovecot-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, bin: bin, as: as, users: map[string]string{}, done: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	if as.switched {
		if err := os.Chown(dir, int(as.uid), int(as.gid)); err != nil {
			return fail(err)
		}
	}
	for _, d := range []string{"run", "state", "home", "users"} {
		if err := s.mkdir(filepath.Join(dir, d)); err != nil {
			return fail(err)
		}
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		s.Version = strings.TrimSpace(string(out))
	}
	if s.Port, err = freePort(); err != nil {
		return fail(err)
	}
	tlsConf := "ssl = no\n"
	imaps := "  inet_listener imaps {\n    port = 0\n  }\n"
	if o.TLS != nil {
		if s.TLSPort, err = freePort(); err != nil {
			return fail(err)
		}
		if err := s.writeFile("cert.pem", o.TLS.CertPEM, 0o644); err != nil {
			return fail(err)
		}
		if err := s.writeFile("key.pem", o.TLS.KeyPEM, 0o600); err != nil {
			return fail(err)
		}
		tlsConf = fmt.Sprintf("ssl = yes\nssl_cert = <%[1]s/cert.pem\nssl_key = <%[1]s/key.pem\nssl_min_protocol = TLSv1.2\n", dir)
		imaps = fmt.Sprintf("  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n", s.TLSPort)
	}
	for _, u := range o.Users {
		s.users[u.Name] = u.Password
	}
	if err := s.writePasswd(); err != nil {
		return fail(err)
	}
	limit := o.ProcessLimit
	if limit <= 0 {
		limit = 1100
	}
	mechs := "plain login"
	oauth := ""
	if o.OAuth2 != nil {
		if o.OAuth2.IntrospectionURL == "" {
			return fail(errors.New("OAuth2.IntrospectionURL is required"))
		}
		mode := o.OAuth2.Mode
		if mode == "" {
			mode = "post"
		}
		attr := o.OAuth2.UsernameAttribute
		if attr == "" {
			attr = "username"
		}
		ext := fmt.Sprintf("introspection_mode = %s\nintrospection_url = %s\nusername_attribute = %s\nforce_introspection = yes\n", mode, o.OAuth2.IntrospectionURL, attr)
		if o.OAuth2.ActiveAttribute != "" {
			ext += fmt.Sprintf("active_attribute = %s\nactive_value = %s\n", o.OAuth2.ActiveAttribute, o.OAuth2.ActiveValue)
		}
		if err := s.writeFile("oauth2.conf.ext", []byte(ext), 0o644); err != nil {
			return fail(err)
		}
		mechs += " xoauth2 oauthbearer"
		oauth = fmt.Sprintf("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = %s/oauth2.conf.ext\n}\n", dir)
	}
	conf := fmt.Sprintf(`# private test instance written by internal/dovecot
instance_name = dripdrop-%[9]s
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = %[2]s
default_internal_group = %[3]s
default_login_user = %[2]s
first_valid_uid = 0
first_valid_gid = 0
disable_plaintext_auth = no
auth_verbose = yes
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
auth_mechanisms = %[4]s
%[5]s
mail_location = maildir:~/Maildir
mail_fsync = never
maildir_very_dirty_syncs = no
mailbox_list_index = no
protocol imap {
  mail_max_userip_connections = %[8]d
  imap_idle_notify_interval = 2 mins
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \Junk
    auto = create
  }
  mailbox Sent {
    special_use = \Sent
    auto = create
  }
}
passdb {
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%%u %[1]s/users/%%u
}
%[6]s
userdb {
  driver = static
  args = uid=%[10]d gid=%[11]d home=%[1]s/home/%%u
}
service imap-login {
  chroot =
  process_min_avail = 1
  service_count = 0
  client_limit = %[8]d
  inet_listener imap {
    address = 127.0.0.1
    port = %[7]d
  }
%[12]s}
service imap {
  process_limit = %[8]d
  client_limit = 1
}
service anvil {
  chroot =
}
service auth {
  client_limit = %[13]d
}
service stats {
  client_limit = %[13]d
}
default_process_limit = %[8]d
default_client_limit = %[13]d
`, dir, as.name, as.group, mechs, tlsConf, oauth, s.Port, limit, hex.EncodeToString(randBytes(4)), as.uid, as.gid, imaps, limit*3)
	if err := s.writeFile("dovecot.conf", []byte(conf), 0o644); err != nil {
		return fail(err)
	}
	s.conf = filepath.Join(dir, "dovecot.conf")
	s.cmd = exec.Command(bin, "-F", "-c", s.conf)
	var out bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	s.cmd.Dir = "/"
	if as.switched {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: as.uid, Gid: as.gid}, Setpgid: true}
	} else {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	s.cmd.Env = append(os.Environ(), "HOME="+dir, "USER="+as.name, "LOGNAME="+as.name)
	if err := s.cmd.Start(); err != nil {
		return fail(fmt.Errorf("start %s: %w", bin, err))
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("dovecot exited (%v): %s%s", s.waitErr, out.String(), log)
		default:
		}
		if greets(s.Addr()) {
			return s, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			s.Stop()
			return nil, fmt.Errorf("dovecot did not answer on %s within 15 s: %s%s", s.Addr(), out.String(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// greets reports whether an IMAP greeting comes from addr.
func greets(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// Stop stops the server (SIGTERM to its process group, then SIGKILL) and
// removes its directory. Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
	default:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	}
	_ = os.RemoveAll(s.Dir)
}

// Log returns Dovecot's log so far (for a failing test's output).
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return string(b)
}

// AddUser adds (or changes the password of) a passwd-file user; Dovecot
// rereads the file on the next login.
func (s *Server) AddUser(name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = password
	return s.writeUser(name, password)
}

func (s *Server) writePasswd() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writePasswdLocked()
}

func (s *Server) writePasswdLocked() error {
	for n, pw := range s.users {
		if err := s.writeUser(n, pw); err != nil {
			return err
		}
	}
	return nil
}

// writeUser writes one user's passwd-file (one file per user, so Dovecot
// opens a new user's file on first login and rereads a changed one).
func (s *Server) writeUser(name, password string) error {
	if name == "" || strings.ContainsAny(name, ":\n/") || name[0] == '.' {
		return fmt.Errorf("user name %q may not be empty, start with '.' or contain ':', '/' or a newline", name)
	}
	if strings.ContainsAny(password, ":\n") {
		return fmt.Errorf("password of %q may not contain ':' or a newline", name)
	}
	tmp := filepath.Join("users", "."+name+".tmp")
	if err := s.writeFile(tmp, []byte(name+":{PLAIN}"+password+"::::::\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(filepath.Join(s.Dir, tmp), filepath.Join(s.Dir, "users", name))
}

// Message is one fixture to place in a mailbox.
type Message struct {
	Raw []byte // the RFC 5322 message (LF or CRLF)
	// Folder is "INBOX" (default) or another folder, e.g. "Junk".
	Folder string
	// Received is the IMAP INTERNALDATE (the file's mtime); default now.
	Received time.Time
	// Flags are IMAP system flags to start with (\Seen, \Answered,
	// \Flagged, \Deleted, \Draft).
	Flags []string
}

// Deliver writes m into user's Maildir, as a delivery agent would (the
// message appears to IMAP clients on their next command), and returns its
// key: the stable base name of its file, which Flags reports it under.
func (s *Server) Deliver(user string, m Message) (string, error) {
	dir := s.folderDir(user, m.Folder)
	for _, d := range []string{"", "tmp", "new", "cur"} {
		if err := s.mkdirAll(filepath.Join(dir, d)); err != nil {
			return "", err
		}
	}
	key := fmt.Sprintf("%d.M%dP%d_%s.dripdrop", time.Now().Unix(), s.seq.Add(1), os.Getpid(), hex.EncodeToString(randBytes(4)))
	info := ":2," + maildirLetters(m.Flags)
	tmp := filepath.Join(dir, "tmp", key)
	raw := bytes.ReplaceAll(m.Raw, []byte("\r\n"), []byte("\n"))
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return "", err
	}
	if s.as.switched {
		_ = os.Chown(tmp, int(s.as.uid), int(s.as.gid))
	}
	when := m.Received
	if when.IsZero() {
		when = time.Now()
	}
	if err := os.Chtimes(tmp, when, when); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "cur", key+info)); err != nil {
		return "", err
	}
	return key, nil
}

// Flags returns the IMAP system flags of every message in user's folder,
// keyed by the message's key (Deliver's result, or the base name Dovecot
// gave a message appended over IMAP), read from the Maildir file names.
func (s *Server) Flags(user, folder string) (map[string][]string, error) {
	dir := s.folderDir(user, folder)
	out := map[string][]string{}
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			key, info, _ := strings.Cut(name, ":2,")
			// Dovecot appends ,S=<size>,W=<vsize> to names it gives.
			key, _, _ = strings.Cut(key, ",")
			out[key] = imapFlags(info)
		}
	}
	return out, nil
}

// Count returns how many messages user's folder holds.
func (s *Server) Count(user, folder string) (int, error) {
	f, err := s.Flags(user, folder)
	return len(f), err
}

// folderDir maps an IMAP folder name to its Maildir++ directory.
func (s *Server) folderDir(user, folder string) string {
	root := filepath.Join(s.Dir, "home", user, "Maildir")
	if folder == "" || strings.EqualFold(folder, "INBOX") {
		return root
	}
	return filepath.Join(root, "."+strings.ReplaceAll(folder, "/", "."))
}

var letters = []struct {
	flag   string
	letter byte
}{{`\Draft`, 'D'}, {`\Flagged`, 'F'}, {`\Answered`, 'R'}, {`\Seen`, 'S'}, {`\Deleted`, 'T'}}

func maildirLetters(flags []string) string {
	var b []byte
	for _, l := range letters {
		for _, f := range flags {
			if strings.EqualFold(f, l.flag) {
				b = append(b, l.letter)
			}
		}
	}
	return string(b)
}

func imapFlags(info string) []string {
	out := []string{}
	for _, l := range letters {
		if strings.IndexByte(info, l.letter) >= 0 {
			out = append(out, l.flag)
		}
	}
	// Lower-case letters are keywords (dovecot-keywords maps them).
	for _, c := range info {
		if c >= 'a' && c <= 'z' {
			out = append(out, "keyword:"+string(c))
		}
	}
	return out
}

func (s *Server) writeFile(name string, b []byte, mode os.FileMode) error {
	p := filepath.Join(s.Dir, name)
	if err := os.WriteFile(p, b, mode); err != nil {
		return err
	}
	if s.as.switched {
		return os.Chown(p, int(s.as.uid), int(s.as.gid))
	}
	return nil
}

func (s *Server) mkdir(p string) error {
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if s.as.switched {
		return os.Chown(p, int(s.as.uid), int(s.as.gid))
	}
	return nil
}

// mkdirAll creates p and its missing parents under s.Dir, owned by the
// server's account.
func (s *Server) mkdirAll(p string) error {
	rel, err := filepath.Rel(s.Dir, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("%s is outside the instance directory", p)
	}
	cur := s.Dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		if err := s.mkdir(cur); err != nil {
			return err
		}
	}
	return nil
}

type account struct {
	uid, gid    uint32
	name, group string
	switched    bool
}

// runAs picks the account Dovecot runs as: the current user, or "nobody"
// when root (Dovecot's rootless mode runs every process as one account).
func runAs() (account, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return account{}, err
		}
		g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
		if err != nil {
			return account{}, err
		}
		return account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), name: u.Username, group: g.Name}, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return account{}, errors.New("dovecot: running as root and there is no unprivileged user \"nobody\" to run Dovecot as; create one or run as a regular user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return account{}, err
	}
	return account{uid: uint32(uid), gid: uint32(gid), name: u.Username, group: g.Name, switched: true}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
