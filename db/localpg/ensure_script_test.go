package localpg

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The fake tools scripts/ensure-postgres meets on a PATH of their own: id
// reports $FAKE_UID; apt-get and sudo append their command line to $FAKE_LOG
// (apt-get with the DEBIAN_FRONTEND it saw), sudo then runs the command, and
// `apt-get install` "installs" initdb and pg_ctl into the searched libdir
// unless $FAKE_APT_FAIL, $FAKE_APT_NOBIN or $FAKE_APT_SIMULATE is set.
var fakeTools = map[string]string{
	"id":     `echo "$FAKE_UID"`,
	"sudo":   `echo "sudo $*" >>"$FAKE_LOG"; exec "$@"`,
	"initdb": `exit 0`,
	"pg_ctl": `exit 0`,
	"apt-get": `echo "apt-get $* [DEBIAN_FRONTEND=$DEBIAN_FRONTEND]" >>"$FAKE_LOG"
[ -z "$FAKE_APT_FAIL" ] || { echo "E: Unable to locate package postgresql" >&2; exit 100; }
case " $* " in *" install "*) ;; *) exit 0 ;; esac
[ -n "$FAKE_APT_NOBIN" ] || [ -n "$FAKE_APT_SIMULATE" ] && exit 0
mkdir -p "$ENSURE_POSTGRES_LIBDIR/16/bin"
for b in initdb pg_ctl; do printf '#!/bin/sh\n' >"$ENSURE_POSTGRES_LIBDIR/16/bin/$b"; chmod +x "$ENSURE_POSTGRES_LIBDIR/16/bin/$b"; done`,
}

type scriptRun struct {
	code   int
	stderr string
	log    []string
	libdir string
}

// runEnsure runs scripts/ensure-postgres with only the named fake tools (and
// env, mkdir, chmod) on PATH, an empty libdir and the given environment.
func runEnsure(t *testing.T, tools []string, env ...string) scriptRun {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	libdir := filepath.Join(dir, "lib", "postgresql")
	logPath := filepath.Join(dir, "log")
	for _, d := range []string{bin, libdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, real := range []string{"env", "mkdir", "chmod"} {
		p, err := exec.LookPath(real)
		if err != nil {
			t.Skipf("%s not installed", real)
		}
		if err := os.Symlink(p, filepath.Join(bin, real)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range tools {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+fakeTools[name]+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", "../../scripts/ensure-postgres", "TEST_DATABASE_URL")
	cmd.Env = append([]string{"PATH=" + bin, "FAKE_LOG=" + logPath, "ENSURE_POSTGRES_LIBDIR=" + libdir, "FAKE_UID=0"}, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	err := cmd.Run()
	r := scriptRun{stderr: strings.TrimSpace(stderr.String()), libdir: libdir}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(logPath); err == nil {
		r.log = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	return r
}

func TestEnsurePostgresScript(t *testing.T) {
	t.Parallel()
	const (
		update  = "apt-get update -qq [DEBIAN_FRONTEND=noninteractive]"
		install = "apt-get install -y -qq --no-install-recommends postgresql [DEBIAN_FRONTEND=noninteractive]"
	)
	for _, tc := range []struct {
		name    string
		tools   []string
		env     []string
		code    int
		log     []string
		message string // in the last line of the output
	}{
		{name: "server given", tools: []string{"id", "apt-get"}, env: []string{"TEST_DATABASE_URL=postgres://db/x"}},
		{name: "binaries on PATH", tools: []string{"id", "apt-get", "initdb", "pg_ctl"}},
		{name: "root installs with apt-get", tools: []string{"id", "apt-get"},
			log: []string{update, install}, message: "PostgreSQL installed"},
		{name: "a user installs through sudo", tools: []string{"id", "apt-get", "sudo"}, env: []string{"FAKE_UID=1000"},
			log: []string{"sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq", update,
				"sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql", install},
			message: "PostgreSQL installed"},
		{name: "a user without sudo", tools: []string{"id", "apt-get"}, env: []string{"FAKE_UID=1000"},
			code: 1, message: "you are neither root nor able to sudo; install PostgreSQL's server (Debian/Ubuntu: apt-get install postgresql"},
		{name: "no apt-get", tools: []string{"id", "sudo"},
			code: 1, message: "there is no apt-get to install them with; install PostgreSQL's server"},
		{name: "apt-get install fails", tools: []string{"id", "apt-get"}, env: []string{"FAKE_APT_FAIL=1"},
			code: 1, log: []string{update, install}, message: "apt-get install postgresql failed (see above)"},
		{name: "installed but no binaries", tools: []string{"id", "apt-get"}, env: []string{"FAKE_APT_NOBIN=1"},
			code: 1, log: []string{update, install}, message: "they are still missing after apt-get install postgresql"},
		{name: "dry run simulates only", tools: []string{"id", "apt-get", "sudo"}, env: []string{"FAKE_UID=1000", "ENSURE_POSTGRES_DRY_RUN=1", "FAKE_APT_SIMULATE=1"},
			log: []string{"apt-get -s -y --no-install-recommends install postgresql [DEBIAN_FRONTEND=]"}, message: "simulating: apt-get -s install postgresql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runEnsure(t, tc.tools, tc.env...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", r.code, tc.code, r.stderr)
			}
			if strings.Join(r.log, "\n") != strings.Join(tc.log, "\n") {
				t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(r.log, "\n"), strings.Join(tc.log, "\n"))
			}
			lines := strings.Split(r.stderr, "\n")
			last := lines[len(lines)-1]
			if tc.message == "" && r.stderr != "" {
				t.Errorf("output %q, want none", r.stderr)
			}
			if !strings.Contains(last, tc.message) {
				t.Errorf("last line %q, want it to contain %q", last, tc.message)
			}
			if tc.code != 0 && !strings.Contains(last, "or set TEST_DATABASE_URL") {
				t.Errorf("failure line %q does not offer TEST_DATABASE_URL", last)
			}
		})
	}
}

// TestEnsurePostgresDryRun runs the script's install path against the real
// apt-get in simulation mode (apt-get -s changes nothing), as on a machine
// without the server binaries.
func TestEnsurePostgresDryRun(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/bin/apt-get"); err != nil {
		t.Skip("no apt-get on this machine")
	}
	path := "/usr/sbin:/usr/bin:/sbin:/bin"
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			t.Skipf("initdb is in %s: cannot hide the server binaries", d)
		}
	}
	cmd := exec.Command("/bin/sh", "../../scripts/ensure-postgres", "TEST_DATABASE_URL")
	cmd.Env = []string{"PATH=" + path, "ENSURE_POSTGRES_LIBDIR=" + t.TempDir(), "ENSURE_POSTGRES_DRY_RUN=1"}
	if v, ok := os.LookupEnv("APT_CONFIG"); ok {
		cmd.Env = append(cmd.Env, "APT_CONFIG="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	// Either the plan to install it or apt's note that it already is.
	if !strings.Contains(string(out), "Inst postgresql") && !strings.Contains(string(out), "postgresql is already the newest version") {
		t.Fatalf("apt-get -s did not plan postgresql:\n%s", out)
	}
	t.Logf("%s", out)
}
