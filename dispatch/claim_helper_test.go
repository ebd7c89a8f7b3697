package dispatch_test

import (
	"context"
	"time"

	"github.com/dripdrop/dripdrop/db"
)

// claimTenant claims up to limit due executions of one tenant, as one
// request of the dispatcher's claim.
func claimTenant(s *db.Store, ctx context.Context, tenant string, limit int, hold time.Duration) ([]db.Claimed, error) {
	return s.Claim(ctx, []db.ClaimRequest{{Tenant: tenant, Limit: limit}}, nil, hold)
}
