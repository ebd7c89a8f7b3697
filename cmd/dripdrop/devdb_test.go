package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/db/localpg"
)

// requirePGServer skips when the PostgreSQL server binaries are missing and
// the suite runs against TEST_DATABASE_URL; otherwise their absence fails.
func requirePGServer(t *testing.T) {
	t.Helper()
	if err := localpg.Available(); err != nil {
		if os.Getenv("TEST_DATABASE_URL") != "" {
			t.Skipf("skipped: %v (TEST_DATABASE_URL is set, so make test did not install them)", err)
		}
		t.Fatal(err)
	}
}

// TestDevStopDBStopsEveryCluster runs what `make db/stop` runs, from the
// project directory with the default relative -dir, and checks that the
// postmaster of every managed cluster is gone.
func TestDevStopDBStopsEveryCluster(t *testing.T) {
	// Not parallel: t.Chdir changes the process working directory.
	requirePGServer(t)
	ctx := context.Background()
	// A project every user can traverse, so that the data stays in
	// .dripdrop/ even as root (the root-private clone test in db/localpg
	// covers clusters that live elsewhere).
	project, err := os.MkdirTemp("", "dripdrop-stopdb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(project) })
	if err := os.Chmod(project, 0o755); err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	for _, name := range []string{"pg", "testpg"} {
		dir := filepath.Join(project, ".dripdrop", name)
		t.Cleanup(func() { _ = localpg.Remove(context.Background(), dir) })
		c, err := localpg.Ensure(ctx, dir, localpg.Options{Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		if pids := settledPostmasters(dir, 1); len(pids) != 1 || c.Data != filepath.Join(dir, "data") {
			t.Fatalf("%s: data in %s, postmasters %v; want one running on %s/data", name, c.Data, pids, dir)
		}
		ports[dir] = c.Port
	}
	t.Chdir(project)
	if err := dev(ctx, []string{"-stop-db"}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil); err != nil {
		t.Fatal(err)
	}
	for dir, port := range ports {
		if pids := localpg.PostmasterPIDs(dir); len(pids) != 0 {
			t.Errorf("%s: postmaster %v still running after dev -stop-db", dir, pids)
		}
		if c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			c.Close()
			t.Errorf("%s: port %d still accepts connections", dir, port)
		}
	}
}

// TestDevFailureStopsTheClusterItStarted: dev on a busy listen port fails and
// stops the managed cluster it started, but leaves one it found running.
func TestDevFailureStopsTheClusterItStarted(t *testing.T) {
	t.Parallel()
	requirePGServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), ".dripdrop")
	pg := filepath.Join(dir, "pg")
	t.Cleanup(func() { _ = localpg.Remove(context.Background(), pg) })
	run := func() string {
		var logs bytes.Buffer
		err := dev(context.Background(), []string{"-dir", dir, "-database-url=", "-listen", busy.Addr().String(), "-sink", "127.0.0.1:0"},
			slog.New(slog.NewTextHandler(&logs, nil)), nil)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("dev on a busy port: %v; want address already in use", err)
		}
		return logs.String()
	}

	logs := run()
	if !strings.Contains(logs, "managed PostgreSQL ready") {
		t.Fatalf("dev did not get as far as starting its cluster:\n%s", logs)
	}
	if pids := localpg.PostmasterPIDs(pg); len(pids) != 0 {
		t.Fatalf("failed dev left its PostgreSQL running: %v\n%s", pids, logs)
	}

	if _, err := localpg.Ensure(context.Background(), pg, localpg.Options{Fast: true}); err != nil {
		t.Fatal(err)
	}
	run()
	if pids := settledPostmasters(pg, 1); len(pids) != 1 {
		t.Fatalf("failed dev stopped a PostgreSQL it had not started: postmasters %v", pids)
	}
}

// settledPostmasters is localpg.PostmasterPIDs once it shows want
// processes, or after 3 s (a just-forked server process carries the
// postmaster's command line for a moment).
func settledPostmasters(dir string, want int) []int {
	deadline := time.Now().Add(3 * time.Second)
	for {
		pids := localpg.PostmasterPIDs(dir)
		if len(pids) == want || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(50 * time.Millisecond)
	}
}
