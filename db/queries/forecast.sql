-- Forecast snapshot (docs/forecast.md): read in one read-only, repeatable-read transaction.

-- name: ForecastAdapters :many
SELECT id, name, active, timezone, health_state, health_score, resting_until, daily_cap, ramp_floor, ramp_increment,
       ramp_started_at, min_gap_seconds, gap_jitter_seconds, last_send_at, next_send_at, reconnect_required, provider_caps
FROM adapters
WHERE tenant_key = @tenant_key AND deleted_at IS NULL
ORDER BY id;

-- name: ForecastUsage :many
-- Usage around today; the caller keeps each adapter's local day.
SELECT adapter_id, day, sequence_version_id, sent FROM adapter_daily_usage
WHERE tenant_key = @tenant_key AND day BETWEEN @from_day::date AND @to_day::date AND sent > 0;

-- name: ForecastBudgets :many
SELECT adapter_id, sequence_version_id, max_share_pct FROM budgets WHERE tenant_key = @tenant_key;

-- name: ForecastPools :many
SELECT id, name, on_pin_unavailable FROM pools
WHERE tenant_key = @tenant_key AND deleted_at IS NULL
ORDER BY id;

-- name: ForecastMembers :many
SELECT m.pool_id, m.adapter_id, m.weight, m.active FROM pool_members m
JOIN pools p ON p.tenant_key = m.tenant_key AND p.id = m.pool_id AND p.deleted_at IS NULL
WHERE m.tenant_key = @tenant_key
ORDER BY m.pool_id, m.id;

-- name: ForecastCounters :many
SELECT pool_id, sequence_version_id, adapter_id, counter FROM wdrr_counters WHERE tenant_key = @tenant_key;

-- name: ForecastVersions :many
-- Active versions and every version that still has live enrollments.
SELECT v.id, s.key AS sequence_key, v.version, v.state, v.pool_id, v.window_days, v.window_start, v.window_end, v.window_timezone, v.window_holidays
FROM sequence_versions v
JOIN sequences s ON s.tenant_key = v.tenant_key AND s.id = v.sequence_id
WHERE v.tenant_key = @tenant_key
  AND (v.state = 'active' OR EXISTS (SELECT 1 FROM enrollments e WHERE e.tenant_key = @tenant_key
       AND e.sequence_version_id = v.id AND e.state = 'active'))
ORDER BY s.key, v.version;

-- name: ForecastSteps :many
SELECT sequence_version_id, position, delay_seconds, adapter_override_id, id, variants, winner_variant FROM steps
WHERE tenant_key = @tenant_key
ORDER BY sequence_version_id, position;

-- name: ForecastPending :many
-- Active enrollments with their pending execution (paused ones never send),
-- in enrollment id order: the dispatcher's tie-breaker, which the forecast
-- replays.
SELECT e.id, e.sequence_version_id, e.adapter_id, e.timezone, e.not_before, e.recipient_provider, x.adapter_id AS exec_adapter_id, st.position,
       x.scheduled_for, x.followup, x.state, x.variant,
       EXISTS (SELECT 1 FROM suppressions sp WHERE sp.tenant_key = @tenant_key
               AND ((sp.kind = 'email' AND sp.value = e.email_norm)
                 OR (sp.kind = 'domain' AND sp.value = split_part(e.email_norm, '@', 2)))) AS suppressed
FROM enrollments e
JOIN step_executions x ON x.tenant_key = e.tenant_key AND x.enrollment_id = e.id AND x.state IN ('scheduled', 'sending')
JOIN steps st ON st.tenant_key = x.tenant_key AND st.id = x.step_id
WHERE e.tenant_key = @tenant_key AND e.state = 'active'
ORDER BY e.id, x.id;
