package ui

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// health reads an adapter's transition history (from the audit log, oldest
// first) and its bounce/complaint window against the thresholds.
func (h *Handler) health(r *http.Request, tenant string, a dripdrop.Adapter, days []db.DayCount) ([]Transition, window, error) {
	entries, err := h.store.Audit(r.Context(), tenant, "adapter", a.ID)
	if err != nil {
		return nil, window{}, err
	}
	var ts []Transition
	for _, e := range entries {
		if e.Action != "health_state_changed" {
			continue
		}
		var d struct {
			From, To, Reason, Source string
			At                       *time.Time
		}
		_ = json.Unmarshal(e.Data, &d)
		at := e.CreatedAt
		if d.At != nil {
			at = *d.At
		}
		ts = append(ts, Transition{At: at, From: d.From, To: d.To, Reason: d.Reason, Source: d.Source})
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].At.Before(ts[j].At) })
	w := window{Since: a.HealthSince, BounceThreshold: 0.02, ComplaintThreshold: 0.003, MinSample: 20}
	for _, d := range days {
		w.Sent += d.Sent
		w.Bounced += d.Bounced
		w.Complained += d.Complained
	}
	w.finish()
	return ts, w, nil
}

func (w *window) finish() {
	if w.Sent > 0 {
		w.BounceRate = float64(w.Bounced) / float64(w.Sent)
		w.ComplaintRate = float64(w.Complained) / float64(w.Sent)
	}
	w.SampleReached = w.Sent >= w.MinSample
	w.BounceOver = w.BounceRate >= w.BounceThreshold
	w.ComplaintOver = w.ComplaintRate >= w.ComplaintThreshold
}

func (h *Handler) rest(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	return "", dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "health signals are not available yet")
}

func (h *Handler) resume(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	return "", dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "health signals are not available yet")
}

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

// verifyResult stands in for dripdrop.VerifyResult until the verify API lands.
type verifyResult = struct {
	OK          bool
	FailedStage string
	Stages      []struct {
		Stage        string
		OK           bool
		DurationMS   float64
		Code         int
		Reply, Error string
	}
}
