package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/telemetry"
)

// commandFlags returns the flag sets of serve, dev and migrate as they are
// built by the commands.
func commandFlags() map[string]*flag.FlagSet {
	var cfg serveConfig
	serveFS := newFlagSet("serve")
	cfg.flags(serveFS)
	var dcfg serveConfig
	devFS, _, _, _ := devFlags(&dcfg)
	migrateFS := newFlagSet("migrate")
	var m migrateFlags
	m.flags(migrateFS)
	return map[string]*flag.FlagSet{"serve": serveFS, "dev": devFS, "migrate": migrateFS}
}

// TestEveryFlagHasAnEnvironmentVariable: each flag of serve, dev and
// migrate has a variable, and docs/operations.md lists both in its table.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for cmd, fs := range commandFlags() {
		fs.VisitAll(func(f *flag.Flag) {
			env, ok := flagEnv[f.Name]
			if !ok {
				t.Errorf("%s -%s has no environment variable", cmd, f.Name)
				return
			}
			row := "| `" + env + "` | `-" + f.Name + "` |"
			if !bytes.Contains(doc, []byte(row)) {
				t.Errorf("docs/operations.md has no table row starting %q", row)
			}
		})
	}
}

func TestEnvironmentFillsFlags(t *testing.T) {
	t.Parallel()
	var cfg serveConfig
	fs := newFlagSet("serve")
	cfg.flags(fs)
	annotateEnv(fs)
	if u := fs.Lookup("workers").Usage; !strings.Contains(u, "(env DRIPDROP_WORKERS)") {
		t.Fatalf("usage does not name the variable: %q", u)
	}
	env := map[string]string{"DRIPDROP_WORKERS": "32", "DRIPDROP_SEND_TIMEOUT": "45s", "LISTEN_ADDR": ":9999", "LOG_FORMAT": "json"}
	if err := fs.Parse([]string{"-listen", ":7000"}); err != nil {
		t.Fatal(err)
	}
	if err := applyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 32 || cfg.SendTimeout != 45*time.Second || cfg.ListenAddr != ":7000" || cfg.Log.Format != "json" {
		t.Fatalf("workers %d, send timeout %v, listen %q (the flag wins), log format %q", cfg.Workers, cfg.SendTimeout, cfg.ListenAddr, cfg.Log.Format)
	}
	fs = newFlagSet("serve")
	cfg.flags(fs)
	_ = fs.Parse(nil)
	err := applyEnv(fs, func(k string) (string, bool) {
		return map[string]string{"DRIPDROP_WORKERS": "many"}[k], k == "DRIPDROP_WORKERS"
	})
	if err == nil || !strings.Contains(err.Error(), "DRIPDROP_WORKERS") {
		t.Fatalf("a malformed variable: err = %v, want one naming DRIPDROP_WORKERS", err)
	}
}

// TestDatabasePoolSize: -db-max-conns (DB_MAX_CONNS) defaults to 20 for
// serve and dev, independent of -workers (default 256); fewer than 4 is
// refused at start with a message naming the flag and the variable.
func TestDatabasePoolSize(t *testing.T) {
	t.Parallel()
	for cmd, fs := range commandFlags() {
		if cmd == "migrate" {
			continue
		}
		if f := fs.Lookup("db-max-conns"); f == nil || f.DefValue != "20" {
			t.Errorf("%s -db-max-conns: %+v, want default 20", cmd, f)
		}
		if f := fs.Lookup("workers"); f == nil || f.DefValue != "256" {
			t.Errorf("%s -workers: %+v, want default 256", cmd, f)
		}
	}
	var cfg serveConfig
	fs := newFlagSet("serve")
	cfg.flags(fs)
	_ = fs.Parse(nil)
	if err := applyEnv(fs, func(k string) (string, bool) { return "7", k == "DB_MAX_CONNS" }); err != nil || cfg.DBMaxConns != 7 || cfg.check() != nil {
		t.Fatalf("DB_MAX_CONNS=7: pool %d, %v, check %v", cfg.DBMaxConns, err, cfg.check())
	}
	for _, n := range []int{4, 20, 500} {
		if err := (&serveConfig{DBMaxConns: n}).check(); err != nil {
			t.Errorf("%d connections refused: %v", n, err)
		}
	}
	log, _ := newLogger(logConfig{}, &bytes.Buffer{})
	for _, args := range [][]string{{"-db-max-conns", "3"}, {"-db-max-conns", "0"}, {"-db-max-conns=-1"}} {
		for name, run := range map[string]func(context.Context, []string, *slog.Logger) error{"serve": runServe, "dev": runDev} {
			err := run(context.Background(), args, log)
			if err == nil || !strings.Contains(err.Error(), "-db-max-conns (DB_MAX_CONNS)") || !strings.Contains(err.Error(), "at least 4") {
				t.Errorf("%s %v: err = %v, want the pool size refused", name, args, err)
			}
		}
	}
}

func TestLogFormatAndLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := newLogger(logConfig{Format: "json", Level: "warn"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "adapter_id", "a1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "shown" || line["level"] != "WARN" || line["adapter_id"] != "a1" {
		t.Fatalf("json log at warn: %q (%v)", buf.String(), err)
	}
	for _, bad := range []logConfig{{Format: "xml", Level: "info"}, {Format: "text", Level: "loud"}} {
		if _, err := newLogger(bad, &buf); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestVersionFromLdflags(t *testing.T) {
	t.Parallel()
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v1.2.3", "abc123"
	if got := versionString(); got != "dripdrop v1.2.3 (commit abc123)" {
		t.Fatalf("version %q", got)
	}
}

// TestWarnLines: a permanent failure is one WARN line with ids, never the
// address; a resting transition warns, other transitions do not.
func TestWarnLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, _ := newLogger(logConfig{Format: "json", Level: "warn"}, &buf)
	bus := telemetry.NewBus()
	if err := attachWarnLog(bus, log); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bus.Emit(ctx, "dripdrop.dispatch.failed", map[string]float64{"count": 1}, map[string]any{
		"step_execution_id": "x1", "enrollment_id": "e1", "adapter_id": "a1", "tenant_key": "acme", "reason": "rejected by lead@example.com", "smtp_code": 550, "permanent": true})
	bus.Emit(ctx, "dripdrop.health.state_changed", map[string]float64{"count": 1}, map[string]any{"adapter_id": "a1", "from": "active", "to": "ramping"})
	bus.Emit(ctx, "dripdrop.health.state_changed", map[string]float64{"count": 1}, map[string]any{"adapter_id": "a1", "from": "active", "to": "resting", "reason": "bounce_threshold"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || strings.Contains(buf.String(), "@") {
		t.Fatalf("want 2 WARN lines without addresses, got:\n%s", buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["level"] != "WARN" || first["step_execution_id"] != "x1" || first["smtp_code"] != float64(550) {
		t.Fatalf("first line %s", lines[0])
	}
}
