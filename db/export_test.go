package db

import (
	"context"

	"github.com/dripdrop/dripdrop"

	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// InsertOutboxSQL is the outbox insert of the transaction seam, for the
// never-skip test's hand-held writers.
const InsertOutboxSQL = insertOutboxSQL

// TxWithEvents runs a transaction of one write that reports n events
// of tenant (the outbox seam benchmark).
func (s *Store) TxWithEvents(ctx context.Context, tenant string, n int) error {
	var evs []event
	return s.tx(ctx, func(q *dbsqlc.Queries) error {
		evs = evs[:0]
		for i := 0; i < n; i++ {
			evs = append(evs, event{name: "dripdrop.enrollment.paused", metadata: map[string]any{"enrollment_id": "e", "tenant_key": tenant, "reason": "bench"}})
		}
		return s.audit(ctx, q, tenant, "bench", dripdrop.NewID(), "bench", "bench", nil) // a write, like every state change
	}, &evs)
}
