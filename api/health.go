package api

import (
	"context"
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
	if a.Auth == dripdrop.AuthOAuth2 {
		return s.verifyOAuth2(w, r, a)
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

// verifyOAuth2 verifies an oauth2 adapter: a token stage (the cached or a
// refreshed access token), then connect … AUTH with XOAUTH2/OAUTHBEARER.
func (s *Server) verifyOAuth2(w http.ResponseWriter, r *http.Request, a dripdrop.Adapter) error {
	res, err := s.checkOAuth2(r.Context(), tenantOf(r), a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// checkOAuth2 runs the verify of an oauth2 adapter (the API's and the
// dashboard's).
func (s *Server) checkOAuth2(ctx context.Context, tenant string, a dripdrop.Adapter) (dripdrop.VerifyResult, error) {
	if s.cfg.VerifyOAuth2 == nil || s.cfg.OAuth == nil {
		return dripdrop.VerifyResult{}, dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "OAuth2 adapter verification is not configured on this server")
	}
	creds, err := s.store.AdapterCredentials(ctx, tenant, a.ID)
	if err != nil {
		return dripdrop.VerifyResult{}, err
	}
	user := creds.Username
	if user == "" {
		user = a.FromAddress
	}
	res := s.cfg.VerifyOAuth2(ctx, creds, a.FromAddress, user, func(ctx context.Context) (string, error) {
		return s.cfg.OAuth.AccessToken(ctx, tenant, a.ID)
	})
	res.AdapterID = a.ID.String()
	return res, nil
}
