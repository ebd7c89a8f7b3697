package api

import (
	"net/http"

	"github.com/dripdrop/dripdrop/forecast"
)

// forecastRun answers POST /v1/forecast (docs/forecast.md): the tenant's snapshot,
// read in one read-only transaction, plus the request's hypothetical
// changes, simulated with the engine's rules. Nothing is written.
func (s *Server) forecastRun(w http.ResponseWriter, r *http.Request) error {
	var in forecast.Request
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	snap, err := s.store.ForecastSnapshot(r.Context(), tenantOf(r))
	if err != nil {
		return err
	}
	res, err := forecast.Run(snap, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}
