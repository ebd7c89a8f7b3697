package db_test

import (
	"slices"
	"testing"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
)

// The benchmarks' EXPLAIN of the claim runs it under the claim's settings.
func TestExplainClaimUsesTheClaimSettings(t *testing.T) {
	t.Parallel()
	if !slices.Equal(db.ClaimSettings, dbtest.ClaimSettings) {
		t.Fatalf("dbtest.ClaimSettings %v, the claim's %v", dbtest.ClaimSettings, db.ClaimSettings)
	}
}
