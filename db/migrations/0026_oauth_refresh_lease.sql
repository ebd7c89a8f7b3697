-- An access token refresh is leased on the grant's row instead of being
-- held under its row lock for the token endpoint's HTTP call: a transaction
-- kept open (with an xid) for seconds would hold back the ordered telemetry
-- feed of every tenant, whose never-skip rule waits for every older writer.
-- The lease is taken and released in short transactions; the HTTP call runs
-- outside any transaction (docs/mailboxes.md#token-lifecycle).
ALTER TABLE oauth_tokens ADD COLUMN refresh_lease_id uuid;
ALTER TABLE oauth_tokens ADD COLUMN refresh_lease_until timestamptz;
