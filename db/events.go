package db

import (
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
	"github.com/dripdrop/dripdrop/variant"
)

// The events the store's transactions return, one constructor each, with
// exactly the metadata keys of the telemetry catalog (docs/telemetry.md).
// Ids go out as strings; no address, name or body is ever put in.

func evAdapterPinned(tenant string, enrollment, version, adapter uuid.UUID) event {
	return event{name: "dripdrop.dispatch.adapter_pinned", metadata: map[string]any{
		"enrollment_id": enrollment.String(), "sequence_version_id": version.String(), "adapter_id": adapter.String(), "tenant_key": tenant,
	}}
}

func evPoolExhausted(tenant string, pool, version uuid.UUID, evicted []string) event {
	return event{name: "dripdrop.dispatch.pool_exhausted", metadata: map[string]any{
		"pool_id": pool.String(), "sequence_version_id": version.String(), "evicted_adapter_ids": evicted, "tenant_key": tenant,
	}}
}

func evSent(job *SendJob, providerID string) event {
	return event{name: "dripdrop.dispatch.sent", metadata: map[string]any{
		"enrollment_id": job.EnrollmentID.String(), "step_execution_id": job.ExecutionID.String(), "sequence_key": job.SequenceKey,
		"step_key": job.StepKey, "channel": "email", "adapter_provider": job.Provider, "provider_message_id": providerID,
		"out_message_id": job.MessageID, "tenant_key": job.TenantKey,
	}}
}

func evRetry(job *SendJob, at time.Time, reason string) event {
	return event{name: "dripdrop.dispatch.retry", metadata: map[string]any{
		"step_execution_id": job.ExecutionID.String(), "adapter_id": job.AdapterID.String(), "tenant_key": job.TenantKey,
		"attempt": job.Attempt, "defer_until": at, "reason": reason,
	}}
}

func evFailed(tenant string, execution, enrollment, adapter uuid.UUID, reason string, smtpCode int, permanent bool) event {
	return event{name: "dripdrop.dispatch.failed", metadata: map[string]any{
		"step_execution_id": execution.String(), "enrollment_id": enrollment.String(), "adapter_id": adapter.String(),
		"tenant_key": tenant, "reason": reason, "smtp_code": smtpCode, "permanent": permanent,
	}}
}

func evAdapterError(tenant string, adapter uuid.UUID, reason string, consecutive int) event {
	return event{name: "dripdrop.dispatch.adapter_error", metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "reason": reason, "consecutive": consecutive,
	}}
}

func evReconnectRequired(tenant string, adapter uuid.UUID, provider, reason string) event {
	return event{name: "dripdrop.adapter.reconnect_required", metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "provider": provider, "reason": reason,
	}}
}

func evDeferred(tenant string, execution, adapter uuid.UUID, reason string, until time.Time) event {
	return event{name: "dripdrop.dispatch.deferred", metadata: map[string]any{
		"step_execution_id": execution.String(), "adapter_id": adapter.String(), "tenant_key": tenant, "reason": reason, "defer_until": until,
	}}
}

func evSuppressed(tenant string, execution, enrollment uuid.UUID, scope any) event {
	return event{name: "dripdrop.policy.suppressed", metadata: map[string]any{
		"step_execution_id": execution.String(), "enrollment_id": enrollment.String(), "tenant_key": tenant, "scope": scope,
	}}
}

// evPolicy is the event of a policy's deferral, or ok=false for a policy
// that has none.
func evPolicy(tenant string, sc dbsqlc.LoadSendRow, adapter uuid.UUID, v policy.Verdict) (event, bool) {
	sid, aid, until := sc.ID.String(), adapter.String(), v.DeferUntil
	switch v.Policy {
	case policy.SendWindow, policy.Holiday: // a holiday is a quiet day
		return event{name: "dripdrop.policy.quiet_hours", metadata: map[string]any{"step_execution_id": sid, "tenant_key": tenant, "timezone": v.Timezone, "defer_until": until}}, true
	case policy.AdapterResting:
		return event{name: "dripdrop.policy.adapter_resting", metadata: map[string]any{"adapter_id": aid, "step_execution_id": sid, "tenant_key": tenant, "defer_until": until}}, true
	case policy.RampCap:
		return event{name: "dripdrop.policy.ramp_cap", metadata: map[string]any{"adapter_id": aid, "step_execution_id": sid, "tenant_key": tenant, "sent_count": v.SentCount, "cap": v.Cap}}, true
	case policy.SubCap:
		return event{name: "dripdrop.policy.sub_cap", metadata: map[string]any{"adapter_id": aid, "sequence_version_id": sc.SequenceVersionID.String(),
			"step_execution_id": sid, "tenant_key": tenant, "sent_count": v.SentCount, "cap": v.Cap, "max_share_pct": v.MaxSharePct}}, true
	case policy.MinGap:
		return event{name: "dripdrop.policy.min_gap", metadata: map[string]any{"adapter_id": aid, "step_execution_id": sid, "tenant_key": tenant, "defer_until": until, "min_gap_seconds": v.MinGapSeconds}}, true
	}
	return event{}, false
}

// evEnrollment is an enrollment state event (paused, resumed, cancelled,
// completed, stopped) with its reason.
func evEnrollment(name, tenant string, id uuid.UUID, reason string) event {
	return event{name: name, metadata: map[string]any{"enrollment_id": id.String(), "tenant_key": tenant, "reason": reason}}
}

func evSenderReassigned(tenant string, enrollment, from, to uuid.UUID, reason string) event {
	return event{name: "dripdrop.enrollment.sender_reassigned", metadata: map[string]any{
		"enrollment_id": enrollment.String(), "old_adapter_id": from.String(), "new_adapter_id": to.String(), "reason": reason, "tenant_key": tenant,
	}}
}

func evPausedPinUnavailable(tenant string, enrollment, adapter uuid.UUID) event {
	return event{name: "dripdrop.enrollment.paused_pin_unavailable", metadata: map[string]any{
		"enrollment_id": enrollment.String(), "adapter_id": adapter.String(), "tenant_key": tenant,
	}}
}

func evStateChanged(tenant string, adapter uuid.UUID, from, to dripdrop.HealthState, reason, source string) event {
	return event{name: "dripdrop.health.state_changed", metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "from": string(from), "to": string(to), "reason": reason, "source": source,
	}}
}

// evExternalSignal: score is the adapter's score after the signal, nil
// when it has none.
func evExternalSignal(tenant string, adapter uuid.UUID, state dripdrop.HealthState, score *float64, source string) event {
	var s any
	if score != nil {
		s = *score
	}
	return event{name: "dripdrop.health.external_signal", metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "health_state": string(state), "health_score": s, "source": source,
	}}
}

// evThreshold is the bounce or complaint threshold event of a breach.
func evThreshold(name, tenant string, adapter uuid.UUID, sent int, countKey string, count int, rate float64) event {
	return event{name: name, measurements: map[string]float64{"rate": rate}, metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "sent_count": sent, countKey: count,
	}}
}

// evInbound: fault is whose failure a bounce reports (recipient or
// sender), nil for other intents.
func evInbound(tenant, provider, messageID string, id uuid.UUID, execution *uuid.UUID, intent, fault string) event {
	var x, f any
	if execution != nil {
		x = execution.String()
	}
	if fault != "" {
		f = fault
	}
	return event{name: "dripdrop.ingest.inbound_message", metadata: map[string]any{
		"provider": provider, "provider_message_id": messageID, "provider_event_id": id.String(),
		"step_execution_id": x, "tenant_key": tenant, "intent": intent, "fault": f,
	}}
}

func evUnmatched(tenant, provider, messageID string, id uuid.UUID) event {
	return event{name: "dripdrop.ingest.unmatched_event", metadata: map[string]any{
		"provider": provider, "provider_message_id": messageID, "provider_event_id": id.String(), "tenant_key": tenant,
	}}
}

func evDuplicate(tenant, provider, messageID string) event {
	return event{name: "dripdrop.ingest.duplicate_event", metadata: map[string]any{
		"provider": provider, "provider_message_id": messageID, "tenant_key": tenant,
	}}
}

func evOOORescheduled(tenant string, enrollment uuid.UUID, returnAt, scheduledFor time.Time) event {
	return event{name: "dripdrop.ingest.ooo_rescheduled", metadata: map[string]any{
		"enrollment_id": enrollment.String(), "return_at": returnAt, "scheduled_for": scheduledFor, "tenant_key": tenant,
	}}
}

func evSubscriptionDisabled(tenant string, subscription uuid.UUID, reason string) event {
	return event{name: "dripdrop.telemetry.subscription_disabled", metadata: map[string]any{
		"subscription_id": subscription.String(), "tenant_key": tenant, "reason": reason,
	}}
}

func evVariantPromoted(tenant string, sc dbsqlc.StepContextRow, variantKey, metric string, arm variant.Arm) event {
	return event{name: "dripdrop.sequence.variant_promoted", metadata: map[string]any{
		"sequence_id": sc.SequenceID.String(), "sequence_version_id": sc.SequenceVersionID.String(), "step_id": sc.ID.String(),
		"step_key": sc.Key, "variant": variantKey, "metric": metric, "sent": arm.Sent, "successes": arm.Successes, "tenant_key": tenant,
	}}
}

func evReplyCategorized(tenant string, inbound uuid.UUID, enrollment, execution *uuid.UUID, category, previous, source string) event {
	var e, x, p any
	if enrollment != nil {
		e = enrollment.String()
	}
	if execution != nil {
		x = execution.String()
	}
	if previous != "" {
		p = previous
	}
	return event{name: "dripdrop.ingest.reply_categorized", metadata: map[string]any{
		"inbound_id": inbound.String(), "enrollment_id": e, "step_execution_id": x, "category": category,
		"previous_category": p, "source": source, "tenant_key": tenant,
	}}
}
