package db

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestUnavailable(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		&pgconn.PgError{Code: "57P01"}, &pgconn.PgError{Code: "57P03"}, &pgconn.PgError{Code: "08006"}, &pgconn.PgError{Code: "53300"},
		fmt.Errorf("wrapped: %w", &pgconn.ConnectError{}), &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED},
		pgconn.ErrConnClosed, io.ErrUnexpectedEOF, fmt.Errorf("x: %w", syscall.ECONNRESET),
	} {
		if !Unavailable(err) {
			t.Errorf("Unavailable(%#v) = false", err)
		}
	}
	for _, err := range []error{
		nil, errors.New("boom"), pgx.ErrNoRows, &pgconn.PgError{Code: "23505"}, &pgconn.PgError{Code: "40001"},
		context.Canceled, context.DeadlineExceeded,
	} {
		if Unavailable(err) {
			t.Errorf("Unavailable(%v) = true", err)
		}
	}
}

func TestOutageLogsTransitionsOnce(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	o := &Outage{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Loop: "test"}
	down := &pgconn.PgError{Code: "57P01"}
	steps := []struct {
		err    error
		report bool
	}{{nil, false}, {down, false}, {down, false}, {errors.New("other"), true}, {down, false}, {nil, false}, {nil, false}, {down, false}, {nil, false}}
	for i, s := range steps {
		if got := o.Note(s.err); got != s.report {
			t.Errorf("step %d: Note(%v) = %v, want %v", i, s.err, got, s.report)
		}
	}
	if o.Down() {
		t.Error("still down after recovery")
	}
	out := buf.String()
	if strings.Count(out, "database unavailable") != 2 || strings.Count(out, "database available again") != 2 {
		t.Errorf("want two outages logged once each:\n%s", out)
	}
}
