package dbtest

import (
	"testing"
)

// TestURLGivesAMigratedDatabase: the suite's bootstrap (a managed cluster in
// .dripdrop/testpg unless TEST_DATABASE_URL is set) yields a migrated, empty
// database of the test's own.
func TestURLGivesAMigratedDatabase(t *testing.T) {
	t.Parallel()
	url := URL(t)
	rows := Query(t, url, "SELECT count(*) FROM schema_migrations")
	if n, _ := rows[0][0].(int64); n == 0 {
		t.Fatal("no migrations applied")
	}
	counts := RowCounts(t, url)
	if _, ok := counts["tenants"]; !ok {
		t.Fatalf("tables %v lack tenants", counts)
	}
	for table, n := range counts {
		if n != 0 && table != "schema_migrations" {
			t.Errorf("%s has %d rows in a fresh database", table, n)
		}
	}
	if other := URL(t); other == url {
		t.Fatal("two calls gave the same database")
	}
}
