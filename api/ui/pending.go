package ui

import "net/http"

func (h *Handler) feed(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) sequence(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "sequence")
	if err != nil {
		return "", err
	}
	s, err := h.store.GetSequence(r.Context(), p.Tenant, id)
	if err != nil {
		return "", err
	}
	p.Title, p.Nav, p.Data = s.Name, "sequences", s
	return "sequence", nil
}

func (h *Handler) enrollments(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	p.Title, p.Nav = "Enrollments", "enrollments"
	return "enrollments", nil
}
