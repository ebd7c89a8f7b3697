package db

import (
	"reflect"
	"testing"
)

func TestSplitMigration(t *testing.T) {
	t.Parallel()
	src := "-- a header; with a semicolon\n" +
		"CREATE TABLE a (x text DEFAULT 'it''s; fine', \"we;ird\" int);\n" +
		"/* a block; /* nested; */ still */ ALTER TABLE a ADD COLUMN y text DEFAULT E'back\\'; slash';\n" +
		"-- dripdrop:distribute a\n" +
		"CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$;\n" +
		"DO $$ BEGIN PERFORM 1; END $$;\n" +
		"SELECT $1::int;\n" +
		"-- trailing comment\n"
	got, err := splitMigration(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []migrationStep{
		{SQL: "CREATE TABLE a (x text DEFAULT 'it''s; fine', \"we;ird\" int)", Line: 2},
		{SQL: "ALTER TABLE a ADD COLUMN y text DEFAULT E'back\\'; slash'", Line: 3},
		{Directive: "distribute", Table: "a", Line: 4},
		{SQL: "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$", Line: 5},
		{SQL: "DO $$ BEGIN PERFORM 1; END $$", Line: 6},
		{SQL: "SELECT $1::int", Line: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", got, want)
	}
	for _, bad := range []string{
		"SELECT 'open",
		"SELECT $$ open",
		"/* open",
		"-- dripdrop:distribute\n",
		"-- dripdrop:shard a\n",
		"SELECT 1\n-- dripdrop:distribute a\n, 2;",
	} {
		if _, err := splitMigration(bad); err == nil {
			t.Errorf("splitMigration(%q): no error", bad)
		}
	}
}

// Every released migration splits into statements whose count matches
// what PostgreSQL's own parser sees is checked by applying them: the
// migration tests run them one statement at a time.
func TestSplitReleasedMigrations(t *testing.T) {
	t.Parallel()
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		steps, err := splitMigration(m.SQL)
		if err != nil {
			t.Fatalf("%04d: %v", m.Version, err)
		}
		if len(steps) == 0 {
			t.Errorf("%04d: no statements", m.Version)
		}
	}
}

func FuzzSplitMigration(f *testing.F) {
	for _, s := range []string{"SELECT 1; SELECT 2", "SELECT 'a;b'; -- c;\n", "DO $x$ ; $x$;", "/* /* */ */;", "E'\\';'", "$1;$$;$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		steps, err := splitMigration(s)
		if err != nil {
			return
		}
		for _, st := range steps {
			if st.Directive == "" && st.SQL == "" {
				t.Fatalf("empty statement from %q", s)
			}
			// A statement re-split is itself (nothing lost, nothing added).
			if st.Directive == "" {
				again, err := splitMigration(st.SQL)
				if err != nil || len(again) != 1 || again[0].SQL != st.SQL {
					t.Fatalf("statement %q of %q re-splits into %#v (%v)", st.SQL, s, again, err)
				}
			}
		}
	})
}
