package api

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// listDomains serves GET /v1/domains: the tenant's sender domains with
// their last preflight report (docs/preflight.md), by name, cursor-paginated.
func (s *Server) listDomains(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return dripdrop.Errorf(dripdrop.ECodeOutOfRange, "limit", "limit must be between 1 and 200")
		}
		limit = n
	}
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || len(b) == 0 || len(b) > 253 {
			return dripdrop.Errorf(dripdrop.ECodeInvalidCursor, "cursor", "cursor is not one this API returned")
		}
		after = string(b)
	}
	items, next, err := s.store.ListDomains(r.Context(), tenantOf(r), after, limit)
	if err != nil {
		return err
	}
	out := list[db.SenderDomain]{Data: items}
	if next != "" {
		c := base64.RawURLEncoding.EncodeToString([]byte(next))
		out.NextCursor = &c
	}
	return writeJSON(w, http.StatusOK, out)
}

// getDomain serves GET /v1/domains/{domain}.
func (s *Server) getDomain(w http.ResponseWriter, r *http.Request) error {
	d, err := s.store.GetDomain(r.Context(), tenantOf(r), r.PathValue("domain"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// checkDomain serves POST /v1/domains/{domain}/check: the checks run now
// (the body, optional, sets dkim_selectors and provider for this and later
// checks).
func (s *Server) checkDomain(w http.ResponseWriter, r *http.Request) error {
	var in db.DomainCheckInput
	// The body is optional: without one (and without a Content-Type) the
	// stored settings stand.
	if r.ContentLength > 0 || r.Header.Get("Content-Type") != "" {
		if err := decodeJSON(w, r, &in); err != nil {
			return err
		}
	}
	d, err := s.store.CheckDomain(r.Context(), tenantOf(r), r.PathValue("domain"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

// getSettings serves GET /v1/settings.
func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	st, err := s.store.Settings(r.Context(), tenantOf(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// updateSettings serves PATCH /v1/settings.
func (s *Server) updateSettings(w http.ResponseWriter, r *http.Request) error {
	var in db.TenantSettingsInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	st, err := s.store.UpdateSettings(r.Context(), tenantOf(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}
