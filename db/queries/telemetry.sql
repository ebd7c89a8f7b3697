-- name: ListOutboxFeed :many
-- The feed is ordered by (writer xid, id) and lists only rows whose writer
-- is older than every transaction still in progress (pg_snapshot_xmin): no
-- row can later appear before a position a reader has passed, so a cursor
-- never skips an event. The cursor is the last event id seen; its position
-- is looked up (an id the janitor removed falls back to id order).
WITH c AS (SELECT writer_xid, id FROM telemetry_outbox WHERE tenant_key = @tenant_key AND id = @after)
SELECT o.id, o.name, o.measurements, o.metadata, o.occurred_at FROM telemetry_outbox o
WHERE o.tenant_key = @tenant_key
  AND o.writer_xid < pg_snapshot_xmin(pg_current_snapshot())
  AND CASE WHEN EXISTS (SELECT 1 FROM c) THEN (o.writer_xid, o.id) > (SELECT c.writer_xid, c.id FROM c)
           ELSE o.id > @after END
  AND (@prefix::text = '' OR starts_with(o.name, @prefix::text))
ORDER BY o.writer_xid, o.id
LIMIT @lim;

-- name: GetOutboxEvent :one
SELECT id, name, measurements, metadata, occurred_at FROM telemetry_outbox
WHERE tenant_key = $1 AND id = $2;

-- name: LeasePendingOutbox :many
-- Fan-out takes every committed pending event at once: webhooks carry no
-- order, so they need not wait for older transactions like the feed does.
SELECT id, name FROM telemetry_outbox
WHERE tenant_key = @tenant_key AND status = 'pending'
ORDER BY id
LIMIT @lim
FOR UPDATE SKIP LOCKED;

-- name: OutboxLagSeconds :one
SELECT coalesce(extract(epoch FROM (sqlc.arg(now)::timestamptz - min(occurred_at))), 0)::float8 AS lag FROM telemetry_outbox
WHERE tenant_key = @tenant_key AND status = 'pending';

-- name: SetOutboxStatus :exec
UPDATE telemetry_outbox SET status = @status WHERE tenant_key = @tenant_key AND id = ANY(@ids::bigint[]);

-- name: ActiveSubscriptionFilters :many
SELECT id, events FROM webhook_subscriptions WHERE tenant_key = $1 AND active;

-- name: InsertDeliveries :exec
-- One delivery per (subscription, event) pair of the arrays. The pairs are
-- joined to the tenant's subscriptions so that the statement reads a
-- tenant-filtered table and Citus routes it to the tenant's shard (an
-- INSERT … SELECT that reads no table is built on the coordinator); a
-- subscription deleted since the fan-out read it gets no delivery.
INSERT INTO webhook_deliveries (tenant_key, subscription_id, event_id, next_attempt_at, created_at)
SELECT s.tenant_key, u.subscription_id, u.event_id, @now, @now
FROM (SELECT unnest(@subscription_ids::uuid[]) AS subscription_id, unnest(@event_ids::bigint[]) AS event_id) u
JOIN webhook_subscriptions s ON s.tenant_key = @tenant_key AND s.id = u.subscription_id
ON CONFLICT DO NOTHING;

-- name: InsertSubscription :one
INSERT INTO webhook_subscriptions (tenant_key, id, url, events, secret, active, created_at, updated_at)
VALUES (@tenant_key, @id, @url, @events, @secret, @active, @now, @now)
RETURNING *;

-- name: GetSubscription :one
SELECT * FROM webhook_subscriptions WHERE tenant_key = $1 AND id = $2;

-- name: ListSubscriptions :many
SELECT * FROM webhook_subscriptions WHERE tenant_key = @tenant_key AND id > @after ORDER BY id LIMIT @lim;

-- name: UpdateSubscription :one
UPDATE webhook_subscriptions SET url = @url, events = @events, active = @active,
    disabled_reason = CASE WHEN @active::boolean THEN NULL ELSE disabled_reason END,
    failing_since = CASE WHEN @active::boolean AND NOT active THEN NULL ELSE failing_since END,
    updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id
RETURNING *;

-- name: DeleteSubscription :execrows
DELETE FROM webhook_subscriptions WHERE tenant_key = $1 AND id = $2;

-- name: LeaseDeliveries :many
-- Due deliveries of active subscriptions, leased until @lease_until: a
-- worker that dies mid-request leaves them due again when the lease lapses.
WITH due AS (
    SELECT d.subscription_id, d.event_id FROM webhook_deliveries d
    JOIN webhook_subscriptions s ON s.tenant_key = d.tenant_key AND s.id = d.subscription_id AND s.active
    WHERE d.tenant_key = @tenant_key AND d.status = 'pending' AND d.next_attempt_at <= @now
    ORDER BY d.next_attempt_at, d.event_id
    LIMIT @lim
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries w SET attempts = w.attempts + 1, next_attempt_at = @lease_until
FROM due, webhook_subscriptions s, telemetry_outbox o
WHERE w.tenant_key = @tenant_key AND w.subscription_id = due.subscription_id AND w.event_id = due.event_id
  AND s.tenant_key = w.tenant_key AND s.id = w.subscription_id
  AND o.tenant_key = w.tenant_key AND o.id = w.event_id
RETURNING w.subscription_id, w.event_id, w.attempts, s.url, s.secret,
    o.name, o.measurements, o.metadata, o.occurred_at;

-- name: InsertDeliveryAttempt :exec
INSERT INTO webhook_delivery_attempts (tenant_key, subscription_id, event_id, attempt, status_code, latency_ms, response_snippet, error, attempted_at)
VALUES (@tenant_key, @subscription_id, @event_id, @attempt, @status_code, @latency_ms, @response_snippet, @error, @now);

-- name: FinishDelivery :exec
UPDATE webhook_deliveries SET status = @status, next_attempt_at = @next_attempt_at, last_error = @last_error,
    last_status = @last_status, delivered_at = CASE WHEN @status = 'delivered' THEN @now::timestamptz END
WHERE tenant_key = @tenant_key AND subscription_id = @subscription_id AND event_id = @event_id;

-- name: MarkSubscriptionHealthy :exec
UPDATE webhook_subscriptions SET failing_since = NULL
WHERE tenant_key = $1 AND id = $2 AND failing_since IS NOT NULL;

-- name: MarkSubscriptionFailing :one
UPDATE webhook_subscriptions SET failing_since = coalesce(failing_since, @now::timestamptz)
WHERE tenant_key = @tenant_key AND id = @id
RETURNING failing_since::timestamptz;

-- name: DisableSubscription :execrows
UPDATE webhook_subscriptions SET active = false, disabled_reason = @reason, updated_at = @now
WHERE tenant_key = @tenant_key AND id = @id AND active;

-- name: ListDeliveryAttempts :many
SELECT * FROM webhook_delivery_attempts WHERE tenant_key = $1 AND subscription_id = $2 ORDER BY id DESC LIMIT 50;

-- name: RedeliverEvents :execrows
-- The event @from_id alone (@single), or it and every later event of the
-- feed order that the subscription's filter matches.
-- (No CTE: Citus plans an INSERT … SELECT with one as several steps.)
INSERT INTO webhook_deliveries (tenant_key, subscription_id, event_id, next_attempt_at, created_at)
SELECT o.tenant_key, @subscription_id, o.id, @now, @now FROM telemetry_outbox o
WHERE o.tenant_key = @tenant_key
  AND o.writer_xid < pg_snapshot_xmin(pg_current_snapshot())
  AND CASE WHEN @single::boolean THEN o.id = @from_id
           WHEN EXISTS (SELECT 1 FROM telemetry_outbox c WHERE c.tenant_key = @tenant_key AND c.id = @from_id)
             THEN (o.writer_xid, o.id) >= (SELECT c.writer_xid, c.id FROM telemetry_outbox c WHERE c.tenant_key = @tenant_key AND c.id = @from_id)
           ELSE o.id >= @from_id END
  AND (@single::boolean OR cardinality(@events::text[]) = 0 OR EXISTS (SELECT 1 FROM unnest(@events::text[]) p WHERE starts_with(o.name, p)))
ON CONFLICT (tenant_key, subscription_id, event_id) DO UPDATE
SET status = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at, last_error = NULL, delivered_at = NULL;

-- name: DeleteOldOutbox :execrows
DELETE FROM telemetry_outbox WHERE tenant_key = $1 AND occurred_at < $2 AND status <> 'pending';

-- name: DeleteOldDeliveries :execrows
DELETE FROM webhook_deliveries WHERE tenant_key = $1 AND created_at < $2 AND status <> 'pending';

-- name: DeleteOldDeliveryAttempts :execrows
DELETE FROM webhook_delivery_attempts WHERE tenant_key = $1 AND attempted_at < $2;
