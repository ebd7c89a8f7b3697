package ui

import "net/http"

// feed streams the signed-in tenant's telemetry events as Server-Sent
// Events through the API's own stream (GET /v1/telemetry/stream, with the
// same ?after= and Last-Event-ID), so the browser needs no API key. Without a
// stream it answers 204, which tells EventSource not to reconnect.
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	s, ok := h.readSession(r, h.store.Now())
	if !ok {
		http.Error(w, "sign in first", http.StatusUnauthorized)
		return
	}
	if h.cfg.Stream == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.cfg.Stream(w, r, s.Tenant)
}
