package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
)

// serveConfig is everything `serve` needs.
type serveConfig struct {
	DatabaseURL   string
	ListenAddr    string
	EncryptionKey string
	AdminToken    string
	PublicBaseURL string
	DrainTimeout  time.Duration
	LogEvents     bool
	Workers       int
	Lease         time.Duration
	SendTimeout   time.Duration
	PollInterval  time.Duration
	RescueEvery   time.Duration
	HealthEvery   time.Duration
	Log           logConfig
	onSent        func(*db.SendJob)
	logOut        io.Writer // set by main: log to it as -log-format/-log-level say
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.Workers, "workers", 8, "concurrent sends per process")
	fs.DurationVar(&c.PollInterval, "poll-interval", time.Second, "fallback poll when no notification arrives")
	fs.DurationVar(&c.RescueEvery, "rescue-interval", 30*time.Second, "how often the leader rescues sends stuck past their lease")
	fs.DurationVar(&c.HealthEvery, "health-interval", time.Minute, "how often the leader runs the adapter health rules (thresholds, recovery, probing, graduation)")
	fs.DurationVar(&c.Lease, "send-lease", 10*time.Minute, "how long a send may stay in flight before it is rescued and retried")
	fs.DurationVar(&c.SendTimeout, "send-timeout", 2*time.Minute, "deadline of one SMTP conversation (must be shorter than -send-lease)")
	fs.BoolVar(&c.LogEvents, "log-events", false, "log every telemetry event as one line")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL connection URL")
	fs.StringVar(&c.ListenAddr, "listen", ":8080", "HTTP listen address")
	fs.StringVar(&c.EncryptionKey, "encryption-key", "", "base64 32-byte key for credentials at rest")
	fs.StringVar(&c.AdminToken, "admin-token", "", "token for the admin API; empty disables it")
	fs.StringVar(&c.PublicBaseURL, "public-base-url", "", "public URL of this engine, for one-click unsubscribe links")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "how long in-flight work may take to finish on shutdown")
	c.Log.flags(fs)
}

// logger is the process logger: rebuilt from -log-format and -log-level
// when the command runs from main (logOut set), else the one given.
func (c *serveConfig) logger(given *slog.Logger) (*slog.Logger, error) {
	if c.logOut == nil {
		return given, nil
	}
	l, err := newLogger(c.Log, c.logOut)
	if err == nil {
		slog.SetDefault(l)
	}
	return l, err
}

func runServe(ctx context.Context, args []string, log *slog.Logger) error {
	cfg := serveConfig{logOut: os.Stderr}
	fs := newFlagSet("serve")
	cfg.flags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := cfg.logger(log)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is required (or use `dripdrop dev` for a managed local database)")
	}
	box, err := vault.ParseKey(cfg.EncryptionKey)
	if err != nil {
		return fmt.Errorf("%w (generate one with: openssl rand -base64 32)", err)
	}
	if _, err := db.Migrate(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	return serve(ctx, cfg, box, log, nil)
}

// serve runs the engine until ctx is cancelled. ready, if set, is called
// with the bound address once the API accepts connections.
func serve(ctx context.Context, cfg serveConfig, box *vault.Box, log *slog.Logger, ready func(addr string)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bus := telemetry.NewBus()
	prom, err := telemetry.NewPrometheus(reg)
	if err != nil {
		return err
	}
	if err := bus.AttachMany("prometheus", telemetry.Events(), prom.Handler()); err != nil {
		return err
	}
	if err := attachWarnLog(bus, log); err != nil {
		return err
	}
	if cfg.LogEvents {
		if err := bus.AttachMany("log", telemetry.Events(), telemetry.LogHandler(log)); err != nil {
			return err
		}
	}

	store, err := db.Open(ctx, cfg.DatabaseURL, db.Options{Vault: box, MaxConns: 20, Telemetry: bus})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := registerEngineMetrics(reg, store, log); err != nil {
		return err
	}

	disp, err := dispatch.New(dispatch.Config{
		Store: store, Transport: dispatch.NewSMTPTransport(), Telemetry: bus, Metrics: prom, Logger: log,
		Workers: cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval, SendTimeout: cfg.SendTimeout, PublicBaseURL: cfg.PublicBaseURL, UnsubscribeKey: box.DeriveKey("unsubscribe"), OnSent: cfg.onSent,
	})
	if err != nil {
		return err
	}
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan struct{})
	go func() { defer close(engineDone); _ = disp.Run(engineCtx) }()
	leader := &dispatch.Leader{Store: store, Logger: log, Schedules: map[string]string{
		"rescue_stale_sending": "@every " + cfg.RescueEvery.String(), "health_sweep": "@every " + cfg.HealthEvery.String()}}
	leaderDone := make(chan struct{})
	go func() { defer close(leaderDone); leader.Run(engineCtx) }()

	srv := api.New(api.Config{Store: store, AdminToken: cfg.AdminToken, Gatherer: reg, Registerer: reg, Logger: log, UnsubscribeKey: box.DeriveKey("unsubscribe"),
		Verify: func(ctx context.Context, c dripdrop.SMTPCredentials, from string) dripdrop.VerifyResult {
			return dispatch.Verify(ctx, c, from, nil, nil)
		}})
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	log.Info("dripdrop serving", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: no new claims, draining in-flight sends", "drain_timeout", cfg.DrainTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	stopEngine()
	herr := httpSrv.Shutdown(sctx)
	for _, done := range []chan struct{}{engineDone, leaderDone} {
		select {
		case <-done:
		case <-sctx.Done():
			log.Warn("drain timeout: in-flight sends will be rescued on the next start")
			return herr
		}
	}
	return herr
}

func runMigrate(ctx context.Context, args []string, log *slog.Logger) error {
	fs := newFlagSet("migrate")
	url := fs.String("database-url", "", "PostgreSQL connection URL")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return errors.New("DATABASE_URL is required")
	}
	applied, err := db.Migrate(ctx, *url)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "count", len(applied), "versions", applied)
	return nil
}
