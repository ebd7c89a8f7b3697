package db

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/internal/netguard"
)

// FeedEvent is one event of the outbox feed, as it goes on the wire
// (docs/telemetry.md#delivery): a stable id (also the webhook-id header), the catalog name, the time
// of the change, the tenant and the catalog measurements and metadata.
type FeedEvent struct {
	ID           int64           `json:"id"`
	Name         string          `json:"name"`
	Time         time.Time       `json:"time"`
	TenantKey    string          `json:"tenant_key"`
	Measurements json.RawMessage `json:"measurements"`
	Metadata     json.RawMessage `json:"metadata"`
}

// Feed lists the tenant's outbox events after the cursor, oldest first.
// Only events below the oldest transaction still in progress are listed,
// so an event that commits after a later-numbered one is never skipped by a
// reader that continues after the last id it saw.
func (s *Store) Feed(ctx context.Context, tenant string, after int64, prefix string, limit int) (_ []FeedEvent, err error) {
	defer wrapErr(&err, "feed")
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.q.ListOutboxFeed(ctx, dbsqlc.ListOutboxFeedParams{TenantKey: tenant, After: after, Prefix: prefix, Lim: int32(limit)})
	if err != nil {
		return nil, err
	}
	out := make([]FeedEvent, len(rows))
	for i, r := range rows {
		out[i] = FeedEvent{ID: r.ID, Name: r.Name, Time: r.OccurredAt.UTC(), TenantKey: tenant, Measurements: r.Measurements, Metadata: r.Metadata}
	}
	return out, nil
}

// Subscription is a webhook subscription (docs/telemetry.md#subscribe). Secret is set only in
// the answer that created it (shown once).
type Subscription struct {
	ID             uuid.UUID         `json:"id"`
	URL            string            `json:"url"`
	Events         []string          `json:"events"`
	Active         bool              `json:"active"`
	DisabledReason *string           `json:"disabled_reason"`
	FailingSince   *time.Time        `json:"failing_since"`
	Secret         string            `json:"secret,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Deliveries     []DeliveryAttempt `json:"deliveries,omitempty"`
}

// DeliveryAttempt is one line of a subscription's delivery log.
type DeliveryAttempt struct {
	EventID         int64     `json:"event_id"`
	Attempt         int       `json:"attempt"`
	StatusCode      *int      `json:"status_code"`
	LatencyMs       int       `json:"latency_ms"`
	ResponseSnippet string    `json:"response_snippet"`
	Error           *string   `json:"error"`
	AttemptedAt     time.Time `json:"attempted_at"`
}

// SubscriptionInput creates or patches a subscription.
type SubscriptionInput struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	Secret *string   `json:"secret"`
	Active *bool     `json:"active"`
}

func subscriptionFromRow(r dbsqlc.WebhookSubscription) Subscription {
	ev := r.Events
	if ev == nil {
		ev = []string{}
	}
	return Subscription{ID: r.ID, URL: r.Url, Events: ev, Active: r.Active, DisabledReason: r.DisabledReason,
		FailingSince: r.FailingSince, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

func secretAD(tenant string, id uuid.UUID) []byte {
	return []byte("webhook-secret|" + tenant + "|" + id.String())
}

// validateURL checks a webhook URL: http(s), a host, at most 2048 bytes, and
// the outbound-destination rule on its host (netguard,
// docs/security.md#the-operators-network).
func (s *Store) validateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "url", "url must be an absolute http or https URL without credentials")
	}
	if len(raw) > 2048 {
		return dripdrop.Errorf(dripdrop.ECodeTooLong, "url", "url is longer than 2048 bytes")
	}
	if err := (netguard.Guard{AllowPrivate: s.allowPrivate}).CheckHost(u.Hostname()); err != nil {
		return dripdrop.Errorf(dripdrop.ECodeForbiddenTarget, "url", "%v (set DRIPDROP_ALLOW_PRIVATE_TARGETS=true to allow private targets)", err)
	}
	return nil
}

func validateEvents(evs []string) ([]string, error) {
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		if e == "" || len(e) > 200 || strings.ContainsAny(e, " \t\r\n*") {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "events", "events are event names or name prefixes such as \"dripdrop.ingest.\"")
		}
		out = append(out, e)
	}
	return out, nil
}

// parseSecret accepts whsec_ + base64 of 24–64 bytes and returns the key.
func parseSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "secret", "secret must be \"whsec_\" followed by the base64 of 24 to 64 random bytes")
	}
	return key, nil
}

// CreateSubscription validates and stores a subscription; the answer
// carries the secret (generated when none is given), shown only this once.
func (s *Store) CreateSubscription(ctx context.Context, tenant string, in SubscriptionInput) (_ Subscription, err error) {
	defer wrapErr(&err, "create subscription")
	if in.URL == nil {
		return Subscription{}, dripdrop.Errorf(dripdrop.ECodeRequired, "url", "url is required")
	}
	if err := s.validateURL(*in.URL); err != nil {
		return Subscription{}, err
	}
	events := []string{}
	if in.Events != nil {
		var err error
		if events, err = validateEvents(*in.Events); err != nil {
			return Subscription{}, err
		}
	}
	secret := ""
	if in.Secret != nil {
		if _, err := parseSecret(*in.Secret); err != nil {
			return Subscription{}, err
		}
		secret = *in.Secret
	} else {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		secret = "whsec_" + base64.StdEncoding.EncodeToString(key)
	}
	if s.vault == nil {
		return Subscription{}, dripdrop.Errorf(dripdrop.ECodeInternal, "", "no encryption key configured; cannot store webhook secrets")
	}
	active := in.Active == nil || *in.Active
	id := dripdrop.NewID()
	row, err := s.q.InsertSubscription(ctx, dbsqlc.InsertSubscriptionParams{
		TenantKey: tenant, ID: id, Url: *in.URL, Events: events, Secret: s.vault.Seal([]byte(secret), secretAD(tenant, id)),
		Active: active, Now: s.clock.Now(),
	})
	if err != nil {
		return Subscription{}, mapErr(err, "subscription")
	}
	sub := subscriptionFromRow(row)
	sub.Secret = secret
	return sub, nil
}

// GetSubscription returns a subscription with its last 50 delivery attempts.
func (s *Store) GetSubscription(ctx context.Context, tenant string, id uuid.UUID) (_ Subscription, err error) {
	defer wrapErr(&err, "get subscription")
	row, err := s.q.GetSubscription(ctx, dbsqlc.GetSubscriptionParams{TenantKey: tenant, ID: id})
	if err != nil {
		return Subscription{}, mapErr(err, "subscription")
	}
	sub := subscriptionFromRow(row)
	atts, err := s.q.ListDeliveryAttempts(ctx, dbsqlc.ListDeliveryAttemptsParams{TenantKey: tenant, SubscriptionID: id})
	if err != nil {
		return Subscription{}, err
	}
	sub.Deliveries = make([]DeliveryAttempt, len(atts))
	for i, a := range atts {
		sub.Deliveries[i] = DeliveryAttempt{EventID: a.EventID, Attempt: a.Attempt, StatusCode: a.StatusCode, LatencyMs: a.LatencyMs,
			ResponseSnippet: a.ResponseSnippet, Error: a.Error, AttemptedAt: a.AttemptedAt.UTC()}
	}
	return sub, nil
}

// ListSubscriptions lists the tenant's subscriptions.
func (s *Store) ListSubscriptions(ctx context.Context, tenant string, p Page) (_ []Subscription, _ *uuid.UUID, err error) {
	defer wrapErr(&err, "list subscriptions")
	rows, err := s.q.ListSubscriptions(ctx, dbsqlc.ListSubscriptionsParams{TenantKey: tenant, After: p.After, Lim: int32(p.limit())})
	if err != nil {
		return nil, nil, err
	}
	out := make([]Subscription, len(rows))
	for i, r := range rows {
		out[i] = subscriptionFromRow(r)
	}
	return out, nextCursor(out, p.limit(), func(s Subscription) uuid.UUID { return s.ID }), nil
}

// UpdateSubscription patches url, events and active (reactivating clears
// the disabled reason and the failure streak). The secret cannot change.
func (s *Store) UpdateSubscription(ctx context.Context, tenant string, id uuid.UUID, in SubscriptionInput) (_ Subscription, err error) {
	defer wrapErr(&err, "update subscription")
	if in.Secret != nil {
		return Subscription{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "secret", "the secret cannot be changed; create a new subscription")
	}
	cur, err := s.q.GetSubscription(ctx, dbsqlc.GetSubscriptionParams{TenantKey: tenant, ID: id})
	if err != nil {
		return Subscription{}, mapErr(err, "subscription")
	}
	p := dbsqlc.UpdateSubscriptionParams{TenantKey: tenant, ID: id, Url: cur.Url, Events: cur.Events, Active: cur.Active, Now: s.clock.Now()}
	if in.URL != nil {
		if err := s.validateURL(*in.URL); err != nil {
			return Subscription{}, err
		}
		p.Url = *in.URL
	}
	if in.Events != nil {
		if p.Events, err = validateEvents(*in.Events); err != nil {
			return Subscription{}, err
		}
	}
	if in.Active != nil {
		p.Active = *in.Active
	}
	row, err := s.q.UpdateSubscription(ctx, p)
	if err != nil {
		return Subscription{}, mapErr(err, "subscription")
	}
	return subscriptionFromRow(row), nil
}

// DeleteSubscription removes a subscription and its deliveries.
func (s *Store) DeleteSubscription(ctx context.Context, tenant string, id uuid.UUID, _ bool) (err error) {
	defer wrapErr(&err, "delete subscription")
	n, err := s.q.DeleteSubscription(ctx, dbsqlc.DeleteSubscriptionParams{TenantKey: tenant, ID: id})
	if err != nil {
		return err
	}
	if n == 0 {
		return dripdrop.NotFound("subscription")
	}
	return nil
}

// Redeliver schedules events again for one subscription: the single event
// eventID when since is false, else eventID and every later event of the
// feed order that the subscription's filter matches. It returns how
// many deliveries were scheduled.
func (s *Store) Redeliver(ctx context.Context, tenant string, id uuid.UUID, eventID int64, since bool) (_ int64, err error) {
	defer wrapErr(&err, "redeliver")
	sub, err := s.q.GetSubscription(ctx, dbsqlc.GetSubscriptionParams{TenantKey: tenant, ID: id})
	if err != nil {
		return 0, mapErr(err, "subscription")
	}
	events := append([]string{}, sub.Events...)
	n, err := s.q.RedeliverEvents(ctx, dbsqlc.RedeliverEventsParams{TenantKey: tenant, SubscriptionID: id, FromID: eventID, Single: !since, Events: events, Now: s.clock.Now()})
	if err != nil {
		return 0, mapErr(err, "event")
	}
	if n == 0 && !since {
		return 0, dripdrop.NotFound("event")
	}
	return n, nil
}

// Matches reports whether an event name matches a subscription filter of
// names and prefixes (empty: every event).
func Matches(filter []string, name string) bool {
	if len(filter) == 0 {
		return true
	}
	for _, f := range filter {
		if strings.HasPrefix(name, f) {
			return true
		}
	}
	return false
}

// FanOutResult reports one event the fan-out handled.
type FanOutResult struct {
	Name    string
	Matched int
}

// FanOut turns up to limit pending outbox events of the tenant into one
// delivery per matching active subscription, in one transaction (rows are
// leased with FOR UPDATE SKIP LOCKED, so replicas share the work).
func (s *Store) FanOut(ctx context.Context, tenant string, limit int) (_ []FanOutResult, err error) {
	defer wrapErr(&err, "fan out")
	var out []FanOutResult
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		out = out[:0]
		evs, err := q.LeasePendingOutbox(ctx, dbsqlc.LeasePendingOutboxParams{TenantKey: tenant, Lim: int32(limit)})
		if err != nil || len(evs) == 0 {
			return nil, err
		}
		subs, err := q.ActiveSubscriptionFilters(ctx, tenant)
		if err != nil {
			return nil, err
		}
		var subIDs []uuid.UUID
		var evIDs, fanned, none []int64
		for _, e := range evs {
			n := 0
			for _, sub := range subs {
				if Matches(sub.Events, e.Name) {
					subIDs, evIDs = append(subIDs, sub.ID), append(evIDs, e.ID)
					n++
				}
			}
			if n == 0 {
				none = append(none, e.ID)
			} else {
				fanned = append(fanned, e.ID)
			}
			out = append(out, FanOutResult{Name: e.Name, Matched: n})
		}
		if len(subIDs) > 0 {
			if err := q.InsertDeliveries(ctx, dbsqlc.InsertDeliveriesParams{TenantKey: tenant, SubscriptionIds: subIDs, EventIds: evIDs, Now: s.clock.Now()}); err != nil {
				return nil, err
			}
		}
		if len(fanned) > 0 {
			if err := q.SetOutboxStatus(ctx, dbsqlc.SetOutboxStatusParams{TenantKey: tenant, Status: "fanned_out", Ids: fanned}); err != nil {
				return nil, err
			}
		}
		if len(none) > 0 {
			return nil, q.SetOutboxStatus(ctx, dbsqlc.SetOutboxStatusParams{TenantKey: tenant, Status: "no_match", Ids: none})
		}
		return nil, nil
	})
	return out, err
}

// PublisherLag is the age of the tenant's oldest event not yet fanned out
// in seconds (zero when none is pending).
func (s *Store) PublisherLag(ctx context.Context, tenant string) (_ float64, err error) {
	defer wrapErr(&err, "publisher lag")
	sec, err := s.q.OutboxLagSeconds(ctx, dbsqlc.OutboxLagSecondsParams{TenantKey: tenant, Now: s.clock.Now()})
	return max(sec, 0), err
}

// Delivery is a leased webhook delivery: one event for one subscription.
type Delivery struct {
	TenantKey      string
	SubscriptionID uuid.UUID
	URL            string
	Secret         string
	Attempt        int // 1 for the first attempt
	Event          FeedEvent
}

// LeaseDeliveries leases up to limit due deliveries of the tenant until
// now+lease; a worker that dies leaves them due again when the lease lapses,
// and the retry carries the same event id.
func (s *Store) LeaseDeliveries(ctx context.Context, tenant string, limit int, lease time.Duration) (_ []Delivery, err error) {
	defer wrapErr(&err, "lease deliveries")
	now := s.clock.Now()
	rows, err := s.q.LeaseDeliveries(ctx, dbsqlc.LeaseDeliveriesParams{TenantKey: tenant, Now: now, LeaseUntil: now.Add(lease), Lim: int32(limit)})
	if err != nil {
		return nil, err
	}
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		secret, err := s.vault.Open(r.Secret, secretAD(tenant, r.SubscriptionID))
		if err != nil {
			return nil, err
		}
		out = append(out, Delivery{TenantKey: tenant, SubscriptionID: r.SubscriptionID, URL: r.Url, Secret: string(secret), Attempt: r.Attempts,
			Event: FeedEvent{ID: r.EventID, Name: r.Name, Time: r.OccurredAt.UTC(), TenantKey: tenant, Measurements: r.Measurements, Metadata: r.Metadata}})
	}
	return out, nil
}

// DeliveryOutcome is what one attempt produced.
type DeliveryOutcome struct {
	StatusCode int // 0: no response
	Latency    time.Duration
	Snippet    string
	Err        string
	// Success: a 2xx in time. Gone: 410, disable the subscription.
	Success, Gone bool
	// RetryAt is when to try again; zero when attempts are exhausted.
	RetryAt time.Time
}

// DisableAfter is how long a subscription may fail before it is disabled.
const DisableAfter = 5 * 24 * time.Hour

// RecordDelivery logs an attempt and moves the delivery on: delivered,
// retried at o.RetryAt, or failed; 410 and five days of failures disable the
// subscription (emitting dripdrop.telemetry.subscription_disabled).
func (s *Store) RecordDelivery(ctx context.Context, d Delivery, o DeliveryOutcome) (err error) {
	defer wrapErr(&err, "record delivery")
	var evs []event
	now := s.clock.Now()
	err = s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		evs = evs[:0]
		var code *int
		if o.StatusCode != 0 {
			code = &o.StatusCode
		}
		var errText *string
		if o.Err != "" {
			errText = &o.Err
		}
		if err := q.InsertDeliveryAttempt(ctx, dbsqlc.InsertDeliveryAttemptParams{
			TenantKey: d.TenantKey, SubscriptionID: d.SubscriptionID, EventID: d.Event.ID, Attempt: d.Attempt, StatusCode: code,
			LatencyMs: int(o.Latency / time.Millisecond), ResponseSnippet: o.Snippet, Error: errText, Now: now,
		}); err != nil {
			return evs, err
		}
		fin := dbsqlc.FinishDeliveryParams{TenantKey: d.TenantKey, SubscriptionID: d.SubscriptionID, EventID: d.Event.ID,
			LastError: errText, LastStatus: code, Now: now, NextAttemptAt: now}
		reason := ""
		switch {
		case o.Success:
			fin.Status = "delivered"
			if err := q.MarkSubscriptionHealthy(ctx, dbsqlc.MarkSubscriptionHealthyParams{TenantKey: d.TenantKey, ID: d.SubscriptionID}); err != nil {
				return evs, err
			}
		default:
			fin.Status = "pending"
			if o.Gone || o.RetryAt.IsZero() {
				fin.Status = "failed"
			} else {
				fin.NextAttemptAt = o.RetryAt
			}
			since, err := q.MarkSubscriptionFailing(ctx, dbsqlc.MarkSubscriptionFailingParams{TenantKey: d.TenantKey, ID: d.SubscriptionID, Now: now})
			if err != nil {
				return evs, err
			}
			switch {
			case o.Gone:
				reason = "gone"
			case now.Sub(since) >= DisableAfter:
				reason = "failing"
			}
		}
		if err := q.FinishDelivery(ctx, fin); err != nil {
			return evs, err
		}
		if reason == "" {
			return evs, nil
		}
		n, err := q.DisableSubscription(ctx, dbsqlc.DisableSubscriptionParams{TenantKey: d.TenantKey, ID: d.SubscriptionID, Reason: &reason, Now: now})
		if err != nil || n == 0 {
			return evs, err
		}
		evs = append(evs, evSubscriptionDisabled(d.TenantKey, d.SubscriptionID, reason))
		return evs, nil
	})
	if err != nil {
		return err
	}
	return nil
}

// JanitorTables are the tables the telemetry janitor prunes, in the order it
// prunes them.
var JanitorTables = []string{"webhook_delivery_attempts", "webhook_deliveries", "telemetry_outbox"}

// PruneTelemetry deletes the tenant's delivery log lines, finished
// deliveries and fanned-out events older than retention, by table.
func (s *Store) PruneTelemetry(ctx context.Context, tenant string, retention time.Duration) (_ map[string]int64, err error) {
	defer wrapErr(&err, "prune telemetry")
	cut := s.clock.Now().Add(-retention)
	out := map[string]int64{}
	if out["webhook_delivery_attempts"], err = s.q.DeleteOldDeliveryAttempts(ctx, dbsqlc.DeleteOldDeliveryAttemptsParams{TenantKey: tenant, AttemptedAt: cut}); err != nil {
		return out, err
	}
	if out["webhook_deliveries"], err = s.q.DeleteOldDeliveries(ctx, dbsqlc.DeleteOldDeliveriesParams{TenantKey: tenant, CreatedAt: cut}); err != nil {
		return out, err
	}
	out["telemetry_outbox"], err = s.q.DeleteOldOutbox(ctx, dbsqlc.DeleteOldOutboxParams{TenantKey: tenant, OccurredAt: cut})
	return out, err
}
