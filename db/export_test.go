package db

// InsertOutboxSQL is the outbox insert of the transaction seam, for the
// never-skip test's hand-held writers.
const InsertOutboxSQL = insertOutboxSQL
