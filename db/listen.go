package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// WorkChannel is the LISTEN/NOTIFY channel that announces new due work;
// the payload is the tenant key.
const WorkChannel = "dripdrop_work"

// Listen delivers WorkChannel notifications to fn until ctx ends,
// reconnecting with backoff when the connection drops.
func (s *Store) Listen(ctx context.Context, fn func(tenant string)) {
	s.listen(ctx, WorkChannel, fn)
}

// ListenOutbox delivers OutboxChannel notifications (new outbox rows; the
// payload is the tenant key) to fn until ctx ends.
func (s *Store) ListenOutbox(ctx context.Context, fn func(tenant string)) {
	s.listen(ctx, OutboxChannel, fn)
}

func (s *Store) listen(ctx context.Context, channel string, fn func(tenant string)) {
	backoff := 100 * time.Millisecond
	loop := "listener"
	if channel != WorkChannel {
		loop = "outbox-listener"
	}
	outage := &Outage{Logger: s.log, Loop: loop}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, channel, fn, func() { backoff = 100 * time.Millisecond; outage.Note(nil) })
		if ctx.Err() != nil {
			return
		}
		outage.Note(err) // other errors: reconnect quietly, as before
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, fn func(string), connected func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	defer func() {
		// The connection returns to the pool: stop listening on it.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *")
	}()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}
