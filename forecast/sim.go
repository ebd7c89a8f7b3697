package forecast

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/health"
	"github.com/dripdrop/dripdrop/policy"
)

const never = math.MaxInt64

// traceHook, set by tests, sees every simulated send (enrollment: its
// index in the simulation, which is the snapshot's in id order).
var traceHook func(adapter uuid.UUID, enrollment, stepIndex int, at time.Time)

type dayStat struct {
	sends, first, follow int32
	binding              policy.Name
}

type simAdapter struct {
	id           uuid.UUID
	name         string
	hypothetical bool
	pa           policy.Adapter
	active       bool
	score        *float64
	next, idle   int64 // adapter-level block (next_send_at); sleep on a uniform execution-level deferral
	dayEnd       int64
	dayNo        int
	sent         int
	probeSent    int // sends since probing began
	lastSend     time.Time
	// Today's sends and the share budgets per sequence version: a few
	// versions per adapter, so parallel slices searched linearly.
	vers      []int32
	sentVer   []int
	pct       []int
	follow    itemHeap
	first     itemHeap
	keys      []int32
	hidx      int
	wake      int64
	lastBlock policy.Name
	pins      int64
	stats     []dayStat
	// Provider caps (nil: none) and today's sends to the capped providers.
	caps     map[string]int
	provSent map[string]int
}

type simMember struct {
	adapter  int32
	weight   int
	active   bool
	from     int64
	counters map[int32]int64
}

type simPool struct {
	reassign bool
	members  []simMember
}

type simVersion struct {
	group  int32
	pool   int32
	window policy.Window
	delays []int64
	over   []int32 // override adapter per step, -1 none
	// variants per step (nil: the step has none); number is the version's.
	variants []*simVariants
	number   int
}

// simVariants is a step with variants: its id, keys, weights and winner
// (-1 none), and the sends per variant so far.
type simVariants struct {
	step    uuid.UUID
	keys    []string
	weights []int
	winner  int
	sends   []int
}

type simEnrollment struct {
	ver        int32
	pos        int16
	pin        int32
	key        int32
	hypo       bool
	suppressed bool
	prov       string // recipient provider ("" unknown)
	done       int64  // completion time; 0 pending, -1 stopped
	notBefore  int64  // follow-ups are never due before it (0: no fence)
}

type wkey struct {
	ver int32
	tz  string
}

type sim struct {
	start, end int64
	jitter     bool
	adapters   []*simAdapter
	byID       map[uuid.UUID]int32
	pools      []simPool
	poolIdx    map[uuid.UUID]int32
	versions   []simVersion
	verIdx     map[uuid.UUID]int32
	active     map[string]int32 // sequence key → active version
	groups     []string
	enr        []simEnrollment // in enrollment order: the snapshot's by id, then hypothetical ones as enrolled
	keys       []wkey
	keyIdx     map[wkey]int32
	heap       []*simAdapter
	baseDay    int
	scratch    []policy.Verdict
	notEnroll  int
	// With variants: each enrollment's id (snapshot ones', synthetic ones
	// for contacts enrolled in the simulation) and the variant a pending
	// execution was already given.
	hasVariants bool
	ids         []uuid.UUID
	given       map[int32]string
}

func civil(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func tm(n int64) time.Time { return time.Unix(0, n).UTC() }

// Run validates the request against the snapshot and simulates it. The
// snapshot is not modified.
func Run(s *Snapshot, r Request) (*Result, error) {
	if err := r.Validate(s); err != nil {
		return nil, err
	}
	m := newSim(s, r)
	m.loop(r)
	return m.result(r), nil
}

func newSim(s *Snapshot, r Request) *sim {
	start := s.Now
	end := start.Add(time.Duration(r.HorizonDays) * 24 * time.Hour)
	m := &sim{start: start.UnixNano(), end: end.UnixNano(), jitter: !r.NoJitter, byID: map[uuid.UUID]int32{},
		poolIdx: map[uuid.UUID]int32{}, verIdx: map[uuid.UUID]int32{}, active: map[string]int32{}, keyIdx: map[wkey]int32{},
		scratch: make([]policy.Verdict, 0, len(policy.Order))}
	m.baseDay = civil(start, time.UTC) - 2
	for i := range s.Versions {
		m.verIdx[s.Versions[i].ID] = int32(i)
	}
	for i := range s.Adapters {
		m.addAdapter(&s.Adapters[i], false)
	}
	for _, c := range r.Changes.AdapterChanges {
		a := m.adapters[m.byID[c.AdapterID]]
		if c.DailyCap != nil {
			v := *c.DailyCap
			a.pa.DailyCap = &v
		}
		if c.Uncapped {
			a.pa.DailyCap = nil
		}
		if c.RampFloor != nil {
			a.pa.RampFloor = *c.RampFloor
		}
		if c.RampIncrement != nil {
			a.pa.RampIncrement = *c.RampIncrement
		}
		if c.MinGapSeconds != nil {
			a.pa.MinGapSeconds = *c.MinGapSeconds
		}
		if c.GapJitterSeconds != nil {
			a.pa.GapJitterSeconds = *c.GapJitterSeconds
		}
	}
	for _, p := range s.Pools {
		sp := simPool{reassign: p.OnPinUnavailable == "reassign"}
		for _, mb := range p.Members {
			ai, ok := m.byID[mb.AdapterID]
			if !ok {
				continue
			}
			c := map[int32]int64{}
			for v, n := range mb.Counters {
				if vi, ok := m.verIdx[v]; ok {
					c[vi] = n
				}
			}
			sp.members = append(sp.members, simMember{adapter: ai, weight: mb.Weight, active: mb.Active, counters: c})
		}
		m.poolIdx[p.ID] = int32(len(m.pools))
		m.pools = append(m.pools, sp)
	}
	groups := map[string]int32{}
	for _, v := range s.Versions {
		g, ok := groups[v.SequenceKey]
		if !ok {
			g = int32(len(m.groups))
			groups[v.SequenceKey] = g
			m.groups = append(m.groups, v.SequenceKey)
		}
		sv := simVersion{group: g, pool: -1, window: policy.NewWindow(v.WindowStart, v.WindowEnd, v.WindowDays, v.WindowTZ, v.WindowHolidays...)}
		if pi, ok := m.poolIdx[v.PoolID]; ok {
			sv.pool = pi
		}
		sv.number = v.Version
		for _, st := range v.Steps {
			sv.variants = append(sv.variants, newSimVariants(st))
			if len(st.Variants) > 0 {
				m.hasVariants = true
			}
			sv.delays = append(sv.delays, st.DelaySeconds)
			o := int32(-1)
			if st.AdapterOverrideID != nil {
				if ai, ok := m.byID[*st.AdapterOverrideID]; ok {
					o = ai
				}
			}
			sv.over = append(sv.over, o)
		}
		m.versions = append(m.versions, sv)
		if v.Active {
			m.active[v.SequenceKey] = int32(len(m.versions) - 1)
		}
	}
	// Hypothetical adapters join their pool at At.
	for gi, add := range r.Changes.AddAdapters {
		at := start
		if add.At != nil {
			at = *add.At
		}
		for j := 0; j < add.Count; j++ {
			a := Adapter{ID: uuid.NewSHA1(add.PoolID, []byte{byte(gi >> 8), byte(gi), byte(j >> 24), byte(j >> 16), byte(j >> 8), byte(j)}),
				Name: "hypothetical-" + strconv.Itoa(gi+1) + "-" + strconv.Itoa(j+1), Active: true, Timezone: add.Timezone, HealthState: dripdrop.HealthActive,
				DailyCap: add.DailyCap, RampFloor: add.RampFloor, RampIncrement: add.RampIncrement,
				MinGapSeconds: add.MinGapSeconds, GapJitterSeconds: add.GapJitterSeconds}
			if add.RampIncrement > 0 {
				a.HealthState, a.RampStartedAt = dripdrop.HealthRamping, &at
			}
			ai := m.addAdapter(&a, true)
			w := add.Weight
			if w == 0 {
				w = 1
			}
			p := &m.pools[m.poolIdx[add.PoolID]]
			p.members = append(p.members, simMember{adapter: ai, weight: w, active: true, from: at.UnixNano(), counters: map[int32]int64{}})
		}
	}
	// Enrolled contacts and their pending executions, indexed in id order
	// (the engine's tie-breaker); contacts enrolled in the simulation
	// come after them, in the order they enroll, as the engine's UUIDv7s.
	m.enr = make([]simEnrollment, 0, len(s.Enrollments))
	m.given = map[int32]string{}
	for _, e := range inIDOrder(s.Enrollments) {
		vi, ok1 := m.verIdx[e.VersionID]
		pin, ok2 := m.byID[e.AdapterID]
		ex, ok3 := m.byID[e.ExecAdapter]
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		pos := -1
		for i, st := range s.Versions[vi].Steps {
			if st.Position == e.Position {
				pos = i
			}
		}
		if pos < 0 {
			continue
		}
		ei := int32(len(m.enr))
		se := simEnrollment{ver: vi, pos: int16(pos), pin: pin, key: m.key(vi, e.Timezone), suppressed: e.Suppressed, prov: e.RecipientProvider}
		if e.NotBefore != nil {
			se.notBefore = e.NotBefore.UnixNano()
		}
		m.enr = append(m.enr, se)
		if m.hasVariants {
			m.ids = append(m.ids, e.ID)
			if e.Variant != "" {
				m.given[ei] = e.Variant
			}
		}
		m.adapters[pin].pins++
		if e.Sending {
			m.countVariant(ei)
			// Reserved and counted already: it completes at Now.
			m.advance(ei, m.start)
			continue
		}
		m.schedule(ex, item{at: e.ScheduledFor.UnixNano(), enr: ei}, e.Followup)
	}
	for _, a := range m.adapters {
		m.update(a)
	}
	return m
}

func (m *sim) key(ver int32, tz string) int32 {
	k := wkey{ver, tz}
	if i, ok := m.keyIdx[k]; ok {
		return i
	}
	i := int32(len(m.keys))
	m.keys = append(m.keys, k)
	m.keyIdx[k] = i
	return i
}

func (m *sim) addAdapter(src *Adapter, hypo bool) int32 {
	loc, err := policy.LoadLocation(src.Timezone)
	if err != nil {
		loc = time.UTC
	}
	a := &simAdapter{id: src.ID, name: src.Name, hypothetical: hypo, active: src.Active, score: src.HealthScore, hidx: -1,
		stats: make([]dayStat, int((m.end-m.start)/int64(24*time.Hour))+6)}
	a.pa = policy.Adapter{HealthState: src.HealthState, RestingUntil: src.RestingUntil, ReconnectRequired: src.ReconnectRequired, DailyCap: src.DailyCap, RampFloor: src.RampFloor,
		RampIncrement: src.RampIncrement, RampStartedAt: src.RampStartedAt, MinGapSeconds: src.MinGapSeconds,
		GapJitterSeconds: src.GapJitterSeconds, LastSendAt: src.LastSendAt, Location: loc, ID: src.ID}
	if !m.jitter {
		a.pa.GapJitterSeconds = 0
	}
	if src.LastSendAt != nil {
		a.lastSend = *src.LastSendAt
		a.pa.LastSendAt = &a.lastSend
	}
	if src.NextSendAt != nil {
		a.next = src.NextSendAt.UnixNano()
	}
	now := tm(m.start)
	a.dayEnd = policy.NextMidnight(now, loc).UnixNano()
	a.dayNo = civil(now, loc)
	for v, n := range src.SentToday {
		if vi, ok := m.verIdx[v]; ok {
			a.sentVer[a.ver(vi)] += n
		}
		a.sent += n
	}
	if len(src.ProviderCaps) > 0 {
		a.caps, a.provSent = src.ProviderCaps, map[string]int{}
		for p, n := range src.SentTodayByProvider {
			a.provSent[p] = n
		}
	}
	for v, pct := range src.Budgets {
		if vi, ok := m.verIdx[v]; ok {
			a.pct[a.ver(vi)] = pct
		}
	}
	i := int32(len(m.adapters))
	m.byID[src.ID] = i
	m.adapters = append(m.adapters, a)
	return i
}

// inIDOrder returns the enrollments in id order: as given when they are
// (the snapshot is read so), else sorted (a copy).
func inIDOrder(es []Enrollment) []Enrollment {
	byID := func(a, b Enrollment) int { return bytes.Compare(a.ID[:], b.ID[:]) }
	if slices.IsSortedFunc(es, byID) {
		return es
	}
	es = slices.Clone(es)
	slices.SortStableFunc(es, byID)
	return es
}

// schedule queues an execution on its sender.
func (m *sim) schedule(ai int32, it item, followup bool) {
	a := m.adapters[ai]
	if followup {
		a.follow.push(it)
	} else {
		a.first.push(it)
	}
	k := m.enr[it.enr].key
	if !slices.Contains(a.keys, k) {
		a.keys = append(a.keys, k)
		a.idle = 0 // a different window or version: the uniform sleep no longer holds
	}
}

// advance moves an enrollment past its current step, sent at t.
func (m *sim) advance(ei int32, t int64) {
	e := &m.enr[ei]
	v := &m.versions[e.ver]
	e.pos++
	if int(e.pos) >= len(v.delays) {
		e.done = t
		m.adapters[e.pin].pins--
		return
	}
	sender := e.pin
	if o := v.over[e.pos]; o >= 0 {
		sender = o
	}
	m.schedule(sender, item{at: max(t+v.delays[e.pos]*int64(time.Second), e.notBefore), enr: ei}, true)
	m.update(m.adapters[sender])
}

// rollDay moves an adapter to the local day of t, closing the days before.
func (m *sim) rollDay(a *simAdapter, t int64) {
	for t >= a.dayEnd {
		if a.lastBlock != "" && a.earliest() < a.dayEnd {
			if i := a.dayNo - m.baseDay; i >= 0 && i < len(a.stats) {
				a.stats[i].binding = a.lastBlock
			}
		}
		if a.earliest() >= a.dayEnd {
			a.lastBlock = ""
		}
		end := tm(a.dayEnd)
		a.dayNo = civil(end, a.pa.Location)
		a.dayEnd = policy.NextMidnight(end, a.pa.Location).UnixNano()
		a.sent = 0
		clear(a.sentVer)
		clear(a.provSent)
	}
}

// ver returns the slot of a sequence version in the adapter's counters.
func (a *simAdapter) ver(v int32) int {
	for i, x := range a.vers {
		if x == v {
			return i
		}
	}
	a.vers = append(a.vers, v)
	a.sentVer = append(a.sentVer, 0)
	a.pct = append(a.pct, 0)
	return len(a.vers) - 1
}

func (a *simAdapter) earliest() int64 {
	w := int64(never)
	if len(a.follow) > 0 {
		w = a.follow[0].at
	}
	if len(a.first) > 0 && a.first[0].at < w {
		w = a.first[0].at
	}
	return w
}

// health applies the automatic health transitions due at t with the
// engine's rules (health.Decide, which the leader's sweep runs every
// minute): an ended rest → probing, ProbeSuccess clean probe sends →
// ramping, a finished ramp → active. The forecast has no bounces or
// complaints, so nothing breaches.
func (a *simAdapter) health(t time.Time) {
	st := health.Snapshot{State: a.pa.HealthState, RestingUntil: a.pa.RestingUntil, Held: a.pa.ReconnectRequired,
		Ramp: health.Ramp{DailyCap: a.pa.DailyCap, Floor: a.pa.RampFloor, StartedAt: a.pa.RampStartedAt}}
	if a.pa.RampIncrement > 0 {
		st.Ramp.Increment = &a.pa.RampIncrement
	}
	if st.State == dripdrop.HealthProbing {
		st.Counts.Sent = a.probeSent
	}
	d, ok := health.Decide(st, t)
	if !ok || d.To == a.pa.HealthState {
		return
	}
	if d.To == dripdrop.HealthProbing {
		a.probeSent = 0
	}
	h := health.Apply(st, d, t)
	a.pa.HealthState, a.pa.RestingUntil, a.pa.RampStartedAt = h.State, h.RestingUntil, h.RampStartedAt
}

// step lets an adapter send what the policies allow at t, in the
// dispatcher's order: follow-ups first, then the oldest scheduled_for.
func (m *sim) step(a *simAdapter, t int64) {
	m.rollDay(a, t)
	now := tm(t)
	a.health(now)
	if !a.active {
		// The pin is unavailable: the pool policy pauses these enrollments
		// (they never finish within the forecast).
		a.follow, a.first = nil, nil
		return
	}
	if a.idle != 0 && t >= a.idle {
		// The executions the dispatcher deferred one by one while the
		// window (or share cap) was closed now carry scheduled_for = the
		// opening; with executions naturally due at that instant they go
		// in enrollment order, as the claim takes such ties.
		a.follow.rekey(a.idle)
		a.first.rekey(a.idle)
		a.idle = 0
	}
	for {
		h := &a.follow
		if len(a.follow) == 0 || a.follow[0].at > t {
			h = &a.first
			if len(a.first) == 0 || a.first[0].at > t {
				return
			}
		}
		followup := h == &a.follow
		it := (*h)[0]
		e := &m.enr[it.enr]
		k := m.keys[e.key]
		vi := a.ver(e.ver)
		in := policy.Input{Now: now, EnrollmentState: "active", Suppressed: e.suppressed,
			Window: m.versions[e.ver].window, ContactTimezone: k.tz, Adapter: a.pa, SentToday: a.sent,
			SentTodayForVersion: a.sentVer[vi], MaxSharePct: a.pct[vi], Lean: true, Scratch: m.scratch}
		capped := a.caps != nil && e.prov != "" && a.caps[e.prov] > 0
		if capped {
			in.RecipientProvider, in.ProviderCap, in.SentTodayForProvider = e.prov, a.caps[e.prov], a.provSent[e.prov]
		}
		res := policy.Evaluate(in)
		b := res.Binding
		if b == nil {
			h.pop()
			a.sent++
			a.sentVer[vi]++
			if capped {
				a.provSent[e.prov]++
			}
			if i := a.dayNo - m.baseDay; i >= 0 && i < len(a.stats) {
				st := &a.stats[i]
				st.sends++
				if followup {
					st.follow++
				} else {
					st.first++
				}
			}
			a.lastSend = now
			a.pa.LastSendAt = &a.lastSend
			if a.pa.HealthState == dripdrop.HealthProbing {
				a.probeSent++
				a.health(now)
			}
			if traceHook != nil {
				traceHook(a.id, int(it.enr), int(e.pos), now)
			}
			if m.hasVariants {
				m.countVariant(it.enr)
			}
			m.advance(it.enr, t)
			if a.pa.HasGap() {
				// One send in flight; the gap runs from its end.
				a.next = policy.GapEnd(a.pa, now).UnixNano()
				a.lastBlock = policy.MinGap
				return
			}
			continue
		}
		switch b.Scope() {
		case policy.ScopeSkip:
			h.pop()
			e.done = -1
			m.adapters[e.pin].pins--
			continue
		case policy.ScopeCancel:
			h.pop()
			continue
		}
		a.lastBlock = b.Policy
		switch b.Scope() {
		case policy.ScopeExecution:
			// Execution-level: this execution waits; when every queued
			// execution shares its window and version, they all do.
			// A provider cap holds only that provider's executions.
			if len(a.keys) == 1 && b.Policy != policy.ProviderCap {
				a.idle = b.DeferUntil.UnixNano()
				return
			}
			h.pop()
			it.at = b.DeferUntil.UnixNano()
			m.schedule(m.byID[a.id], it, followup)
		case policy.ScopeAdapter:
			a.next = b.DeferUntil.UnixNano()
			return
		}
	}
}

type enrollEvent struct {
	at    int64
	ver   int32
	count int
	tz    string
}

func (m *sim) loop(r Request) {
	var evs []enrollEvent
	for _, e := range r.Changes.Enroll {
		at := m.start
		if e.At != nil {
			at = e.At.UnixNano()
		}
		evs = append(evs, enrollEvent{at: at, ver: m.active[e.SequenceKey], count: e.Count, tz: e.Timezone})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	for {
		t := int64(never)
		if len(m.heap) > 0 {
			t = m.heap[0].wake
		}
		if len(evs) > 0 && evs[0].at <= t {
			m.enroll(evs[0])
			evs = evs[1:]
			continue
		}
		if t >= m.end {
			break
		}
		a := m.heap[0]
		m.step(a, t)
		m.update(a)
	}
	for _, a := range m.adapters {
		m.rollDay(a, m.end)
	}
}

// enroll pins hypothetical contacts with the engine's pick: WDRR over the
// eligible members, the reassign fallback, else pool exhausted.
func (m *sim) enroll(ev enrollEvent) {
	v := &m.versions[ev.ver]
	if v.pool < 0 {
		m.notEnroll += ev.count
		return
	}
	p := &m.pools[v.pool]
	now := tm(ev.at)
	cands := make([]policy.Candidate, len(p.members))
	reass := make([]bool, len(p.members))
	pins := make([]int64, len(p.members))
	for i, mb := range p.members {
		a := m.adapters[mb.adapter]
		m.rollDay(a, ev.at)
		a.health(now)
		pm := policy.Member{MemberActive: mb.active && mb.from <= ev.at, AdapterActive: a.active, HealthScore: a.score, Adapter: a.pa}
		ok, _ := policy.Eligibility(pm, a.sent, now)
		cands[i] = policy.Candidate{MemberOrder: i, Weight: mb.weight, HealthScore: a.score, Eligible: ok, Counter: mb.counters[ev.ver]}
		reass[i] = policy.Reassignable(pm)
		pins[i] = a.pins
	}
	if !p.reassign {
		reass = nil
	}
	k := m.key(ev.ver, ev.tz)
	touched := map[int32]bool{}
	for n := 0; n < ev.count; n++ {
		i, _ := policy.PickPin(cands, reass, pins)
		if i < 0 {
			m.notEnroll += ev.count - n
			break
		}
		pins[i]++
		pin := p.members[i].adapter
		ei := int32(len(m.enr))
		m.enr = append(m.enr, simEnrollment{ver: ev.ver, pin: pin, key: k, hypo: true})
		if m.hasVariants {
			m.ids = append(m.ids, uuid.NewSHA1(hypoIDs, binary.BigEndian.AppendUint32(nil, uint32(ei))))
		}
		m.adapters[pin].pins++
		sender := pin
		if o := v.over[0]; o >= 0 {
			sender = o
		}
		m.schedule(sender, item{at: ev.at + v.delays[0]*int64(time.Second), enr: ei}, false)
		touched[sender] = true
	}
	for i := range cands {
		if cands[i].Eligible {
			p.members[i].counters[ev.ver] = cands[i].Counter
		}
	}
	for ai := range touched {
		m.update(m.adapters[ai])
	}
}
