package localpg

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireServer skips when the PostgreSQL server binaries are missing and
// the suite runs against TEST_DATABASE_URL (make test installs them only
// when it needs a managed cluster); otherwise their absence is a failure.
func requireServer(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("TEST_DATABASE_URL") != "" {
			t.Skipf("skipped: %v (TEST_DATABASE_URL is set, so make test did not install them)", err)
		}
		t.Fatal(err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipped: the server runs as another user only when the tests run as root (uid is %d)", os.Geteuid())
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	root, err := os.MkdirTemp("", "localpg-reach-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	for path, mode := range map[string]os.FileMode{"": 0o755, "private": 0o700, "private/x": 0o755, "open": 0o711, "open/x": 0o700, "group": 0o710, "group/x": 0o755} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	self := account{uid: uid, gid: gid}
	member := account{uid: uid + 54321, gid: gid}
	other := account{uid: uid + 54321, gid: gid + 54321}
	for _, tc := range []struct {
		path    string
		as      account
		blocked string
	}{
		{"private/x", self, ""},
		{"private/x", member, "private"},
		{"private/x", other, "private"},
		{"private", other, "private"},
		{"open", other, ""},
		{"open/x", other, "open/x"}, // the directory itself must be entered too
		{"group/x", member, ""},
		{"group/x", other, "group"},
	} {
		want := tc.blocked
		if want != "" {
			want = filepath.Join(root, want)
		}
		got, err := unreachable(filepath.Join(root, tc.path), tc.as)
		if err != nil || got != want {
			t.Errorf("unreachable(%s, uid %d gid %d) = %q, %v; want %q", tc.path, tc.as.uid, tc.as.gid, got, err, want)
		}
	}
}

func TestPrivateDirRefusesWhatItDidNotMake(t *testing.T) {
	t.Parallel()
	self := account{uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), name: "me"}
	tmp := t.TempDir()
	fresh := filepath.Join(tmp, "fresh")
	if err := privateDir(fresh, self); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(fresh); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("fresh dir: %v, %v; want mode 700", st.Mode(), err)
	}
	if err := privateDir(fresh, self); err != nil {
		t.Fatalf("adopting its own dir again: %v", err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(fresh, link); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(link, self); err == nil || !strings.Contains(err.Error(), "remove it and retry") {
		t.Errorf("symlink in its place: %v; want a refusal", err)
	}
	if os.Geteuid() == 0 {
		foreign := filepath.Join(tmp, "foreign")
		if err := os.Mkdir(foreign, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(foreign, 54321, 54321); err != nil {
			t.Fatal(err)
		}
		if err := privateDir(foreign, account{uid: 101, gid: 101, name: "postgres"}); err == nil {
			t.Error("a directory of another user was adopted")
		}
	}
}

// TestEnsureAsRootInPrivateDirectory: as root the server runs as postgres,
// which cannot enter a mode-700 project; the data moves to a private temp
// directory that Ensure and Stop find again through the pointer.
func TestEnsureAsRootInPrivateDirectory(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	requireServer(t)
	ctx := context.Background()
	project := t.TempDir()
	if err := os.Chmod(project, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(project, ".dripdrop", "testpg")
	t.Cleanup(func() {
		if err := Remove(context.Background(), dir); err != nil {
			t.Error(err)
		}
	})
	c, err := Ensure(ctx, dir, Options{Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	runAs, _ := runAsUser()
	base := filepath.Dir(c.Data)
	if !c.Started || strings.HasPrefix(c.Data, project) || !strings.HasPrefix(filepath.Base(base), "dripdrop-testpg-") {
		t.Fatalf("cluster %+v; want it started with its data outside %s in a dripdrop-testpg-* dir", c, project)
	}
	if st, err := os.Stat(base); err != nil || st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != runAs.uid {
		t.Fatalf("%s: %v; want a mode-700 dir of %s", base, err, runAs.name)
	}
	if p := pointer(dir); p != c.Data {
		t.Fatalf("pointer %q, want %q", p, c.Data)
	}
	if pids := settledPostmasters(dir, 1); len(pids) != 1 {
		t.Fatalf("postmasters on %s: %v, want one", c.Data, pids)
	}

	again, err := Ensure(ctx, dir, Options{Fast: true})
	if err != nil || again.Started || again.Data != c.Data || again.Port != c.Port {
		t.Fatalf("second Ensure: %+v, %v; want the running cluster %+v", again, err, c)
	}
	if stopped, err := Stop(ctx, dir); err != nil || !stopped {
		t.Fatalf("Stop: %v, %v", stopped, err)
	}
	if pids := PostmasterPIDs(dir); len(pids) != 0 || ready(c.Port) {
		t.Fatalf("after Stop: postmasters %v, port %d open %v", pids, c.Port, ready(c.Port))
	}
	restarted, err := Ensure(ctx, dir, Options{Fast: true})
	if err != nil || !restarted.Started || restarted.Data != c.Data {
		t.Fatalf("Ensure after Stop: %+v, %v; want %s started again", restarted, err, c.Data)
	}

	// Another clone gets a cluster of its own.
	other := filepath.Join(t.TempDir(), ".dripdrop", "testpg")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	otherData, err := placeData(other, runAs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(otherData)) })
	if otherData == c.Data {
		t.Fatalf("two projects share the data dir %s", c.Data)
	}
}

// TestEnsureSaysWhyItCannot: when the server's user can reach neither the
// project nor any temp dir, one line says why and what to do.
func TestEnsureSaysWhyItCannot(t *testing.T) {
	// Not parallel: it swaps the package-level tempDirs, which the
	// parallel tests' Ensure reads (a data race under -race).
	requireRoot(t)
	requireServer(t)
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	saved := tempDirs
	tempDirs = func() []string { return []string{private} }
	t.Cleanup(func() { tempDirs = saved })
	_, err := Ensure(context.Background(), filepath.Join(private, ".dripdrop", "pg"), Options{})
	if err == nil {
		t.Fatal("Ensure succeeded where the server's user can reach nothing")
	}
	msg := err.Error()
	runAs, _ := runAsUser()
	blocked, _ := unreachable(private, runAs)
	for _, want := range []string{"cannot enter " + blocked + " nor any temp dir", "chmod o+x", "run as a regular user", "DATABASE_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
}

// settledPostmasters is PostmasterPIDs once it shows want processes, or
// after 3 s: a server process forked a moment ago (the startup process, a
// backend) still carries the postmaster's command line, and on a loaded
// machine its parent can be missed while it starts.
func settledPostmasters(dir string, want int) []int {
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := PostmasterPIDs(dir)
		if len(pids) == want || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}
