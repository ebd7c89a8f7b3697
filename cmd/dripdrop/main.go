// Command dripdrop is the dripdrop sending engine: one binary with the
// subcommands serve, migrate, dev and version.
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

// version and commit are set at build time by the Makefile with
// -ldflags "-X main.version=… -X main.commit=…"; without them the Go
// build info supplies what it knows.
var (
	version = ""
	commit  = ""
)

const usage = `dripdrop — a self-hostable cold-outbound sending engine

Usage:
  dripdrop serve     run the API, dispatcher and leader duties
  dripdrop migrate   apply database migrations and exit
  dripdrop dev       local playground: managed PostgreSQL, SMTP sink, demo data
  dripdrop version   print the version

Run "dripdrop <command> -h" for the flags of a command. Every flag can also
be given as an environment variable, shown next to it (for example
DATABASE_URL, LISTEN_ADDR, DRIPDROP_ENCRYPTION_KEY, LOG_FORMAT, LOG_LEVEL);
a flag on the command line wins.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger, err := newLogger(logConfig{Format: os.Getenv("LOG_FORMAT"), Level: envDefault("LOG_LEVEL", "info")}, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dripdrop:", err)
		os.Exit(2)
	}
	slog.SetDefault(logger)

	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = runServe(ctx, args, logger)
	case "migrate":
		err = runMigrate(ctx, args, logger)
	case "dev":
		err = runDev(ctx, args, logger)
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
	v, c := buildVersion()
	return "dripdrop " + v + " (commit " + c + ")"
}

// buildVersion returns the version and commit of this binary.
func buildVersion() (string, string) {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
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

// parse parses flags, then fills the flags not given from their
// environment variables; usage (on -h and errors) shows both.
func parse(fs *flag.FlagSet, args []string) error {
	annotateEnv(fs)
	err := fs.Parse(args)
	if err == nil {
		if err = applyEnv(fs, os.LookupEnv); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return err
		}
	}
	if err != nil {
		fs.SetOutput(os.Stderr)
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
		}
		fs.Usage()
	}
	return err
}
