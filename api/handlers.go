package api

import (
	"net/http"
	"strings"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// Tenants and keys (admin).

type createTenantRequest struct {
	TenantKey *string `json:"tenant_key"`
	Name      *string `json:"name"`
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request) error {
	var in createTenantRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.TenantKey == nil {
		return dripdrop.Errorf(dripdrop.ECodeRequired, "tenant_key", "tenant_key is required")
	}
	name := ""
	if in.Name != nil {
		name = *in.Name
	}
	t, k, err := s.store.CreateTenant(r.Context(), *in.TenantKey, name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"tenant": t, "api_key": k})
}

type createKeyRequest struct {
	Name *string `json:"name"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) error {
	var in createKeyRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	name := ""
	if in.Name != nil {
		name = *in.Name
	}
	k, err := s.store.CreateAPIKey(r.Context(), r.PathValue("tenant_key"), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.store.ListAPIKeys(r.Context(), r.PathValue("tenant_key"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(keys, nil))
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	k, err := s.store.RevokeAPIKey(r.Context(), r.PathValue("tenant_key"), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, k)
}

// Adapters.

// Pools and members.

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in dripdrop.MemberInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	m, err := s.store.AddPoolMember(r.Context(), tenantOf(r), id, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, m)
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	adapter, err := pathID(r, "adapter_id")
	if err != nil {
		return err
	}
	var in dripdrop.MemberInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	m, err := s.store.UpdatePoolMember(r.Context(), tenantOf(r), id, adapter, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	adapter, err := pathID(r, "adapter_id")
	if err != nil {
		return err
	}
	if err := s.store.RemovePoolMember(r.Context(), tenantOf(r), id, adapter); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Sequences, versions and budgets.

type createVersionRequest struct {
	Activate *bool `json:"activate"`
	dripdrop.VersionInput
}

func (s *Server) createVersion(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in createVersionRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	seq, err := s.store.CreateVersion(r.Context(), tenantOf(r), id, in.VersionInput, in.Activate != nil && *in.Activate)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, seq)
}

func (s *Server) updateVersion(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := pathInt(r, "n")
	if err != nil {
		return err
	}
	var in dripdrop.VersionInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	seq, err := s.store.UpdateDraftVersion(r.Context(), tenantOf(r), id, n, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, seq)
}

func (s *Server) activateVersion(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := pathInt(r, "n")
	if err != nil {
		return err
	}
	seq, err := s.store.ActivateVersion(r.Context(), tenantOf(r), id, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, seq)
}

func (s *Server) putBudget(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	n, err := pathInt(r, "n")
	if err != nil {
		return err
	}
	adapter, err := pathID(r, "adapter_id")
	if err != nil {
		return err
	}
	var in dripdrop.BudgetInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	b, err := s.store.PutBudget(r.Context(), tenantOf(r), id, n, adapter, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}

// Suppressions.

// suppressionFilter reads ?email= or ?domain=.
func suppressionFilter(r *http.Request, required bool) (db.SuppressionFilter, error) {
	q := r.URL.Query()
	email, domain := q.Get("email"), q.Get("domain")
	switch {
	case email != "" && domain != "":
		return db.SuppressionFilter{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "domain", "filter by email or by domain, not both")
	case email != "":
		e, err := dripdrop.ParseEmail(email)
		if err != nil {
			return db.SuppressionFilter{}, dripdrop.Errorf(dripdrop.ECodeInvalidEmail, "email", "email is not a valid address")
		}
		return db.SuppressionFilter{Kind: "email", Value: strings.ToLower(e)}, nil
	case domain != "":
		d, err := dripdrop.ParseDomain(domain)
		if err != nil {
			return db.SuppressionFilter{}, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "domain", "domain is not a valid domain name")
		}
		return db.SuppressionFilter{Kind: "domain", Value: d}, nil
	}
	if required {
		return db.SuppressionFilter{}, dripdrop.Errorf(dripdrop.ECodeRequired, "email", "give ?email= or ?domain=")
	}
	return db.SuppressionFilter{}, nil
}

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	f, err := suppressionFilter(r, false)
	if err != nil {
		return err
	}
	items, next, err := s.store.ListSuppressions(r.Context(), tenantOf(r), f, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(items, next))
}

func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) error {
	f, err := suppressionFilter(r, true)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSuppression(r.Context(), tenantOf(r), f.Kind, f.Value); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
