package db_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/db/internal/pgxuuid"
)

// sqlcStatements reads every generated query: name → SQL.
func sqlcStatements(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("internal/dbsqlc/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated queries: %v", err)
	}
	re := regexp.MustCompile("(?s)const [a-zA-Z]+ = `(-- name: ([A-Za-z]+) [^`]*)`")
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out[string(m[2])] = string(m[1])
		}
	}
	return out
}

// sampleArg is a value of the parameter type oid for planning: text is
// the tenant's key (a statement's tenant filter is one of its text
// parameters), arrays hold one element.
func sampleArg(oid uint32, tenant string, now time.Time) (any, bool) {
	id := uuid.MustParse("01a24f9e-0000-7000-8000-000000000001")
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return tenant, true
	case pgtype.UUIDOID:
		return id, true
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return 1, true
	case pgtype.Float4OID, pgtype.Float8OID, pgtype.NumericOID:
		return 1.0, true
	case pgtype.BoolOID:
		return false, true
	case pgtype.TimestamptzOID, pgtype.TimestampOID, pgtype.DateOID:
		return now, true
	case pgtype.IntervalOID:
		return time.Minute, true
	case pgtype.JSONBOID, pgtype.JSONOID:
		return []byte("{}"), true
	case pgtype.ByteaOID:
		return []byte{}, true
	case pgtype.TextArrayOID, pgtype.VarcharArrayOID:
		return []string{tenant}, true
	case pgtype.UUIDArrayOID:
		return []uuid.UUID{id}, true
	case pgtype.Int2ArrayOID, pgtype.Int4ArrayOID, pgtype.Int8ArrayOID:
		return []int64{1}, true
	case pgtype.Float8ArrayOID, pgtype.NumericArrayOID:
		return []float64{1}, true
	case pgtype.BoolArrayOID:
		return []bool{false}, true
	case pgtype.TimestamptzArrayOID, pgtype.TimestampArrayOID, pgtype.DateArrayOID:
		return []time.Time{now}, true
	case pgtype.JSONBArrayOID, pgtype.JSONArrayOID:
		return []string{"{}"}, true
	}
	return nil, false
}

// TestCitusEveryQueryPlans plans every generated query on a distributed
// schema, with a value of each parameter's type (text parameters carry the
// tenant's key), and requires a single task (a router query on one
// tenant's shard) of each but the named allow-lists (dbtest.CitusMultiTask,
// CitusAcrossWorkers, CitusTenantsReads, and the single-node forms Citus
// never runs, dbtest.CitusSingleNodeOnly). The scenario tests
// (TestCitusSmoke, TestCitusEndToEnd, TestCitusMailboxSync) plan what the
// engine sent with the arguments it sent; this one leaves no query out.
func TestCitusEveryQueryPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.CitusURL(t)
	tenant := dbtest.CitusTenantsOnBothWorkers(t, url, "plan", 2)[0]
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pgxuuid.Register(conn.TypeMap())
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	stmts := sqlcStatements(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range stmts {
			if !yield(n) {
				return
			}
		}
	})
	rec := dbtest.NewStatementRecorder()
	for _, name := range names {
		sql := stmts[name]
		sd, err := conn.Prepare(ctx, "", sql)
		if err != nil {
			t.Errorf("%s: prepare: %v", name, err)
			continue
		}
		args := make([]any, len(sd.ParamOIDs))
		for i, oid := range sd.ParamOIDs {
			v, ok := sampleArg(oid, tenant, now)
			if !ok {
				t.Fatalf("%s: parameter $%d has type oid %d: give sampleArg a value of it", name, i+1, oid)
			}
			args[i] = v
		}
		rec.Add(sql, args)
	}
	dbtest.RequireRouterPlansOf(t, url, rec, true)
}
