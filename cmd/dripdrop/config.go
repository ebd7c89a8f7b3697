package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// flagEnv names the environment variable of every flag of serve, dev and
// migrate (every flag has one; docs/operations.md lists them in
// one table and a test keeps the three in step). An explicit flag wins over
// the environment.
var flagEnv = map[string]string{
	"database-url":          "DATABASE_URL",
	"citus":                 "DRIPDROP_CITUS",
	"citus-shards":          "DRIPDROP_CITUS_SHARDS",
	"listen":                "LISTEN_ADDR",
	"encryption-key":        "DRIPDROP_ENCRYPTION_KEY",
	"admin-token":           "DRIPDROP_ADMIN_TOKEN",
	"public-base-url":       "PUBLIC_BASE_URL",
	"log-events":            "DRIPDROP_LOG_EVENTS",
	"log-format":            "LOG_FORMAT",
	"log-level":             "LOG_LEVEL",
	"workers":               "DRIPDROP_WORKERS",
	"db-max-conns":          "DB_MAX_CONNS",
	"poll-interval":         "DRIPDROP_POLL_INTERVAL",
	"rescue-interval":       "DRIPDROP_RESCUE_INTERVAL",
	"health-interval":       "DRIPDROP_HEALTH_INTERVAL",
	"send-lease":            "DRIPDROP_SEND_LEASE",
	"send-timeout":          "DRIPDROP_SEND_TIMEOUT",
	"drain-timeout":         "DRIPDROP_DRAIN_TIMEOUT",
	"dir":                   "DRIPDROP_DEV_DIR",
	"sink":                  "DRIPDROP_SINK_ADDR",
	"stop-db":               "DRIPDROP_STOP_DB",
	"inbound-smtp":          "DRIPDROP_INBOUND_SMTP_ADDR",
	"inbound-smtp-cert":     "DRIPDROP_INBOUND_SMTP_CERT",
	"inbound-smtp-key":      "DRIPDROP_INBOUND_SMTP_KEY",
	"allow-private-targets": "DRIPDROP_ALLOW_PRIVATE_TARGETS",
	"smtp-ports":            "DRIPDROP_SMTP_PORTS",
	"trusted-proxies":       "DRIPDROP_TRUSTED_PROXIES",
	"telemetry-retention":   "DRIPDROP_TELEMETRY_RETENTION",
	"webhook-lease":         "DRIPDROP_WEBHOOK_LEASE",
	"mailbox-sync":          "DRIPDROP_MAILBOX_SYNC",
	"dns-servers":           "DRIPDROP_DNS_SERVERS",
}

// annotateEnv appends "(env NAME)" to each flag's usage, so -h shows both.
func annotateEnv(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if env, ok := flagEnv[f.Name]; ok && !strings.Contains(f.Usage, "(env ") {
			f.Usage += " (env " + env + ")"
		}
	})
}

// applyEnv sets every flag not given on the command line from its
// environment variable; a malformed value is an error naming the variable.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := flagEnv[f.Name]
		if !ok || given[f.Name] {
			return
		}
		if v, ok := lookup(env); ok && v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// logConfig is -log-format/LOG_FORMAT and -log-level/LOG_LEVEL.
type logConfig struct {
	Format string
	Level  string
}

func (c *logConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Format, "log-format", "text", "log format: text (key=value) or json")
	fs.StringVar(&c.Level, "log-level", "info", "minimum log level: debug, info, warn or error")
}

// newLogger builds the process logger.
func newLogger(c logConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: use debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("LOG_FORMAT %q: use text or json", c.Format)
}
