package ui

import (
	"context"
	"net/http"
	"time"
)

// feedKeyCheck is how often an open live feed asks whether its session's
// API key is still active; the feed ends within this long of a revocation.
var feedKeyCheck = 5 * time.Second

// feed streams the signed-in tenant's telemetry events as Server-Sent
// Events through the API's own stream (GET /v1/telemetry/stream, with the
// same ?after= and Last-Event-ID), so the browser needs no API key. Without a
// stream it answers 204, which tells EventSource not to reconnect. The
// stream is one long request, so besides the check when it opens, its key
// is checked every feedKeyCheck and the stream ends once the key is
// revoked (the reconnect then gets 401).
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	s, state, err := h.sessionValid(r, h.store.Now())
	if err != nil {
		http.Error(w, "the database is unavailable", http.StatusServiceUnavailable)
		return
	}
	if state != liveSession {
		if state == endedSession {
			h.setCookie(w, r, "", -1)
		}
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	if h.cfg.Stream == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go h.watchKey(ctx, cancel, s)
	h.cfg.Stream(w, r.WithContext(ctx), s.Tenant)
}

// watchKey cancels a live feed once its session's key is no longer active
// (or cannot be checked: the feed fails closed).
func (h *Handler) watchKey(ctx context.Context, cancel context.CancelFunc, s session) {
	t := time.NewTicker(feedKeyCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if active, err := h.store.APIKeyActive(ctx, s.Tenant, s.KeyID); err != nil || !active {
				cancel()
				return
			}
		}
	}
}
