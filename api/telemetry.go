package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// Telemetry feed, stream and subscriptions
// (docs/telemetry.md#subscriptions-webhooks-event-feed-and-stream).

// feedQuery reads ?after=, ?limit= and ?prefix= of the event feed.
func feedQuery(r *http.Request) (after int64, limit int, prefix string, err error) {
	q := r.URL.Query()
	limit = 100
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return 0, 0, "", dripdrop.Errorf(dripdrop.ECodeInvalidCursor, "after", "after must be an event id")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, "", dripdrop.Errorf(dripdrop.ECodeOutOfRange, "limit", "limit must be between 1 and 1000")
		}
	}
	return after, limit, q.Get("prefix"), nil
}

// feedPage is the answer of GET /v1/telemetry/events: the events and the
// cursor to continue after (the last id, or the request's after when empty).
type feedPage struct {
	Data      []db.FeedEvent `json:"data"`
	NextAfter int64          `json:"next_after"`
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	after, limit, prefix, err := feedQuery(r)
	if err != nil {
		return err
	}
	evs, err := s.store.Feed(r.Context(), tenantOf(r), after, prefix, limit)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []db.FeedEvent{}
	}
	if len(evs) > 0 {
		after = evs[len(evs)-1].ID
	}
	return writeJSON(w, http.StatusOK, feedPage{Data: evs, NextAfter: after})
}

const streamPath = "/v1/telemetry/stream"

// streamPoll and streamHeartbeat pace GET /v1/telemetry/stream.
var (
	streamPoll      = 500 * time.Millisecond
	streamHeartbeat = 15 * time.Second
)

// stream serves the feed as Server-Sent Events: one `event: <name>`,
// `id: <id>`, `data: <event JSON>` block per event, a `: heartbeat` comment
// every 15 s, resuming after Last-Event-ID (or ?after=).
func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	after, _, prefix, err := feedQuery(r)
	if err != nil {
		return err
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			return dripdrop.Errorf(dripdrop.ECodeInvalidCursor, "Last-Event-ID", "Last-Event-ID must be an event id")
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // the server's write timeout would cut the stream
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": connected\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	ctx := r.Context()
	tenant := tenantOf(r)
	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	lastWrite := time.Now()
	for {
		evs, err := s.store.Feed(ctx, tenant, after, prefix, 500)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("event stream read failed", "err", err)
			}
			return nil // the headers are out: end the stream, the client resumes
		}
		for _, e := range evs {
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Name, b); err != nil {
				return nil
			}
			after = e.ID
		}
		if len(evs) > 0 || time.Since(lastWrite) >= streamHeartbeat {
			if len(evs) == 0 {
				if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
					return nil
				}
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
			lastWrite = time.Now()
		}
		if len(evs) == 500 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
	}
}

type redeliverRequest struct {
	EventID *int64 `json:"event_id"`
	Since   *int64 `json:"since"`
}

// redeliver replays one event (event_id) or every event from a cursor on
// (since) to one subscription.
func (s *Server) redeliver(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in redeliverRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	var from int64
	scope, field := "single", "event_id"
	switch {
	case in.EventID != nil && in.Since != nil:
		return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "since", "give event_id or since, not both")
	case in.EventID != nil:
		from = *in.EventID
	case in.Since != nil:
		from, scope, field = *in.Since, "since", "since"
	default:
		return dripdrop.Errorf(dripdrop.ECodeRequired, "event_id", "event_id or since is required")
	}
	if from < 1 {
		return dripdrop.Errorf(dripdrop.ECodeOutOfRange, field, "event ids are positive")
	}
	n, err := s.store.Redeliver(r.Context(), tenantOf(r), id, from, scope == "since")
	if err != nil {
		return err
	}
	if s.cfg.OutboxMetrics != nil {
		s.cfg.OutboxMetrics.RedeliverRequests(scope)
	}
	return writeJSON(w, http.StatusAccepted, map[string]any{"scope": scope, "scheduled": n})
}
