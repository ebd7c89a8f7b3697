package ui

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/health"
	"github.com/dripdrop/dripdrop/telemetry"
)

var randRead = rand.Read

var funcs = template.FuncMap{
	"pct":   pct,
	"meter": meter,
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return "—"
	},
	"str": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
	"num": func(p *int) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprint(*p)
	},
	"score": func(p *float64) string {
		if p == nil {
			return "—"
		}
		return fmt.Sprintf("%.2f", *p)
	},
	"short": func(id uuid.UUID) string { return id.String()[:8] },
	"deref": func(id *uuid.UUID) uuid.UUID { return *id },
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
}

// maxListed bounds the rows a dashboard list reads (one page of the API).
const maxListed = 200

func (h *Handler) id(r *http.Request, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, dripdrop.NotFound(what)
	}
	return id, nil
}

// adapterRow is an adapter with today's capacity.
type adapterRow struct {
	dripdrop.Adapter
	Capacity db.Capacity
	Pins     int
}

func (h *Handler) adapterRows(r *http.Request, tenant string) ([]adapterRow, error) {
	ads, _, err := h.store.ListAdapters(r.Context(), tenant, db.Page{Limit: maxListed})
	if err != nil {
		return nil, err
	}
	pins, err := h.store.PinCounts(r.Context(), tenant)
	if err != nil {
		return nil, err
	}
	out := make([]adapterRow, len(ads))
	for i, a := range ads {
		c, err := h.store.AdapterCapacity(r.Context(), tenant, a.ID)
		if err != nil {
			return nil, err
		}
		out[i] = adapterRow{Adapter: a, Capacity: c, Pins: pins[a.ID]}
	}
	return out, nil
}

type overviewData struct {
	Adapters   []adapterRow
	Sent       int  // all adapters
	CapSent    int  // adapters with a cap
	Cap        *int // sum of today's effective caps (nil: no capped adapter)
	Uncapped   int
	ByState    map[string]int
	Today      db.TenantDay
	Deferrals  []kv
	FeedAfter  int64  // the live feed starts after this event id
	EventNames string // the catalog's event names, space-separated
}

type kv struct {
	Key   string
	Value int
}

func sortedKV[K ~string](m map[K]int) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{string(k), v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	rows, err := h.adapterRows(r, p.Tenant)
	if err != nil {
		return "", err
	}
	d := overviewData{Adapters: rows, ByState: map[string]int{}}
	for _, a := range rows {
		d.Sent += a.Capacity.Sent
		d.ByState[string(a.HealthState)]++
		if a.Capacity.EffectiveCap == nil {
			d.Uncapped++
			continue
		}
		if d.Cap == nil {
			d.Cap = new(int)
		}
		*d.Cap += *a.Capacity.EffectiveCap
		d.CapSent += a.Capacity.Sent
	}
	if d.Today, err = h.store.TenantToday(r.Context(), p.Tenant); err != nil {
		return "", err
	}
	d.Deferrals = sortedKV(d.Today.Deferrals)
	latest, err := h.store.LatestEventID(r.Context(), p.Tenant)
	if err != nil {
		return "", err
	}
	d.FeedAfter = max(latest-feedBacklog, 0)
	d.EventNames = strings.Join(telemetry.Events(), " ")
	p.Title, p.Nav, p.Data = "Overview", "overview", d
	return "overview", nil
}

func (h *Handler) adapters(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	rows, err := h.adapterRows(r, p.Tenant)
	if err != nil {
		return "", err
	}
	p.Title, p.Nav, p.Data = "Adapters", "adapters", rows
	return "adapters", nil
}

type adapterData struct {
	Adapter     dripdrop.Adapter
	Capacity    db.Capacity
	Days        []db.DayCount
	Chart       template.HTML
	Transitions []Transition
	Window      window
	Verify      *dripdrop.VerifyResult
	CanVerify   bool
	// Domain is the preflight report of the From domain (nil before the
	// domain is known).
	Domain *db.SenderDomain
	// Sync is the mailbox sync state; nil without imap settings.
	Sync *dripdrop.MailboxSync
	// Connect lists the connect buttons: Reconnect for an oauth2
	// adapter, Connect Google / Connect Microsoft for the tenant's apps.
	Connect []connectButton
}

// connectButton is one OAuth2 connect action of the adapter page.
type connectButton struct {
	Label string
	AppID uuid.UUID
}

// window is the adapter's recent bounce and complaint record against the
// health thresholds (docs/health.md#rules).
type window struct {
	Since                     time.Time
	Sent, Bounced, Complained int
	BounceRate, ComplaintRate float64
	BounceThreshold           float64
	ComplaintThreshold        float64
	MinSample                 int
	BounceOver, ComplaintOver bool
	SampleReached             bool
	Next                      *health.Next
}

const chartDays = 30

// feedBacklog is how many recent events the live feed shows on load.
const feedBacklog = 20

func (h *Handler) adapterData(r *http.Request, tenant string, id uuid.UUID) (adapterData, error) {
	ctx := r.Context()
	a, err := h.store.GetAdapter(ctx, tenant, id)
	if err != nil {
		return adapterData{}, err
	}
	d := adapterData{Adapter: a, CanVerify: h.cfg.Verify != nil}
	if a.IMAP != nil {
		st, err := h.store.MailboxSync(ctx, tenant, id)
		if err != nil {
			return d, err
		}
		d.Sync = &st
	}
	if d.Connect, err = h.connectButtons(r, tenant, a); err != nil {
		return d, err
	}
	if at := strings.LastIndexByte(a.FromAddress, '@'); at >= 0 {
		dom, err := h.store.GetDomain(ctx, tenant, a.FromAddress[at+1:])
		if err == nil {
			d.Domain = &dom
		} else if dripdrop.ErrorCode(err) != dripdrop.ECodeNotFound && dripdrop.ErrorCode(err) != dripdrop.ECodeInvalidValue {
			return d, err
		}
	}
	if d.Capacity, err = h.store.AdapterCapacity(ctx, tenant, id); err != nil {
		return d, err
	}
	if d.Days, err = h.store.AdapterDaily(ctx, tenant, id, chartDays); err != nil {
		return d, err
	}
	if d.Transitions, d.Window, err = h.health(r, tenant, a); err != nil {
		return d, err
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil {
		loc = time.UTC
	}
	d.Chart = adapterChart(d.Days, stateSpans(d.Days, loc, d.Transitions, string(a.HealthState)), d.Window.BounceThreshold, d.Window.ComplaintThreshold)
	// Newest first for the history table.
	for i, j := 0, len(d.Transitions)-1; i < j; i, j = i+1, j-1 {
		d.Transitions[i], d.Transitions[j] = d.Transitions[j], d.Transitions[i]
	}
	return d, nil
}

func (h *Handler) adapter(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "adapter")
	if err != nil {
		return "", err
	}
	d, err := h.adapterData(r, p.Tenant, id)
	if err != nil {
		return "", err
	}
	p.Title, p.Nav, p.Data = d.Adapter.Name, "adapters", d
	return "adapter", nil
}

// redirect answers a POST action with 303 to a page and a short message.
func redirect(w http.ResponseWriter, r *http.Request, to, flash string) (string, error) {
	http.Redirect(w, r, to+"?flash="+template.URLQueryEscaper(flash), http.StatusSeeOther)
	return "", nil
}

func (h *Handler) verify(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "adapter")
	if err != nil {
		return "", err
	}
	d, err := h.adapterData(r, p.Tenant, id)
	if err != nil {
		return "", err
	}
	if d.Adapter.Auth == dripdrop.AuthOAuth2 {
		if h.cfg.VerifyOAuth2 == nil {
			return "", dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "OAuth2 adapter verification is not configured on this server")
		}
		res, err := h.cfg.VerifyOAuth2(r.Context(), p.Tenant, d.Adapter)
		if err != nil {
			return "", err
		}
		d.Verify = &res
		p.Title, p.Nav, p.Data = d.Adapter.Name, "adapters", d
		return "adapter", nil
	}
	if !d.Adapter.CredentialsSet {
		return "", dripdrop.Errorf(dripdrop.ECodeInvalidState, "credentials", "the adapter has no connection settings to verify")
	}
	if h.cfg.Verify == nil {
		return "", dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "adapter verification is not configured on this server")
	}
	creds, err := h.store.AdapterCredentials(r.Context(), p.Tenant, id)
	if err != nil {
		return "", err
	}
	res := h.cfg.Verify(r.Context(), creds, d.Adapter.FromAddress)
	res.AdapterID = id.String()
	d.Verify = &res
	p.Title, p.Nav, p.Data = d.Adapter.Name, "adapters", d
	return "adapter", nil
}

// syncNow asks for the adapter's mailbox to be synced now.
func (h *Handler) syncNow(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "adapter")
	if err != nil {
		return "", err
	}
	if _, err := h.store.RequestMailboxSync(r.Context(), p.Tenant, id); err != nil {
		return "", err
	}
	return redirect(w, r, "/ui/adapters/"+id.String(), "Mailbox sync requested; it runs within a few seconds.")
}

type poolRow struct {
	dripdrop.Pool
	Members []memberRow
}

type memberRow struct {
	dripdrop.PoolMember
	Adapter         dripdrop.Adapter
	EffectiveWeight float64
	Pins            int
}

func (h *Handler) poolRows(r *http.Request, tenant string, pools []dripdrop.Pool) ([]poolRow, error) {
	ads, _, err := h.store.ListAdapters(r.Context(), tenant, db.Page{Limit: maxListed})
	if err != nil {
		return nil, err
	}
	byID := make(map[uuid.UUID]dripdrop.Adapter, len(ads))
	for _, a := range ads {
		byID[a.ID] = a
	}
	pins, err := h.store.PinCounts(r.Context(), tenant)
	if err != nil {
		return nil, err
	}
	out := make([]poolRow, len(pools))
	for i, pl := range pools {
		out[i].Pool = pl
		for _, m := range pl.Members {
			a, ok := byID[m.AdapterID]
			if !ok {
				if a, err = h.store.GetAdapter(r.Context(), tenant, m.AdapterID); err != nil {
					a = dripdrop.Adapter{ID: m.AdapterID, Name: "(deleted)"}
				}
			}
			out[i].Members = append(out[i].Members, memberRow{PoolMember: m, Adapter: a, EffectiveWeight: effectiveWeight(m, a), Pins: pins[m.AdapterID]})
		}
	}
	return out, nil
}

// effectiveWeight is the member's WDRR weight as pinning uses it
// (docs/sending.md#pinning):
// the weight scaled by the adapter's health score when one is set; zero when
// the member is not eligible by state.
func effectiveWeight(m dripdrop.PoolMember, a dripdrop.Adapter) float64 {
	if !m.Active || !a.Active || a.HealthState == dripdrop.HealthResting {
		return 0
	}
	w := float64(m.Weight)
	if a.HealthScore != nil {
		w *= *a.HealthScore
	}
	return w
}

func (h *Handler) pools(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	pools, _, err := h.store.ListPools(r.Context(), p.Tenant, db.Page{Limit: maxListed})
	if err != nil {
		return "", err
	}
	rows, err := h.poolRows(r, p.Tenant, pools)
	if err != nil {
		return "", err
	}
	p.Title, p.Nav, p.Data = "Pools", "pools", rows
	return "pools", nil
}

func (h *Handler) pool(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "pool")
	if err != nil {
		return "", err
	}
	pl, err := h.store.GetPool(r.Context(), p.Tenant, id)
	if err != nil {
		return "", err
	}
	rows, err := h.poolRows(r, p.Tenant, []dripdrop.Pool{pl})
	if err != nil {
		return "", err
	}
	p.Title, p.Nav, p.Data = pl.Name, "pools", rows
	return "pools", nil
}

func (h *Handler) sequences(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	seqs, _, err := h.store.ListSequences(r.Context(), p.Tenant, db.Page{Limit: maxListed})
	if err != nil {
		return "", err
	}
	p.Title, p.Nav, p.Data = "Sequences", "sequences", seqs
	return "sequences", nil
}

type enrollmentData struct {
	Enrollment dripdrop.Enrollment
	Timeline   []timelineEntry
	Explain    db.Explanation
	Adapter    dripdrop.Adapter
}

// timelineEntry is an execution or a message event, in time order.
type timelineEntry struct {
	At     time.Time
	Kind   string // execution | event
	Title  string
	Detail string
	State  string
}

func (h *Handler) enrollment(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "enrollment")
	if err != nil {
		return "", err
	}
	ctx := r.Context()
	e, err := h.store.GetEnrollment(ctx, p.Tenant, id)
	if err != nil {
		return "", err
	}
	d := enrollmentData{Enrollment: e}
	if d.Adapter, err = h.store.GetAdapter(ctx, p.Tenant, e.AdapterID); err != nil {
		d.Adapter = dripdrop.Adapter{ID: e.AdapterID, Name: "(deleted)"}
	}
	evs, err := h.store.EnrollmentEvents(ctx, p.Tenant, id)
	if err != nil {
		return "", err
	}
	if d.Explain, err = h.store.Explain(ctx, p.Tenant, id); err != nil {
		return "", err
	}
	inbound, err := h.store.EnrollmentInbound(ctx, p.Tenant, id)
	if err != nil {
		return "", err
	}
	d.Timeline = timeline(e, evs, inbound)
	p.Title, p.Nav, p.Data = e.Contact.Email, "enrollments", d
	return "enrollment", nil
}

// timeline merges executions and message events into one list, oldest first.
func timeline(e dripdrop.Enrollment, evs []db.MessageEvent, inbound []db.Inbound) []timelineEntry {
	steps := map[uuid.UUID]string{}
	var out []timelineEntry
	out = append(out, timelineEntry{At: e.CreatedAt, Kind: "enrolled", Title: "Enrolled", Detail: "sequence " + e.SequenceKey, State: "active"})
	for _, x := range e.Executions {
		steps[x.ID] = x.StepKey
		at := x.ScheduledFor
		if x.SentAt != nil {
			at = *x.SentAt
		}
		detail := fmt.Sprintf("attempt window %d, attempt %d", x.AttemptWindow, x.Attempt)
		if x.DeferReason != nil {
			detail += ", deferred: " + *x.DeferReason
		}
		if x.Error != nil {
			detail += ", error: " + *x.Error
		}
		out = append(out, timelineEntry{At: at, Kind: "execution", Title: "Step " + x.StepKey, Detail: detail, State: x.State})
	}
	for _, ev := range evs {
		detail := ""
		if ev.StepExecutionID != nil {
			detail = "step " + steps[*ev.StepExecutionID]
		}
		if ev.Subtype != nil {
			detail += " (" + *ev.Subtype + ")"
		}
		if ev.Reason != nil && *ev.Reason != "" {
			detail += ": " + *ev.Reason
		}
		out = append(out, timelineEntry{At: ev.OccurredAt, Kind: "event", Title: ev.Type, Detail: strings.TrimSpace(detail), State: ev.Type})
	}
	for _, in := range inbound {
		if in.Category == nil {
			continue
		}
		detail := "category " + *in.Category
		if ev := in.Evidence; ev != nil && ev.Phrase != "" {
			detail += fmt.Sprintf(" — %q (%s)", ev.Phrase, ev.Language)
		} else if ev != nil && ev.Previous != "" {
			detail += " — corrected from " + ev.Previous
		}
		if in.CategorySource != nil {
			detail += " · by " + *in.CategorySource
		}
		out = append(out, timelineEntry{At: in.ReceivedAt, Kind: "reply", Title: "Reply: " + *in.Category, Detail: detail, State: "category-" + *in.Category})
	}
	for _, rt := range e.Routes {
		what := rt.Trigger
		if rt.Category != nil {
			what += " " + *rt.Category
		}
		if rt.SourceEnrollmentID != e.ID {
			out = append(out, timelineEntry{At: e.CreatedAt, Kind: "route", Title: "Routed here", Detail: "by " + what + " from enrollment " + rt.SourceEnrollmentID.String()[:8], State: rt.State})
			continue
		}
		detail := fmt.Sprintf("%s → sequence %s, due %s", what, rt.TargetSequenceID.String()[:8], rt.DueAt.UTC().Format("2006-01-02 15:04 UTC"))
		if rt.Reason != nil {
			detail += ", " + *rt.Reason
		}
		out = append(out, timelineEntry{At: rt.DueAt, Kind: "route", Title: "Branch " + rt.State, Detail: detail, State: rt.State})
	}
	if e.EndedAt != nil {
		t := timelineEntry{At: *e.EndedAt, Kind: "ended", Title: "Enrollment " + string(e.State), State: string(e.State)}
		if e.StopReason != nil {
			t.Detail = "stop reason: " + *e.StopReason
		}
		out = append(out, t)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
