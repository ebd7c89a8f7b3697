package telemetry

import "log/slog"

// OutboxMetrics is the observability surface of the telemetry outbox (the
// webhook subscription pipeline) and of the workers around it. Counter
// methods record a discrete occurrence; SetPublisherLag is a gauge set on
// every tick. Call sites depend on this interface, not on a backend:
// NoOp, Log and *Prometheus implement it. Adding a metric is additive (a
// new method, a no-op on existing implementations).
type OutboxMetrics interface {
	// OutboxEventsPublished counts events written to the outbox, in the
	// transaction of the change they report.
	OutboxEventsPublished(eventType string)
	// OutboxEventsFanOut counts deliveries created when the worker fans an
	// event out: matched is the number of subscription deliveries written.
	OutboxEventsFanOut(eventType string, matched int)
	// OutboxEventsNoMatch counts events no subscription matched ("why did
	// my webhook not fire?").
	OutboxEventsNoMatch(eventType string)
	// OutboxFailures counts worker-side failures; stage is one of "lease",
	// "list_subscriptions", "insert_delivery", "deliver", "update_status".
	OutboxFailures(stage string)
	// RedeliverRequests counts customer-driven replays; scope is "single"
	// or "since".
	RedeliverRequests(scope string)
	// JanitorRowsDeleted counts rows removed from table by the cleanup tick.
	JanitorRowsDeleted(table string, count int)
	// NotifyMissed counts work the fallback poll found that no LISTEN/NOTIFY
	// notification announced; a sustained rate means reconnect churn or
	// dropped notifications.
	NotifyMissed()
	// SetPublisherLag sets the age in seconds of the oldest pending outbox
	// row. Alert if it stays above 30 s.
	SetPublisherLag(seconds float64)
	// DispatchPhase observes how long one of the dispatcher's database
	// steps took: phase is "claim" (a claim round), "reserve" (one
	// reservation), "record" (one record group) or "record_wait" (how long
	// a record group's oldest send waited for it). Sends keep their
	// adapter's in-flight place until recorded, so a slow record phase
	// slows sending.
	DispatchPhase(phase string, seconds float64)
}

// DispatchPhases are the phases DispatchPhase observes.
var DispatchPhases = []string{"claim", "reserve", "record", "record_wait"}

// NoOp swallows every call: the default for embedding and for tests that
// do not look at metrics.
type NoOp struct{}

// OutboxEventsPublished does nothing.
func (NoOp) OutboxEventsPublished(string) {}

// OutboxEventsFanOut does nothing.
func (NoOp) OutboxEventsFanOut(string, int) {}

// OutboxEventsNoMatch does nothing.
func (NoOp) OutboxEventsNoMatch(string) {}

// OutboxFailures does nothing.
func (NoOp) OutboxFailures(string) {}

// RedeliverRequests does nothing.
func (NoOp) RedeliverRequests(string) {}

// JanitorRowsDeleted does nothing.
func (NoOp) JanitorRowsDeleted(string, int) {}

// NotifyMissed does nothing.
func (NoOp) NotifyMissed() {}

// SetPublisherLag does nothing.
func (NoOp) SetPublisherLag(float64) {}

// DispatchPhase does nothing.
func (NoOp) DispatchPhase(string, float64) {}

// Log writes one info line per metric call: message "metrics", then
// metric=<name> and the call's arguments as key=value attributes
// (e.g. msg=metrics metric=outbox_failures stage=lease). Log aggregators
// (Loki, CloudWatch, Datadog) can build counters and gauges from them.
type Log struct{ l *slog.Logger }

// NewLog returns a Log writing to l (slog.Default when l is nil).
func NewLog(l *slog.Logger) *Log {
	if l == nil {
		l = slog.Default()
	}
	return &Log{l: l}
}

func (l *Log) emit(metric string, args ...any) {
	lg := l.l
	if lg == nil {
		lg = slog.Default()
	}
	lg.Info("metrics", append([]any{"metric", metric}, args...)...)
}

// OutboxEventsPublished logs metric=outbox_events_published event_type=….
func (l *Log) OutboxEventsPublished(eventType string) {
	l.emit("outbox_events_published", "event_type", eventType)
}

// OutboxEventsFanOut logs metric=outbox_events_fanout event_type=… matched=….
func (l *Log) OutboxEventsFanOut(eventType string, matched int) {
	l.emit("outbox_events_fanout", "event_type", eventType, "matched", matched)
}

// OutboxEventsNoMatch logs metric=outbox_events_no_match event_type=….
func (l *Log) OutboxEventsNoMatch(eventType string) {
	l.emit("outbox_events_no_match", "event_type", eventType)
}

// OutboxFailures logs metric=outbox_failures stage=….
func (l *Log) OutboxFailures(stage string) { l.emit("outbox_failures", "stage", stage) }

// RedeliverRequests logs metric=redeliver_requests scope=….
func (l *Log) RedeliverRequests(scope string) { l.emit("redeliver_requests", "scope", scope) }

// JanitorRowsDeleted logs metric=janitor_rows_deleted table=… count=….
func (l *Log) JanitorRowsDeleted(table string, count int) {
	l.emit("janitor_rows_deleted", "table", table, "count", count)
}

// NotifyMissed logs metric=notify_missed.
func (l *Log) NotifyMissed() { l.emit("notify_missed") }

// SetPublisherLag logs metric=publisher_lag seconds=….
func (l *Log) SetPublisherLag(seconds float64) { l.emit("publisher_lag", "seconds", seconds) }

// DispatchPhase logs metric=dispatch_phase phase=… seconds=….
func (l *Log) DispatchPhase(phase string, seconds float64) {
	l.emit("dispatch_phase", "phase", phase, "seconds", seconds)
}

var (
	_ OutboxMetrics = NoOp{}
	_ OutboxMetrics = (*Log)(nil)
	_ OutboxMetrics = (*Prometheus)(nil)
)
