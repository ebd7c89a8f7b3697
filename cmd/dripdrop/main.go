// Command dripdrop is the dripdrop sending engine: one binary with the
// subcommands serve, migrate, dev, forecast and version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

const usage = `dripdrop — a self-hostable cold-outbound sending engine

Usage:
  dripdrop serve     run the API, dispatcher and leader duties
  dripdrop migrate   apply database migrations and exit
  dripdrop dev       local playground: managed PostgreSQL, SMTP sink, demo data
  dripdrop forecast  forecast sends and completion dates (through the API or the database)
  dripdrop version   print the version

Run "dripdrop <command> -h" for the flags of a command. Every flag can also
be given as an environment variable (DATABASE_URL, LISTEN_ADDR,
DRIPDROP_ENCRYPTION_KEY, DRIPDROP_ADMIN_TOKEN, PUBLIC_BASE_URL).
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(logger)

	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = runServe(ctx, args, logger)
	case "migrate":
		err = runMigrate(ctx, args, logger)
	case "dev":
		err = runDev(ctx, args, logger)
	case "forecast":
		err = runForecast(ctx, args, os.Stdout, logger)
	case "version", "-v", "--version":
		fmt.Println(versionString())
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "dripdrop: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "dripdrop:", err)
		os.Exit(1)
	}
}

func versionString() string {
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok {
			if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v += "+" + s.Value[:12]
				}
			}
		}
	}
	return "dripdrop " + v
}

// envDefault returns the environment variable or a default.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("dripdrop "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses flags, printing usage on -h and errors to stderr.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil {
		fs.SetOutput(os.Stderr)
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
		}
		fs.Usage()
	}
	return err
}
