package localpg

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/internal/syncbuf"
)

// cloneMarker is set in the environment of the commands run inside the
// private clone, so that its test suite does not clone itself again.
const cloneMarker = "DRIPDROP_IN_PRIVATE_CLONE"

// TestRootPrivateClone is issue 15 end to end: as root, clone the project
// into a mode-700 directory that the postgres user cannot enter (like a
// clone under /root), then from there run the managed-cluster tests,
// `make run` (and call its API), and `make db/stop`, which must leave no
// postmaster of the clone running.
func TestRootPrivateClone(t *testing.T) {
	t.Parallel()
	requireRoot(t)
	if os.Getenv(cloneMarker) != "" {
		t.Skip("skipped: already running inside the private clone")
	}
	requireServer(t)
	for _, tool := range []string{"git", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s is not installed", tool)
		}
	}
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(private, "dripdrop")
	cloneWorkingTree(t, src, clone)
	clusters := []string{filepath.Join(clone, ".dripdrop", "pg"), filepath.Join(clone, ".dripdrop", "testpg")}
	t.Cleanup(func() {
		for _, dir := range clusters {
			if err := Remove(context.Background(), dir); err != nil {
				t.Errorf("removing %s: %v", dir, err)
			}
		}
	})
	if runAs, _ := runAsUser(); runAs.switched {
		if blocked, _ := unreachable(clone, runAs); blocked == "" {
			t.Fatalf("%s can reach %s: the test would not test anything", runAs.name, clone)
		}
	}
	env := []string{cloneMarker + "=1"}
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "DATABASE_URL", "TEST_DATABASE_URL", "LISTEN_ADDR", "PG_BINDIR":
		default:
			env = append(env, kv)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	command := func(name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = clone
		cmd.Env = env
		return cmd
	}

	// The managed-cluster tests: the suite's own cluster (.dripdrop/testpg),
	// clusters in mode-700 temp dirs, and dev on a managed cluster.
	out, err := command("go", "test", "-count=1", "./db/dbtest/", "./db/localpg/", "./cmd/dripdrop/",
		"-run", "^(TestURLGivesAMigratedDatabase|TestEnsureAsRootInPrivateDirectory|TestDevServesDemo|TestDevFailureStopsTheClusterItStarted)$").CombinedOutput()
	if err != nil {
		t.Fatalf("managed-cluster tests in the private clone: %v\n%s", err, out)
	}
	testpg := clusters[1]
	if data := pointer(testpg); data == "" || strings.HasPrefix(data, private) || len(settledPostmasters(testpg, 1)) != 1 {
		t.Fatalf("the clone's test cluster: data %q, postmasters %v; want it running outside %s", data, PostmasterPIDs(testpg), private)
	}

	// make run, as the README says, and the demo API it serves.
	run := command("make", "run")
	run.Env = append(run.Env, "LISTEN_ADDR=127.0.0.1:0")
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	stopRun := func() {
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGINT)
		_ = run.Wait()
	}
	defer stopRun()
	base, key := readDevBanner(t, stdout, &stderr)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/adapters", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /v1/adapters on make run: %d", res.StatusCode)
	}
	stopRun()
	if pids := settledPostmasters(clusters[0], 1); len(pids) != 1 {
		t.Fatalf("make run's cluster after a clean exit: postmasters %v, want it kept running\n%s", pids, stderr.String())
	}

	// make db/stop finds both clusters through their pointers and stops them.
	if out, err := command("make", "db/stop").CombinedOutput(); err != nil {
		t.Fatalf("make db/stop: %v\n%s", err, out)
	}
	for _, dir := range clusters {
		if pids := PostmasterPIDs(dir); len(pids) != 0 {
			t.Errorf("%s: postmaster %v still running after make db/stop", dir, pids)
		}
	}
}

// cloneWorkingTree clones src into dst and lays src's uncommitted changes
// over it, so that what is tested is the working tree.
func cloneWorkingTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("git", "clone", "-q", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	out, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from, to := filepath.Join(src, name), filepath.Join(dst, name)
		st, err := os.Lstat(from)
		if os.IsNotExist(err) {
			_ = os.Remove(to)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(to, st.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// readDevBanner reads `dripdrop dev`'s banner and returns the API base URL
// and the demo API key.
func readDevBanner(t *testing.T, stdout io.Reader, stderr *syncbuf.Buffer) (base, key string) {
	t.Helper()
	apiLine := regexp.MustCompile(`^\s*API\s+(http://\S+)`)
	keyLine := regexp.MustCompile(`^\s*demo API key\s+(\S+)`)
	found := make(chan [2]string, 1)
	go func() {
		var b, k string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := apiLine.FindStringSubmatch(sc.Text()); m != nil {
				b = m[1]
			}
			if m := keyLine.FindStringSubmatch(sc.Text()); m != nil {
				k = m[1]
			}
			if b != "" && k != "" {
				break
			}
		}
		found <- [2]string{b, k}
	}()
	select {
	case r := <-found:
		if r[0] == "" || r[1] == "" {
			t.Fatalf("make run exited without its banner:\n%s", stderr.String())
		}
		return r[0], r[1]
	case <-time.After(5 * time.Minute):
		t.Fatalf("make run printed no banner within 5 minutes:\n%s", stderr.String())
	}
	return "", ""
}
