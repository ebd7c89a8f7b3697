package api

import (
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

var (
	enrollmentStates = []string{"active", "paused", "completed", "stopped", "cancelled"}
	stopReasons      = []string{"replied", "bounced", "complained", "unsubscribed", "suppressed", "company_replied", "routed"}
)

// searchEnrollments serves GET /v1/enrollments?sequence_key=&state=&
// pause_reason=&stop_reason=&email=&adapter_id= (cursor-paginated).
func (s *Server) searchEnrollments(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opt := func(name string, allowed []string) (*string, error) {
		v := q.Get(name)
		if v == "" {
			return nil, nil
		}
		if allowed != nil && !slices.Contains(allowed, v) {
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, name, "%s must be one of %v", name, allowed)
		}
		return &v, nil
	}
	var f db.EnrollmentFilter
	for _, o := range []struct {
		name    string
		allowed []string
		dst     **string
	}{
		{"sequence_key", nil, &f.SequenceKey}, {"state", enrollmentStates, &f.State}, {"pause_reason", nil, &f.PauseReason},
		{"stop_reason", stopReasons, &f.StopReason}, {"email", nil, &f.Email},
	} {
		if *o.dst, err = opt(o.name, o.allowed); err != nil {
			return err
		}
	}
	if v := q.Get("adapter_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "adapter_id", "adapter_id must be a UUID")
		}
		f.AdapterID = &id
	}
	items, next, err := s.store.SearchEnrollments(r.Context(), tenantOf(r), f, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(items, next))
}
