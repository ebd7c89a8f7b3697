package ui

import "net/http"

// feed will stream the tenant's telemetry events; until the outbox feed
// exists it answers 204, which tells EventSource not to reconnect.
func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}
