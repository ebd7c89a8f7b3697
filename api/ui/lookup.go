package ui

import (
	"html/template"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

type sequenceData struct {
	Sequence dripdrop.Sequence
	Versions []versionData
}

type versionData struct {
	db.VersionStats
	Funnel      []FunnelStep
	Chart       template.HTML
	StopReasons []kv
	States      []kv
	Steps       int
	Categories  []kv
	Variants    []variantStep
	Branches    []branchRow
	BranchChart template.HTML
}

// sequence shows each version's funnel by step and its stop reasons (GET
// /v1/sequences/{id}/stats).
func (h *Handler) sequence(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "sequence")
	if err != nil {
		return "", err
	}
	s, err := h.store.GetSequence(r.Context(), p.Tenant, id)
	if err != nil {
		return "", err
	}
	st, err := h.store.SequenceStats(r.Context(), p.Tenant, id)
	if err != nil {
		return "", err
	}
	d := sequenceData{Sequence: s}
	defs := map[int]dripdrop.SequenceVersion{}
	for _, v := range s.Versions {
		defs[v.Version] = v
	}
	for _, v := range st.Versions {
		vd := versionData{VersionStats: v, StopReasons: sortedKV(v.ByStopReason), States: sortedKV(v.ByState), Categories: sortedKV(v.ByCategory)}
		vd.Variants = variantSteps(defs[v.Version], v)
		vd.Branches = branchRows(defs[v.Version].Branches)
		vd.BranchChart = branchArrows(s.Key, vd.Branches)
		for _, step := range v.Steps {
			vd.Funnel = append(vd.Funnel, FunnelStep{Label: step.Key, Scheduled: step.Scheduled, Sent: step.Sent, Failed: step.Failed})
		}
		vd.Chart = funnel(v.Enrollments, vd.Funnel)
		d.Versions = append(d.Versions, vd)
	}
	p.Title, p.Nav, p.Data = s.Name, "sequences", d
	return "sequence", nil
}

type enrollmentsData struct {
	Query      url.Values
	Searched   bool
	Results    []dripdrop.Enrollment
	Next       string
	Sequences  []dripdrop.Sequence
	Adapters   []dripdrop.Adapter
	States     []string
	StopReason []string
}

var (
	enrollmentStates = []string{"active", "paused", "completed", "stopped", "cancelled"}
	stopReasons      = []string{"replied", "bounced", "complained", "unsubscribed", "suppressed", "company_replied", "routed"}
)

// enrollments searches a tenant's enrollments (GET /v1/enrollments) by
// e-mail, sequence, state, stop reason and adapter; an id opens one.
func (h *Handler) enrollments(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	q := r.URL.Query()
	if v := q.Get("id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return "", dripdrop.NotFound("enrollment")
		}
		http.Redirect(w, r, "/ui/enrollments/"+id.String(), http.StatusSeeOther)
		return "", nil
	}
	ctx := r.Context()
	d := enrollmentsData{Query: q, States: enrollmentStates, StopReason: stopReasons}
	var err error
	if d.Sequences, _, err = h.store.ListSequences(ctx, p.Tenant, db.Page{Limit: maxListed}); err != nil {
		return "", err
	}
	if d.Adapters, _, err = h.store.ListAdapters(ctx, p.Tenant, db.Page{Limit: maxListed}); err != nil {
		return "", err
	}
	var f db.EnrollmentFilter
	opt := func(name string) *string {
		if v := q.Get(name); v != "" {
			return &v
		}
		return nil
	}
	f.Email, f.SequenceKey, f.State, f.StopReason, f.PauseReason = opt("email"), opt("sequence_key"), opt("state"), opt("stop_reason"), opt("pause_reason")
	if v := q.Get("adapter_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return "", dripdrop.Errorf(dripdrop.ECodeInvalidValue, "adapter_id", "adapter_id is not an id")
		}
		f.AdapterID = &id
	}
	pg := db.Page{Limit: 50}
	if v := q.Get("after"); v != "" {
		if pg.After, err = uuid.Parse(v); err != nil {
			return "", dripdrop.Errorf(dripdrop.ECodeInvalidCursor, "after", "after is not an id")
		}
	}
	res, next, err := h.store.SearchEnrollments(ctx, p.Tenant, f, pg)
	if err != nil {
		return "", err
	}
	d.Searched, d.Results = len(q) > 0, res
	if next != nil {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("after", next.String())
		d.Next = "/ui/enrollments?" + nq.Encode()
	}
	p.Title, p.Nav, p.Data = "Enrollments", "enrollments", d
	return "enrollments", nil
}
