package dbsqlc

// Hand-written (not generated): the text of queries whose plans the
// benchmarks show with EXPLAIN ANALYZE.

// ClaimReadySQL is the claim statement (see ClaimReady).
const ClaimReadySQL = claimReady

// TenantNextDueSQL is TenantNextDue's statement, which the claim pipelines
// after each tenant's ClaimReady.
const TenantNextDueSQL = tenantNextDue
