package db

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
)

// statementTracer hands every statement and its arguments, single or in a
// batch, to Options.StatementHook.
type statementTracer func(sql string, args []any)

func (f statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	f(d.SQL, d.Args)
	return ctx
}

func (statementTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (statementTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (f statementTracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	f(d.SQL, d.Args)
}

func (statementTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// TraceCopyFromStart reports a COPY as "COPY <table> (<columns>) FROM
// STDIN", without its rows.
func (f statementTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	f("COPY "+d.TableName.Sanitize()+" ("+strings.Join(d.ColumnNames, ", ")+") FROM STDIN", nil)
	return ctx
}

func (statementTracer) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
