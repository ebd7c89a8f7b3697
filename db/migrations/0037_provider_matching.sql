-- Provider-aware pinning (docs/preflight.md#provider-aware-sending): a pool
-- may prefer members whose own mailbox provider matches the recipient's,
-- and an adapter names its mailbox provider (from its SMTP host, or set).
ALTER TABLE pools ADD COLUMN provider_matching text NOT NULL DEFAULT 'off';
ALTER TABLE pools ADD CONSTRAINT pools_provider_matching_check CHECK (provider_matching IN ('off', 'prefer'));
ALTER TABLE adapters ADD COLUMN mailbox_provider text NOT NULL DEFAULT '';
