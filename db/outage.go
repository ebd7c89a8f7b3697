package db

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err means the database cannot be reached —
// connection refused or reset, the server shutting down or starting up, too
// many connections — rather than a failure of the statement itself.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"): // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pe.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	for _, target := range []error{pgconn.ErrConnClosed, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// Outage turns a loop's stream of database results into two log lines per
// outage: one WARN when the database first becomes unavailable and one INFO
// when it answers again, instead of an error on every iteration
// (docs/security.md#availability).
// It is safe for concurrent use. The zero value logs to slog.Default.
type Outage struct {
	Logger *slog.Logger
	Loop   string // "dispatcher", "leader", "listener"

	mu    sync.Mutex
	since time.Time // start of the current outage; zero when the database answers
}

// Note records the result of one database round trip: nil ends an outage,
// an Unavailable error starts one (logged once). It returns true when err is
// some other error, which the caller should log itself.
func (o *Outage) Note(err error) bool {
	down := Unavailable(err)
	if err != nil && !down {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	switch {
	case down && o.since.IsZero():
		o.since = time.Now()
		log.Warn("database unavailable; retrying quietly until it answers", "loop", o.Loop, "err", err)
	case !down && !o.since.IsZero():
		log.Info("database available again", "loop", o.Loop, "outage_seconds", time.Since(o.since).Round(time.Second).Seconds())
		o.since = time.Time{}
	}
	return false
}

// Down reports whether an outage is in progress.
func (o *Outage) Down() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.since.IsZero()
}
