package dovecot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runEnsure runs scripts/ensure-dovecot with a PATH of fakes only: id says
// root, apt-get logs its command line; no dovecot is on that PATH.
func runEnsure(t *testing.T, withApt, withDovecot bool, env ...string) (code int, out string, log string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("id", `echo 0`)
	lib := filepath.Join(dir, "lib")
	if err := os.Mkdir(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if withDovecot {
		write("dovecot", `exit 0`)
		if err := os.WriteFile(filepath.Join(lib, "imap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if withApt {
		write("apt-get", `echo "apt-get $*" >>"$FAKE_LOG"`)
	}
	for _, real := range []string{"env"} {
		p, err := exec.LookPath(real)
		if err != nil {
			t.Skipf("%s not installed", real)
		}
		if err := os.Symlink(p, filepath.Join(bin, real)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("/bin/sh", "../../scripts/ensure-dovecot")
	cmd.Env = append([]string{"PATH=" + bin, "FAKE_LOG=" + logPath, "ENSURE_DOVECOT_SBIN=" + filepath.Join(dir, "none"), "ENSURE_DOVECOT_LIBDIRS=" + lib}, env...)
	b, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	l, _ := os.ReadFile(logPath)
	return code, strings.TrimSpace(string(b)), strings.TrimSpace(string(l))
}

func TestEnsureDovecotScript(t *testing.T) {
	t.Parallel()
	code, out, log := runEnsure(t, true, true)
	if code != 0 || out != "" || log != "" {
		t.Fatalf("with Dovecot present: exit %d, %q, apt %q; want silence", code, out, log)
	}
	code, out, _ = runEnsure(t, false, false)
	if code != 0 || !strings.Contains(out, "no apt-get") || !strings.Contains(out, "will be skipped") {
		t.Fatalf("without apt-get: exit %d, %q", code, out)
	}
	code, out, log = runEnsure(t, true, false, "ENSURE_DOVECOT_DRY_RUN=1")
	if code != 0 || !strings.Contains(out, "dry run") || log != "apt-get -s -y --no-install-recommends install dovecot-imapd" {
		t.Fatalf("dry run: exit %d, %q, apt log %q", code, out, log)
	}
	// A real run: update, install, and a clear line when it is still
	// missing afterwards (the fake apt-get installs nothing).
	code, out, log = runEnsure(t, true, false)
	if code != 0 || !strings.Contains(out, "installing it") || !strings.Contains(out, "still missing") ||
		!strings.Contains(log, "apt-get update -qq") || !strings.Contains(log, "install -y -qq --no-install-recommends dovecot-imapd") {
		t.Fatalf("install: exit %d, %q, apt log %q", code, out, log)
	}
}
