// Package localpg runs a project-local PostgreSQL cluster from the system's
// initdb and pg_ctl, for `dripdrop dev`, `make run` and the test suite, when
// no DATABASE_URL is given. The cluster lives in a directory of its own
// (by default ./.dripdrop/pg), listens on 127.0.0.1 on a port chosen once and
// remembered, trusts local connections, and is reused across runs.
//
// initdb and pg_ctl refuse to run as root; when the current user is root the
// cluster is owned by and run as an unprivileged account (the "postgres"
// user created by the distribution's package, else "nobody").
package localpg

import (
	"bytes"
	"context"
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

// Options tune a cluster.
type Options struct {
	// Fast turns off fsync and synchronous commit: for test clusters only.
	Fast bool
	// Log receives progress lines ("initialising cluster…"); may be nil.
	Log func(format string, args ...any)
}

// Cluster is a running local PostgreSQL.
type Cluster struct {
	Dir  string
	Port int
}

// URL returns a connection string for database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, name)
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

	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	runAs, err := runAsUser()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	c := &Cluster{Dir: dir}

	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		logf("localpg: initialising a PostgreSQL cluster in %s", data)
		if err := os.RemoveAll(data); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, err
		}
		if err := chown(data, runAs); err != nil {
			return nil, err
		}
		if out, err := run(ctx, runAs, filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser,
			"--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"); err != nil {
			// Older initdb versions lack --no-instructions or C.UTF-8.
			if out2, err2 := run(ctx, runAs, filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser,
				"--auth=trust", "--encoding=UTF8", "--locale=C"); err2 != nil {
				return nil, fmt.Errorf("localpg: initdb failed: %v\n%s\n%s", err, out, out2)
			}
		}
	} else if err != nil {
		return nil, err
	}

	port, err := readPort(dir)
	if err != nil {
		return nil, err
	}
	c.Port = port

	if _, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "status", "-D", data); err == nil {
		if ready(c.Port) {
			return c, nil
		}
	}
	settings := []string{
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=",
		"-c", "max_connections=200",
		"-c", "shared_buffers=128MB",
	}
	if opts.Fast {
		settings = append(settings, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logf("localpg: starting PostgreSQL on 127.0.0.1:%d", port)
	logPath := filepath.Join(dir, "postgres.log")
	if err := touch(logPath, runAs); err != nil {
		return nil, err
	}
	if out, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "start", "-D", data, "-w", "-t", "60",
		"-l", logPath, "-o", strings.Join(settings, " ")); err != nil {
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		return nil, fmt.Errorf("localpg: pg_ctl start failed: %v\n%s\n%s", err, out, tail)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !ready(port) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("localpg: PostgreSQL did not accept connections on port %d", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c, nil
}

// Stop stops the cluster in dir if it is running.
func Stop(ctx context.Context, dir string) error {
	bin, err := findBinDir()
	if err != nil {
		return err
	}
	runAs, err := runAsUser()
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		return nil
	}
	if _, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "status", "-D", data); err != nil {
		return nil // not running
	}
	out, err := run(ctx, runAs, filepath.Join(bin, "pg_ctl"), "stop", "-D", data, "-m", "fast", "-w")
	if err != nil {
		return fmt.Errorf("localpg: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
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
	return "", errors.New("localpg: PostgreSQL server binaries (initdb, pg_ctl) not found; install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL")
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
		return account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid())}, nil
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
	return account{}, errors.New("localpg: running as root and no unprivileged user (postgres or nobody) exists to own the cluster")
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
// first time.
func readPort(dir string) (int, error) {
	path := filepath.Join(dir, "port")
	if b, err := os.ReadFile(path); err == nil {
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
