package api

import (
	"net/http"

	"github.com/dripdrop/dripdrop"
)

// verifyAdapter: POST /v1/adapters/{id}/verify — connect, EHLO, STARTTLS
// and AUTH against the adapter's server, nothing sent. A failed
// check is still a 200: the report says which stage failed and what the
// server answered.
func (s *Server) verifyAdapter(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	a, err := s.store.GetAdapter(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	if !a.CredentialsSet {
		return dripdrop.Errorf(dripdrop.ECodeInvalidState, "credentials", "the adapter has no connection settings to verify")
	}
	if s.cfg.Verify == nil {
		return dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "adapter verification is not configured on this server")
	}
	creds, err := s.store.AdapterCredentials(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	res := s.cfg.Verify(r.Context(), creds, a.FromAddress)
	res.AdapterID = id.String()
	return writeJSON(w, http.StatusOK, res)
}
