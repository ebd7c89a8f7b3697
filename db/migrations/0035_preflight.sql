-- Deliverability preflight (docs/preflight.md): the tenant's
-- require_domain_auth setting, sender-domain results, the recipient-domain
-- cache, each version's recipient verification level, and the recipient's
-- provider on the enrollment.
ALTER TABLE tenants ADD COLUMN require_domain_auth text NOT NULL DEFAULT 'warn';
ALTER TABLE tenants ADD CONSTRAINT tenants_require_domain_auth_check CHECK (require_domain_auth IN ('off', 'warn', 'block'));

ALTER TABLE sequence_versions ADD COLUMN verify_recipients text NOT NULL DEFAULT 'syntax';
ALTER TABLE sequence_versions ADD CONSTRAINT sequence_versions_verify_recipients_check CHECK (verify_recipients IN ('off', 'syntax', 'mx'));

ALTER TABLE enrollments ADD COLUMN recipient_provider text;

-- One row per From domain of the tenant: the last report (its checks with
-- their evidence), when it was made, how long its DNS answers stand, and
-- when the leader checks it next. failing_since starts the grace period of
-- require_domain_auth=block.
CREATE TABLE sender_domains (
    tenant_key     text NOT NULL REFERENCES tenants (tenant_key),
    domain         text NOT NULL CHECK (domain = lower(domain) AND length(domain) BETWEEN 1 AND 253),
    status         text NOT NULL DEFAULT 'unknown' CHECK (status IN ('pass', 'warn', 'fail', 'unknown')),
    checked        boolean NOT NULL DEFAULT false,
    checks         jsonb NOT NULL DEFAULT '[]',
    provider       text NOT NULL DEFAULT '',
    provider_set   text NOT NULL DEFAULT '', -- the operator's override ('' = from the adapters)
    dkim_selectors text[] NOT NULL DEFAULT '{}',
    checked_at     timestamptz,
    expires_at     timestamptz,
    next_check_at  timestamptz NOT NULL,
    failing_since  timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, domain)
);
CREATE INDEX sender_domains_due ON sender_domains (tenant_key, next_check_at);

-- Existing adapters' From domains are checked by the leader's first sweep.
INSERT INTO sender_domains (tenant_key, domain, next_check_at, created_at, updated_at)
SELECT DISTINCT tenant_key, lower(split_part(from_address, '@', 2)), now(), now(), now()
FROM adapters
WHERE deleted_at IS NULL AND split_part(from_address, '@', 2) <> ''
ON CONFLICT DO NOTHING;

-- The recipient-domain cache of verify_recipients=mx, per tenant (so it
-- shards with the tenant's enrollments): where mail for the domain goes
-- and whose MX it is, until expires_at.
CREATE TABLE recipient_domains (
    tenant_key text NOT NULL REFERENCES tenants (tenant_key),
    domain     text NOT NULL,
    status     text NOT NULL CHECK (status IN ('pass', 'fail', 'unknown')),
    code       text NOT NULL,
    provider   text NOT NULL DEFAULT '',
    evidence   jsonb NOT NULL DEFAULT '[]',
    checked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_key, domain)
);
