package ui

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/dripdrop/dripdrop"
)

// health reads an adapter's health report (GET /v1/adapters/{id}/health):
// its state transitions, oldest first, and its bounce/complaint window
// against the health thresholds (docs/health.md#rules).
func (h *Handler) health(r *http.Request, tenant string, a dripdrop.Adapter) ([]Transition, window, error) {
	rep, err := h.store.Health(r.Context(), tenant, a.ID)
	if err != nil {
		return nil, window{}, err
	}
	var ts []Transition
	for _, t := range rep.Transitions {
		if t.Action == "health_state_changed" {
			ts = append(ts, Transition{At: t.At, From: t.From, To: t.To, Reason: t.Reason, Source: t.Source})
		}
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].At.Before(ts[j].At) })
	w := window{
		Since: rep.Window.Since, Sent: rep.Window.Sent, Bounced: rep.Window.Bounced, Complained: rep.Window.Complained,
		BounceRate: rep.Window.BounceRate, ComplaintRate: rep.Window.ComplaintRate, SampleReached: rep.SampleReached,
		BounceThreshold: rep.Thresholds.BounceRate, ComplaintThreshold: rep.Thresholds.ComplaintRate, MinSample: rep.Thresholds.MinSample,
		Next: rep.NextTransition,
	}
	w.BounceOver = w.SampleReached && w.BounceRate >= w.BounceThreshold
	w.ComplaintOver = w.SampleReached && w.ComplaintRate >= w.ComplaintThreshold
	return ts, w, nil
}

// signal applies an operator's health signal (source dashboard), as POST
// /v1/adapters/{id}/health does.
func (h *Handler) signal(w http.ResponseWriter, r *http.Request, p *page, state dripdrop.HealthState, reason string) (string, error) {
	id, err := h.id(r, "adapter")
	if err != nil {
		return "", err
	}
	source := "dashboard"
	rep, err := h.store.HealthSignal(r.Context(), p.Tenant, id, dripdrop.HealthSignalInput{HealthState: &state, Source: &source, Reason: &reason})
	if err != nil {
		return "", err
	}
	msg := "The adapter is " + string(rep.HealthState) + "."
	if rep.RestingUntil != nil {
		msg = fmt.Sprintf("The adapter rests until %s.", rep.RestingUntil.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return redirect(w, r, "/ui/adapters/"+id.String(), msg)
}

// rest rests the adapter for its stored backoff.
func (h *Handler) rest(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	return h.signal(w, r, p, dripdrop.HealthResting, "operator_rest")
}

// resume puts the adapter back to active.
func (h *Handler) resume(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	return h.signal(w, r, p, dripdrop.HealthActive, "operator_resume")
}
