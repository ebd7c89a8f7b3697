package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/ingest/smtpd"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/mailsync"
	"github.com/dripdrop/dripdrop/oauth"
	"github.com/dripdrop/dripdrop/preflight"
	"github.com/dripdrop/dripdrop/preflight/dnsresolver"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
	"github.com/dripdrop/dripdrop/webhook"
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
	DBMaxConns    int
	Lease         time.Duration
	SendTimeout   time.Duration
	PollInterval  time.Duration
	RescueEvery   time.Duration
	AllowPrivate  bool
	SMTPPorts     string
	DNSServers    string
	Proxies       string
	HealthEvery   time.Duration
	Log           logConfig
	// Telemetry subscriptions: retention of delivered events and logs, and
	// the webhook delivery lease (how soon a killed worker's sends retry).
	TelemetryRetention time.Duration
	WebhookLease       time.Duration
	MailboxSync        int // concurrent mailbox syncs; 0 turns mailbox sync off
	// mailboxDialer, when set, replaces the IMAP dialer (dev mode's
	// in-memory mailboxes are on loopback).
	mailboxDialer mailsync.Dialer
	onApplied     func(tenant string, adapter uuid.UUID, res ingest.InboundResult)
	onSent        func(*db.SendJob)
	logOut        io.Writer // set by main: log to it as -log-format/-log-level say

	// Inbound SMTP listener (docs/ingest.md), off when InboundSMTPAddr is empty.
	InboundSMTPAddr string
	InboundSMTPCert string
	InboundSMTPKey  string
	inboundFallback bool              // dev: a busy address falls back to a free port
	inboundReady    func(addr string) // called with the bound listener address
}

// guard is the outbound-destination policy of -allow-private-targets and
// -smtp-ports.
func (c *serveConfig) guard() (netguard.Guard, error) {
	g := netguard.Guard{AllowPrivate: c.AllowPrivate}
	if strings.TrimSpace(c.SMTPPorts) != "" {
		ports, err := netguard.ParsePorts(c.SMTPPorts)
		if err != nil {
			return g, fmt.Errorf("-smtp-ports (%s): %w", netguard.EnvSMTPPorts, err)
		}
		g.SMTPPorts = ports
	}
	return g, nil
}

// resolver is the preflight's DNS resolver of -dns-servers (nil: off).
func (c *serveConfig) resolver() (preflight.Resolver, error) {
	switch s := strings.TrimSpace(c.DNSServers); s {
	case "off", "":
		return nil, nil
	case "system":
		r, err := dnsresolver.FromSystem("")
		if err != nil {
			return nil, fmt.Errorf("-dns-servers (DRIPDROP_DNS_SERVERS) is \"system\" and %w", err)
		}
		return r, nil
	default:
		r := &dnsresolver.Resolver{}
		for _, srv := range strings.Split(s, ",") {
			srv = strings.TrimSpace(srv)
			if _, _, err := net.SplitHostPort(srv); err != nil {
				srv = net.JoinHostPort(srv, "53")
			}
			r.Servers = append(r.Servers, srv)
		}
		return r, nil
	}
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.Workers, "workers", dispatch.DefaultWorkers, "concurrent sends per process (they hold no database connection)")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", defaultDBMaxConns, fmt.Sprintf("database connection pool size, at least %d (claims, reservations, records and the API)", minDBMaxConns))
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
	fs.StringVar(&c.InboundSMTPAddr, "inbound-smtp", "", "listen address of the inbound SMTP listener for replies and bounces; empty = off")
	fs.StringVar(&c.InboundSMTPCert, "inbound-smtp-cert", "", "PEM certificate file enabling STARTTLS on the inbound listener")
	fs.StringVar(&c.InboundSMTPKey, "inbound-smtp-key", "", "PEM key file of -inbound-smtp-cert")
	fs.BoolVar(&c.AllowPrivate, "allow-private-targets", false, "let adapters (and webhooks) reach loopback, private, link-local and other internal addresses")
	fs.StringVar(&c.DNSServers, "dns-servers", "system", "comma-separated recursive DNS servers (host:port) for the deliverability preflight; \"system\" = those of /etc/resolv.conf, \"off\" = no DNS checks")
	fs.StringVar(&c.SMTPPorts, "smtp-ports", "", "comma-separated SMTP ports adapters may use; empty means 25,465,587,2525")
	fs.StringVar(&c.Proxies, "trusted-proxies", "", "comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For names the client; empty trusts none")
	fs.DurationVar(&c.TelemetryRetention, "telemetry-retention", 7*24*time.Hour, "how long delivered telemetry events and webhook delivery logs are kept")
	fs.DurationVar(&c.WebhookLease, "webhook-lease", time.Minute, "how long a webhook delivery in flight is held before another worker retries it")
	fs.IntVar(&c.MailboxSync, "mailbox-sync", mailsync.DefaultConcurrency, "how many mailboxes (adapters with imap settings) this replica syncs at once; 0 turns mailbox sync off")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "how long in-flight work may take to finish on shutdown")
	c.Log.flags(fs)
}

// The database pool serves claims, reservations, grouped records, leader
// duties and the API; sends hold no connection, so -workers is independent
// of it.
const (
	defaultDBMaxConns = 20
	minDBMaxConns     = 4
)

// check rejects settings the engine cannot run with.
func (c *serveConfig) check() error {
	if c.DBMaxConns < minDBMaxConns {
		return fmt.Errorf("-db-max-conns (DB_MAX_CONNS) is %d: the database pool needs at least %d connections", c.DBMaxConns, minDBMaxConns)
	}
	return nil
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
	if err := cfg.check(); err != nil {
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

	guard, err := cfg.guard()
	if err != nil {
		return err
	}
	proxies, err := api.ParseTrustedProxies(cfg.Proxies)
	if err != nil {
		return fmt.Errorf("-trusted-proxies (DRIPDROP_TRUSTED_PROXIES): %w", err)
	}
	if cfg.AdminToken != "" && len(cfg.AdminToken) < 32 {
		log.Warn("the admin token is shorter than 32 characters; use a long random one (openssl rand -base64 32)")
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return err
	}
	defer ln.Close() // on a failed start; Serve and Shutdown close it otherwise
	transport := dispatch.NewSMTPTransport()
	transport.Guard = guard

	resolver, err := cfg.resolver()
	if err != nil {
		return err
	}
	store, err := db.Open(ctx, cfg.DatabaseURL, db.Options{Vault: box, MaxConns: int32(cfg.DBMaxConns), Telemetry: bus, Logger: log, OutboxMetrics: prom, AllowPrivateTargets: cfg.AllowPrivate, Resolver: resolver})
	if err != nil {
		return err
	}
	defer store.Close()
	if err := registerEngineMetrics(reg, store, log); err != nil {
		return err
	}
	verifyDialer := guard.Dialer(net.Dialer{})
	tokens := oauth.NewSource(store, oauth.Config{Box: box, Guard: guard, PublicBaseURL: oauthBaseURL(cfg.PublicBaseURL, ln.Addr()), Logger: log,
		Prove: func(ctx context.Context, c db.OAuthClient, token string) dripdrop.VerifyResult {
			return dispatch.Verify(ctx, c.Credentials, c.FromAddress, verifyDialer, nil,
				dispatch.WithOAuth2(c.Username, func(context.Context) (string, error) { return token, nil }))
		},
		ProveIMAP: func(ctx context.Context, c db.OAuthClient, token string) dripdrop.VerifyResult {
			gd := guard.Dialer(net.Dialer{Timeout: 30 * time.Second})
			return mailsync.Verify(ctx, mailsync.IMAPDialer{DialContext: gd.DialContext, Timeout: 30 * time.Second}, *c.IMAP,
				mailsync.Login{Username: c.IMAP.Username, Token: token})
		}})
	transport.Tokens = tokens

	disp, err := dispatch.New(dispatch.Config{
		Store: store, Transport: transport, Telemetry: bus, Metrics: prom, Logger: log,
		Workers: cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval, SendTimeout: cfg.SendTimeout, PublicBaseURL: cfg.PublicBaseURL, UnsubscribeKey: box.DeriveKey("unsubscribe"), OnSent: cfg.onSent,
	})
	if err != nil {
		return err
	}

	// Both listeners are bound before any engine goroutine starts, so a busy
	// address or a bad certificate fails the start first. Every goroutine
	// serve starts is in bg, and serve returns only once they have all ended
	// (on a failed start as on shutdown), so nothing logs or touches the store
	// after it returns. The one exception is a drain that times out: the
	// stragglers are abandoned, and the sends they hold are rescued on the
	// next start.
	inbound, err := startInbound(cfg, store, log) // bound, not yet serving
	if err != nil {
		return err
	}
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	abandon := false
	defer func() {
		stopEngine()
		if inbound != nil {
			_ = inbound.Close()
		}
		if !abandon {
			bg.Wait()
		}
	}()

	bg.Go(func() { _ = disp.Run(engineCtx) })
	retention := cfg.TelemetryRetention
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	leader := &dispatch.Leader{Store: store, Logger: log,
		Schedules: map[string]string{"rescue_stale_sending": "@every " + cfg.RescueEvery.String(), "health_sweep": "@every " + cfg.HealthEvery.String(),
			"telemetry_janitor": "@every 1h"},
		Duties: map[string]func(context.Context) error{"telemetry_janitor": func(ctx context.Context) error {
			return webhook.Janitor(ctx, store, prom, retention)
		}},
	}
	bg.Go(func() { leader.Run(engineCtx) })
	hooks := webhook.New(webhook.Config{Store: store, Metrics: prom, Logger: log, AllowPrivate: cfg.AllowPrivate, Lease: cfg.WebhookLease})
	bg.Go(func() { hooks.Run(engineCtx) })
	if cfg.MailboxSync > 0 {
		mm, err := mailsync.NewMetrics(reg)
		if err != nil {
			return err
		}
		dialer := cfg.mailboxDialer
		if dialer == nil {
			gd := guard.Dialer(net.Dialer{Timeout: 30 * time.Second})
			dialer = mailsync.IMAPDialer{DialContext: gd.DialContext}
		}
		syncer := mailsync.New(mailsync.Config{Store: store, Logger: log, Concurrency: cfg.MailboxSync, Dialer: dialer, Tokens: tokens, Metrics: mm, OnApplied: cfg.onApplied})
		bg.Go(func() { _ = syncer.Run(engineCtx) })
	}

	if inbound != nil {
		bg.Go(func() {
			if err := inbound.Serve(); err != nil {
				log.Warn("inbound SMTP listener stopped", "err", err)
			}
		})
	}

	srv := api.New(api.Config{Store: store, AdminToken: cfg.AdminToken, Gatherer: reg, Registerer: reg, Logger: log, UnsubscribeKey: box.DeriveKey("unsubscribe"), Guard: guard, TrustedProxies: proxies, OutboxMetrics: prom,
		DashboardKey: box.DeriveKey("dashboard-session"), SecureCookies: strings.HasPrefix(cfg.PublicBaseURL, "https://"),
		Verify: func(ctx context.Context, c dripdrop.SMTPCredentials, from string) dripdrop.VerifyResult {
			return dispatch.Verify(ctx, c, from, verifyDialer, nil)
		},
		VerifyOAuth2: func(ctx context.Context, c dripdrop.SMTPCredentials, from, user string, token func(context.Context) (string, error)) dripdrop.VerifyResult {
			return dispatch.Verify(ctx, c, from, verifyDialer, nil, dispatch.WithOAuth2(user, token))
		},
		OAuth: tokens})
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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
	if inbound != nil {
		_ = inbound.Shutdown(sctx)
	}
	herr := httpSrv.Shutdown(sctx)
	drained := make(chan struct{})
	go func() { bg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-sctx.Done():
		abandon = true
		log.Warn("drain timeout: in-flight sends will be rescued on the next start")
	}
	return herr
}

// startInbound binds the inbound SMTP listener when it is configured; the
// caller serves it.
func startInbound(cfg serveConfig, store *db.Store, log *slog.Logger) (*smtpd.Server, error) {
	if cfg.InboundSMTPAddr == "" {
		return nil, nil
	}
	sc := smtpd.Config{Addr: cfg.InboundSMTPAddr, Store: store, Logger: log}
	if cfg.InboundSMTPCert != "" || cfg.InboundSMTPKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.InboundSMTPCert, cfg.InboundSMTPKey)
		if err != nil {
			return nil, fmt.Errorf("inbound SMTP certificate: %w", err)
		}
		sc.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := smtpd.Listen(sc)
	if err != nil && cfg.inboundFallback {
		log.Warn("inbound SMTP address busy; using a free port", "addr", cfg.InboundSMTPAddr, "err", err)
		sc.Addr = "127.0.0.1:0"
		ln, err = smtpd.Listen(sc)
	}
	if err != nil {
		return nil, fmt.Errorf("inbound SMTP listener: %w", err)
	}
	log.Info("inbound SMTP listening", "addr", ln.Addr(), "starttls", sc.TLSConfig != nil)
	if cfg.inboundReady != nil {
		cfg.inboundReady(ln.Addr())
	}
	return ln, nil
}

// migrateFlags are the flags of `dripdrop migrate`.
type migrateFlags struct {
	url         string
	citus       bool
	citusShards int
}

func (m *migrateFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&m.url, "database-url", "", "PostgreSQL connection URL")
	fs.BoolVar(&m.citus, "citus", false, "after migrating, distribute the tables on the Citus coordinator at -database-url (docs/scaling.md)")
	fs.IntVar(&m.citusShards, "citus-shards", 0, "shards per distributed table with -citus (0: the coordinator's citus.shard_count)")
}

func runMigrate(ctx context.Context, args []string, log *slog.Logger) error {
	fs := newFlagSet("migrate")
	var m migrateFlags
	m.flags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if m.url == "" {
		return errors.New("DATABASE_URL is required")
	}
	applied, err := db.Migrate(ctx, m.url)
	if err != nil {
		return err
	}
	log.Info("migrations applied", "count", len(applied), "versions", applied)
	if !m.citus {
		return nil
	}
	rep, err := db.CitusDistribute(ctx, m.url, m.citusShards)
	if err != nil {
		return err
	}
	if rep.AlreadyDistributed {
		log.Info("citus: the tables are already distributed", "reference", rep.Reference, "distributed", len(rep.Distributed), "local", rep.Local)
		return nil
	}
	log.Info("citus: tables distributed by tenant_key", "reference", rep.Reference, "distributed", len(rep.Distributed),
		"shards", rep.ShardCount, "foreign_keys", rep.ForeignKeys, "local", rep.Local)
	return nil
}

// oauthBaseURL is where browsers come back to after an OAuth2 consent: the
// public base URL, or — for an engine listening on loopback without one
// (dripdrop dev, make run) — http://localhost:<port>, which Google and
// Microsoft accept as a redirect URI for local testing.
func oauthBaseURL(public string, addr net.Addr) string {
	if public != "" {
		return public
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return "http://localhost:" + strconv.Itoa(ta.Port)
	}
	return ""
}
