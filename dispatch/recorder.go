package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/telemetry"
)

// recorder groups the records of accepted messages (phase two) into
// shared transactions: a send whose message was accepted queues its record
// and waits; a flusher takes everything queued and records it with one
// MarkSentBatch (one round trip for the statements, one commit). With
// nothing queued a record goes out alone at once; under load the records
// that arrive during one commit share the next, so commits per send fall
// as the rate rises. A failed group is recorded again one message at a
// time, so one failing record never fails its neighbours; what still fails
// goes back to its send, which retries (recordSent).
type recorder struct {
	store   *db.Store
	log     *slog.Logger
	metrics telemetry.OutboxMetrics // DispatchPhase

	mu       sync.Mutex
	queue    []*recordReq
	flushers int
}

// Flushers recording at once (each one transaction in flight), and the
// most records one transaction takes.
const (
	recordFlushers = 1
	recordMaxBatch = 128
)

type recordReq struct {
	sent   db.Sent
	queued time.Time
	done   chan recordRes
}

// slowRecord is how long a record group may take, or wait in the queue,
// before it is logged: sends hold their adapter's place until recorded.
const slowRecord = 2 * time.Second

type recordRes struct {
	ok  bool
	err error
}

// record records one accepted message and reports whether this send still
// owned it (false: its lease was lost to a rescue).
func (r *recorder) record(ctx context.Context, sent db.Sent) (bool, error) {
	req := &recordReq{sent: sent, queued: time.Now(), done: make(chan recordRes, 1)}
	r.mu.Lock()
	r.queue = append(r.queue, req)
	start := r.flushers < recordFlushers
	if start {
		r.flushers++
	}
	r.mu.Unlock()
	if start {
		go r.flush(context.WithoutCancel(ctx))
	}
	res := <-req.done
	return res.ok, res.err
}

// flush records queued messages until the queue is empty.
func (r *recorder) flush(ctx context.Context) {
	for {
		r.mu.Lock()
		n := min(len(r.queue), recordMaxBatch)
		if n == 0 {
			r.flushers--
			r.mu.Unlock()
			return
		}
		group := make([]*recordReq, n)
		copy(group, r.queue)
		r.queue = append(r.queue[:0], r.queue[n:]...)
		r.mu.Unlock()
		if !r.store.Sharded(ctx) {
			r.write(ctx, group)
			continue
		}
		// Sharded by tenant: one transaction per tenant, each committing on
		// its tenant's worker alone.
		var tenants []string
		byTenant := map[string][]*recordReq{}
		for _, q := range group {
			t := q.sent.Job.TenantKey
			if byTenant[t] == nil {
				tenants = append(tenants, t)
			}
			byTenant[t] = append(byTenant[t], q)
		}
		for _, t := range tenants {
			r.write(ctx, byTenant[t])
		}
	}
}

func (r *recorder) write(ctx context.Context, group []*recordReq) {
	sent := make([]db.Sent, len(group))
	for i, q := range group {
		sent[i] = q.sent
	}
	start := time.Now()
	ok, err := r.store.MarkSentBatch(ctx, sent)
	took, waited := time.Since(start), start.Sub(group[0].queued)
	if r.metrics != nil {
		r.metrics.DispatchPhase("record", took.Seconds())
		r.metrics.DispatchPhase("record_wait", waited.Seconds())
	}
	if r.log != nil && (took > slowRecord || waited > slowRecord) {
		r.log.Warn("recording sends was slow", "sends", len(group), "took", took, "queued_for", waited, "err", err)
	}
	if err == nil {
		for i, q := range group {
			q.done <- recordRes{ok: ok[i]}
		}
		return
	}
	if len(group) == 1 {
		group[0].done <- recordRes{err: err}
		return
	}
	for _, q := range group {
		r.write(ctx, []*recordReq{q})
	}
}
