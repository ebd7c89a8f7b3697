// Package localpg runs a project-local PostgreSQL cluster from the system's
// initdb and pg_ctl, for `dripdrop dev`, `make run` and the test suite, when
// no DATABASE_URL is given. A cluster has a directory of its own in the
// project (by default ./.dripdrop/pg), listens on 127.0.0.1 on a port chosen
// once and remembered, trusts local connections, and is reused across runs.
//
// initdb and pg_ctl refuse to run as root; when the current user is root the
// cluster is owned by and run as an unprivileged account (the "postgres"
// user created by the distribution's package, else "nobody"). That account
// must be able to reach the data directory: when the project lives where it
// cannot (a clone under /root, or any mode-700 directory), the data directory
// moves to a private directory of that account under the system temp dir,
// named after a hash of the cluster's path so that two clones never share a
// cluster, and the cluster's project directory keeps a pointer to it (the
// file "datadir"), so Stop and the next Ensure find it again.
package localpg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Superuser is the cluster's bootstrap role.
const Superuser = "dripdrop"

// pointerFile, in a cluster's directory, holds the absolute path of a data
// directory that lives outside the project.
const pointerFile = "datadir"

// Options tune a cluster.
type Options struct {
	// Fast turns off fsync and synchronous commit: for test clusters only.
	Fast bool
	// Log receives progress lines ("initialising cluster…"); may be nil.
	Log func(format string, args ...any)
	// BinDir holds the server binaries to run instead of the ones found
	// by default ($PG_BINDIR, /usr/lib/postgresql/*/bin, $PATH): a build
	// with extensions, such as a Citus for the Citus tests.
	BinDir string
	// Settings are extra server settings, each name=value without spaces
	// (shared_preload_libraries=citus).
	Settings []string
}

// Cluster is a running local PostgreSQL.
type Cluster struct {
	Dir  string // the cluster's directory in the project (lock, port, pointer)
	Data string // its data directory: Dir/data, or the private directory Dir/datadir names
	Port int
	// Started reports that this Ensure started the server (it was not
	// running before), so a caller that fails later can stop it again.
	Started bool
}

// URL returns a connection string for database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, name)
}

// Available reports whether the PostgreSQL server binaries are installed
// (nil) or what is missing.
func Available() error {
	_, err := findBinDir()
	return err
}

// Ensure initialises the cluster in dir if needed and starts it if it is not
// running. It is safe to call from several processes at once (a file lock
// serialises them).
func Ensure(ctx context.Context, dir string, opts Options) (*Cluster, error) {
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	bin := opts.BinDir
	if bin == "" {
		if bin, err = findBinDir(); err != nil {
			return nil, err
		}
	}
	runAs, err := runAsUser()
	if err != nil {
		return nil, err
	}
	data, err := placeData(dir, runAs)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Data: data}

	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		logf("localpg: initialising a PostgreSQL cluster in %s", data)
		if err := initdb(ctx, bin, dir, data, runAs); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}

	port, err := readPort(dir, false)
	if err != nil {
		return nil, err
	}
	if _, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "status", "-D", data); err == nil {
		if ready(port) {
			c.Port = port
			return c, nil
		}
	} else if ready(port) {
		// Our server is down and something else took the remembered port.
		if port, err = readPort(dir, true); err != nil {
			return nil, err
		}
	}
	c.Port = port
	settings := []string{
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "max_connections=200",
		"-c", "shared_buffers=128MB",
	}
	for _, kv := range opts.Settings {
		settings = append(settings, "-c", kv)
	}
	if opts.Fast {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logf("localpg: starting PostgreSQL on 127.0.0.1:%d", port)
	logPath := filepath.Join(filepath.Dir(data), "postgres.log")
	if err := touch(logPath, runAs); err != nil {
		return nil, err
	}
	if out, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "start", "-D", data, "-w", "-t", "60",
		"-l", logPath, "-o", strings.Join(settings, " ")); err != nil {
		tail, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("localpg: PostgreSQL did not start on port %d (%s); its log is %s", port, lastLine(append(out, tail...)), logPath)
	}
	c.Started = true
	deadline := time.Now().Add(30 * time.Second)
	for !ready(port) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("localpg: PostgreSQL did not accept connections on port %d; its log is %s", port, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

// initdb creates the cluster's data directory.
func initdb(ctx context.Context, bin, dir, data string, as account) error {
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if err := chown(data, as); err != nil {
		return err
	}
	out, err := run(ctx, as, filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")
	if err == nil {
		return nil
	}
	// Older initdb versions lack --no-instructions or C.UTF-8.
	out2, err2 := run(ctx, as, filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser,
		"--auth=trust", "--encoding=UTF8", "--locale=C")
	if err2 == nil {
		return nil
	}
	logPath := filepath.Join(dir, "initdb.log")
	_ = os.WriteFile(logPath, append(append(out, '\n'), out2...), 0o644)
	return fmt.Errorf("localpg: initdb failed (%s); its output is in %s", lastLine(out2), logPath)
}

// Stop stops the cluster in dir if it is running, and reports whether it was.
func Stop(ctx context.Context, dir string) (bool, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	runAs, err := runAsUser()
	if err != nil {
		return false, err
	}
	data := dataDir(dir, runAs)
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		return false, nil // no cluster here
	}
	bin, err := findBinDir()
	if err != nil {
		return false, err
	}
	if _, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "status", "-D", data); err != nil {
		return false, nil // not running
	}
	pid := postmasterPID(data)
	if out, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "stop", "-D", data, "-m", "fast", "-w"); err != nil {
		return false, fmt.Errorf("localpg: pg_ctl stop -D %s: %v (%s)", data, err, lastLine(out))
	}
	// pg_ctl returns once the postmaster removed its pid file, a moment
	// before the process is gone: wait for that too.
	for deadline := time.Now().Add(10 * time.Second); pid > 0 && !exited(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false, fmt.Errorf("localpg: postmaster %d of %s did not exit", pid, data)
		}
	}
	return true, nil
}

// postmasterPID reads the postmaster's id from its pid file (0 if none).
func postmasterPID(data string) int {
	b, _ := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// exited reports whether process pid is gone (or a zombie), per /proc.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err != nil || len(b) == 0
}

// StopAll stops every cluster in the subdirectories of root (a project's
// .dripdrop) and returns the directories of those that were running.
func StopAll(ctx context.Context, root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var stopped []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		ok, err := Stop(ctx, dir)
		if ok {
			stopped = append(stopped, dir)
		}
		errs = append(errs, err)
	}
	return stopped, errors.Join(errs...)
}

// Remove stops the cluster in dir and deletes it, with its data directory
// wherever that lives.
func Remove(ctx context.Context, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := Stop(ctx, dir); err != nil {
		return err
	}
	if p := pointer(dir); p != "" {
		if err := os.RemoveAll(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return os.RemoveAll(dir)
}

// PostmasterPIDs returns the ids of the postmasters serving the cluster in
// dir, found by their command line in /proc (empty where there is no /proc).
// Tests use it to prove a cluster is really stopped.
func PostmasterPIDs(dir string) []int {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	runAs, err := runAsUser()
	if err != nil {
		return nil
	}
	data := dataDir(dir, runAs)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	parents := map[int]int{} // server process → its parent
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-D" && args[i+1] == data && strings.HasSuffix(args[0], "postgres") {
				pid, _ := strconv.Atoi(filepath.Base(p))
				parents[pid] = parentPID(p)
				break
			}
		}
	}
	// A backend keeps the postmaster's command line for a moment after the
	// fork: count only processes whose parent is not a server too.
	var pids []int
	for pid, parent := range parents {
		if _, child := parents[parent]; !child {
			pids = append(pids, pid)
		}
	}
	return pids
}

// parentPID reads the parent's id from /proc/<pid>/stat.
func parentPID(proc string) int {
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return 0
	}
	// "pid (comm) state ppid …"; comm may hold spaces and parentheses.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// dataDir returns the data directory of the cluster in dir: the one its
// pointer names when the server runs as another user, else dir/data.
func dataDir(dir string, as account) string {
	if p := pointer(dir); as.switched && p != "" {
		return p
	}
	return filepath.Join(dir, "data")
}

// pointer returns the data directory dir's pointer file names, if any.
func pointer(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, pointerFile))
	if p := strings.TrimSpace(string(b)); err == nil && filepath.IsAbs(p) {
		return p
	}
	return ""
}

// placeData returns where the cluster in dir keeps its data, moving it to a
// private directory under the system temp dir (and leaving a pointer) when
// the account that runs the server cannot reach dir.
func placeData(dir string, as account) (string, error) {
	data := filepath.Join(dir, "data")
	if !as.switched {
		return data, nil
	}
	if p := pointer(dir); p != "" {
		// (Re)create its directory: the temp dir may have been emptied.
		return p, privateDir(filepath.Dir(p), as)
	}
	blocked, err := unreachable(dir, as)
	if err != nil || blocked == "" {
		return data, err
	}
	sum := sha256.Sum256([]byte(dir))
	name := "dripdrop-" + filepath.Base(dir) + "-" + hex.EncodeToString(sum[:8])
	var tried []string
	for _, tmp := range tempDirs() {
		if b, err := unreachable(tmp, as); err != nil || b != "" {
			tried = append(tried, tmp)
			continue
		}
		base := filepath.Join(tmp, name)
		if err := privateDir(base, as); err != nil {
			return "", err
		}
		data = filepath.Join(base, "data")
		return data, os.WriteFile(filepath.Join(dir, pointerFile), []byte(data+"\n"), 0o644)
	}
	return "", fmt.Errorf("localpg: PostgreSQL refuses to run as root, so it runs as %s, who cannot enter %s nor any temp dir (%s); clone the project into a directory %s can traverse (or chmod o+x %s), run as a regular user, or set DATABASE_URL (TEST_DATABASE_URL for tests)",
		as.name, blocked, strings.Join(tried, ", "), as.name, blocked)
}

// tempDirs are where a data directory may move, in order of preference.
var tempDirs = func() []string { return []string{os.TempDir(), "/tmp", "/var/tmp"} }

// unreachable returns the first directory on the way to path (path
// included) that the account may not search, or "" when it reaches path.
// Supplementary groups do not count: the server runs without them.
func unreachable(path string, as account) (string, error) {
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	for p := "/"; ; {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return "", nil
		}
		mode := uint32(st.Mode().Perm())
		var bit uint32 = 0o001
		switch {
		case sys.Uid == as.uid:
			bit = 0o100
		case sys.Gid == as.gid:
			bit = 0o010
		}
		if mode&bit == 0 {
			return p, nil
		}
		if p == path {
			return "", nil
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(path, p), "/")
		next, _, _ := strings.Cut(rest, "/")
		p = filepath.Join(p, next)
	}
}

// privateDir creates (or adopts) path as a mode-700 directory owned by the
// account. The temp dir is shared with every user: a path someone else
// created, or a symlink, is refused.
func privateDir(path string, as account) error {
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || (sys.Uid != 0 && sys.Uid != as.uid) {
		return fmt.Errorf("localpg: %s is not a directory of root or %s; remove it and retry", path, as.name)
	}
	if err := os.Chown(path, int(as.uid), int(as.gid)); err != nil {
		return err
	}
	return os.Chmod(path, 0o700)
}

// findBinDir locates initdb/pg_ctl: $PG_BINDIR, the newest
// /usr/lib/postgresql/*/bin, then $PATH.
func findBinDir() (string, error) {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("localpg: PostgreSQL server binaries (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin; run scripts/ensure-postgres (make run and make test do), install PostgreSQL (Debian/Ubuntu: apt-get install postgresql), or set DATABASE_URL")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

type account struct {
	uid, gid uint32
	name     string
	switched bool
}

func runAsUser() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), name: "you"}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return account{uid: uint32(uid), gid: uint32(gid), name: name, switched: true}, nil
	}
	return account{}, errors.New("localpg: PostgreSQL refuses to run as root and no unprivileged user (postgres or nobody) exists to run it; create one (useradd postgres), run as a regular user, or set DATABASE_URL")
}

func run(ctx context.Context, as account, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	cmd.Dir = "/"
	if as.switched {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: as.uid, Gid: as.gid}}
		cmd.Env = append(os.Environ(), "HOME=/tmp", "USER="+as.name, "LOGNAME="+as.name)
	}
	// pg_ctl start forks the postmaster, which keeps our pipes open: wait
	// only for the command itself.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	return buf.Bytes(), err
}

// lastLine returns the last non-empty line of a command's output.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func chown(path string, as account) error {
	if !as.switched {
		return nil
	}
	return os.Chown(path, int(as.uid), int(as.gid))
}

func touch(path string, as account) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return chown(path, as)
}

// readPort returns the cluster's remembered port, choosing a free one the
// first time or when fresh is set.
func readPort(dir string, fresh bool) (int, error) {
	path := filepath.Join(dir, "port")
	if b, err := os.ReadFile(path); err == nil && !fresh {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	p := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return p, os.WriteFile(path, []byte(strconv.Itoa(p)+"\n"), 0o644)
}

func ready(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

// BinDir is the directory of the server binaries Ensure runs by default.
func BinDir() (string, error) { return findBinDir() }

// Tool is the path of a PostgreSQL client program (pg_dump, psql) of the
// same installation whose server binaries Ensure runs.
func Tool(name string) (string, error) {
	bin, err := findBinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(bin, name)
	if !isExec(p) {
		return "", fmt.Errorf("localpg: %s not found next to initdb in %s", name, bin)
	}
	return p, nil
}
