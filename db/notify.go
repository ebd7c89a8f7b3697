package db

import (
	"context"
	"sync"
	"time"
)

// notifier sends the hot path's LISTEN/NOTIFY wake-ups after the
// transactions that warrant them have committed, coalesced.
//
// A NOTIFY issued inside a transaction takes PostgreSQL's database-wide
// notification lock at commit and holds it through the commit's WAL flush,
// so transactions that notify commit one at a time: no group commit, and a
// send's record would wait on every other send's fsync. Notifying after
// commit also means a woken listener always finds the change committed. A
// wake-up is only a hint (the loops poll as a fallback), so one lost in a
// crash between commit and notify costs at most a poll interval.
//
// Wake-ups that arrive while a NOTIFY is in flight are merged: each
// (channel, payload) pair goes out once in the next statement.
type notifier struct {
	s       *Store
	mu      sync.Mutex
	pending map[note]struct{}
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type note struct{ channel, payload string }

func newNotifier(s *Store) *notifier {
	n := &notifier{s: s, pending: map[note]struct{}{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go n.run()
	return n
}

// add queues a wake-up on channel with payload (a tenant key).
func (n *notifier) add(channel, payload string) {
	n.mu.Lock()
	n.pending[note{channel, payload}] = struct{}{}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		select {
		case <-n.kick:
			n.flush()
		case <-n.stop:
			n.flush()
			return
		}
	}
}

// flush sends every pending wake-up in one statement.
func (n *notifier) flush() {
	n.mu.Lock()
	if len(n.pending) == 0 {
		n.mu.Unlock()
		return
	}
	channels, payloads := make([]string, 0, len(n.pending)), make([]string, 0, len(n.pending))
	for k := range n.pending {
		channels, payloads = append(channels, k.channel), append(payloads, k.payload)
	}
	clear(n.pending)
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.s.pool.Exec(ctx, `SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS u(c, p)`, channels, payloads); err != nil {
		// The listeners' fallback polls find the work; the outage itself
		// is reported by the loops that need the database.
		n.s.log.Debug("sending wake-up notifications failed", "channels", len(channels), "err", err)
	}
}

// close sends what is pending and stops (once; later calls wait).
func (n *notifier) close() {
	n.once.Do(func() { close(n.stop) })
	<-n.done
}

// wake announces new due work of tenant to every engine (WorkChannel),
// after the caller's transaction has committed.
func (s *Store) wake(tenant string) { s.notes.add(WorkChannel, tenant) }
