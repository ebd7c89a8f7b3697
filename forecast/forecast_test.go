package forecast_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/forecast"
)

var (
	t0     = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) // Monday 08:00
	poolID = uuid.MustParse("00000000-0000-7000-8000-0000000000aa")
	verID  = uuid.MustParse("00000000-0000-7000-8000-0000000000bb")
)

func aid(i int) uuid.UUID {
	u := uuid.MustParse("00000000-0000-7000-8000-000000000000")
	u[15] = byte(i + 1)
	return u
}

func ptr[T any](v T) *T { return &v }

// small: adapters (capped at caps[i] per day, weights[i]) in one pool, a
// one-step sequence "s" with a Monday–Friday 08:00–18:00 UTC window and no
// enrollments.
func small(caps []int, weights []int, steps ...int64) *forecast.Snapshot {
	s := &forecast.Snapshot{Now: t0}
	pool := forecast.Pool{ID: poolID, Name: "main", OnPinUnavailable: "pause"}
	for i, c := range caps {
		a := forecast.Adapter{ID: aid(i), Name: "a" + string(rune('0'+i)), Active: true, Timezone: "UTC", HealthState: "active"}
		if c > 0 {
			a.DailyCap = ptr(c)
		}
		s.Adapters = append(s.Adapters, a)
		pool.Members = append(pool.Members, forecast.Member{AdapterID: a.ID, Weight: weights[i], Active: true})
	}
	s.Pools = []forecast.Pool{pool}
	if len(steps) == 0 {
		steps = []int64{0}
	}
	v := forecast.Version{ID: verID, SequenceKey: "s", Version: 1, Active: true, PoolID: poolID,
		WindowDays: []int{1, 2, 3, 4, 5}, WindowStart: 8 * 60, WindowEnd: 18 * 60, WindowTZ: "UTC"}
	for i, d := range steps {
		v.Steps = append(v.Steps, forecast.Step{Position: i + 1, DelaySeconds: d})
	}
	s.Versions = []forecast.Version{v}
	return s
}

func run(t *testing.T, s *forecast.Snapshot, r forecast.Request) *forecast.Result {
	t.Helper()
	r.PerAdapter = true
	res, err := forecast.Run(s, r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// perDay: total sends per date (first days only, up to n).
func perDay(res *forecast.Result, n int) []int {
	var out []int
	for _, d := range res.Days[:n] {
		out = append(out, d.Sends)
	}
	return out
}

func byAdapter(res *forecast.Result) map[string]int {
	out := map[string]int{}
	for _, d := range res.Days {
		for _, a := range d.Adapters {
			out[a.Name] += a.Sends
		}
	}
	return out
}

func TestEnrollChange(t *testing.T) {
	t.Parallel()
	at := t0.Add(48 * time.Hour) // Wednesday 08:00
	cases := []struct {
		name    string
		enroll  forecast.Enroll
		caps    []int
		weights []int
		days    []int          // sends per day from Monday
		pins    map[string]int // sends per adapter
	}{
		{"now, weights 3:1, uncapped", forecast.Enroll{SequenceKey: "s", Count: 40}, []int{0, 0}, []int{3, 1},
			[]int{40, 0, 0}, map[string]int{"a0": 30, "a1": 10}},
		{"at Wednesday, capped 5 + 5", forecast.Enroll{SequenceKey: "s", Count: 20, At: &at}, []int{5, 5}, []int{1, 1},
			[]int{0, 0, 10, 10, 0}, map[string]int{"a0": 10, "a1": 10}},
		{"Saturday waits for Monday's window", forecast.Enroll{SequenceKey: "s", Count: 3, At: ptr(t0.Add(5 * 24 * time.Hour))}, []int{0}, []int{1},
			[]int{0, 0, 0, 0, 0, 0, 0, 3}, map[string]int{"a0": 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, small(c.caps, c.weights), forecast.Request{HorizonDays: 10, Changes: forecast.Changes{Enroll: []forecast.Enroll{c.enroll}}})
			if got := perDay(res, len(c.days)); !reflect.DeepEqual(got, c.days) {
				t.Fatalf("sends per day %v, want %v", got, c.days)
			}
			if got := byAdapter(res); !reflect.DeepEqual(got, c.pins) {
				t.Fatalf("sends per adapter %v, want %v", got, c.pins)
			}
			h := res.Sequences[0].Hypothetical
			if h == nil || h.Contacts != c.enroll.Count || h.Completed != c.enroll.Count || h.P50 == nil || h.P90 == nil {
				t.Fatalf("completion %+v", h)
			}
		})
	}
}

func TestAddAdaptersChange(t *testing.T) {
	t.Parallel()
	wed := t0.Add(48 * time.Hour)
	cases := []struct {
		name string
		add  forecast.AddAdapters
		days []int
		p90  time.Time // completion of the 90th percentile contact
	}{
		// 80 contacts at 10 a day on weekdays: the 72nd goes out on the
		// 8th weekday, Wednesday of the next week.
		{"none", forecast.AddAdapters{}, []int{10, 10, 10, 10, 10}, t0.Add(9 * 24 * time.Hour)},
		// WDRR pins 20 to each of the four: two days.
		{"three more at 10/day", forecast.AddAdapters{PoolName: "main", Count: 3, DailyCap: ptr(10)}, []int{40, 40, 0, 0, 0}, t0.Add(24 * time.Hour)},
		// 27/27/26 pins; the new ones send 2, 4, 6, 8, then the rest.
		{"ramping from 2 by 2", forecast.AddAdapters{PoolID: poolID, Count: 2, DailyCap: ptr(10), RampFloor: 2, RampIncrement: 2}, []int{14, 18, 19, 16, 13}, t0.Add(4 * 24 * time.Hour)},
		// Membership changes never move pins made before they happen.
		{"joining on Wednesday", forecast.AddAdapters{PoolID: poolID, Count: 1, DailyCap: ptr(10), At: &wed}, []int{10, 10, 10, 10, 10}, t0.Add(9 * 24 * time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := forecast.Changes{Enroll: []forecast.Enroll{{SequenceKey: "s", Count: 80}}}
			if c.add.Count > 0 {
				ch.AddAdapters = []forecast.AddAdapters{c.add}
			}
			res := run(t, small([]int{10}, []int{1}), forecast.Request{HorizonDays: 14, Changes: ch})
			if got := perDay(res, len(c.days)); !reflect.DeepEqual(got, c.days) {
				t.Fatalf("sends per day %v, want %v", got, c.days)
			}
			if h := res.Sequences[0].Hypothetical; h.P90 == nil || !h.P90.Equal(c.p90) {
				t.Fatalf("p90 %v, want %v", h.P90, c.p90)
			}
		})
	}
}

func TestAdapterChange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		change forecast.AdapterChange
		days   []int
	}{
		{"as is", forecast.AdapterChange{}, []int{10, 10, 10}},
		{"cap 25", forecast.AdapterChange{DailyCap: ptr(25)}, []int{25, 5, 0}},
		{"uncapped", forecast.AdapterChange{Uncapped: true}, []int{30, 0, 0}},
		{"one an hour", forecast.AdapterChange{MinGapSeconds: ptr(3600)}, []int{10, 10, 10}},
		{"one every 2 h, uncapped", forecast.AdapterChange{Uncapped: true, MinGapSeconds: ptr(7200)}, []int{5, 5, 5}},
		{"ramp 4 by 4", forecast.AdapterChange{RampFloor: ptr(4), RampIncrement: ptr(4)}, []int{4, 8, 10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := small([]int{10}, []int{1})
			s.Adapters[0].RampStartedAt = &t0
			c.change.AdapterID = aid(0)
			res := run(t, s, forecast.Request{HorizonDays: 7, Changes: forecast.Changes{
				Enroll: []forecast.Enroll{{SequenceKey: "s", Count: 30}}, AdapterChanges: []forecast.AdapterChange{c.change}}})
			if got := perDay(res, len(c.days)); !reflect.DeepEqual(got, c.days) {
				t.Fatalf("sends per day %v, want %v", got, c.days)
			}
		})
	}
}

// TestBindingAndFollowUps: a 2-step sequence on a capped adapter: day 1
// is all first touches up to the cap (ramp_cap binds), follow-ups go
// before first touches once due, and completion waits for the last step.
func TestBindingAndFollowUps(t *testing.T) {
	t.Parallel()
	s := small([]int{4}, []int{1}, 0, 86400)
	res := run(t, s, forecast.Request{HorizonDays: 7, Changes: forecast.Changes{Enroll: []forecast.Enroll{{SequenceKey: "s", Count: 6}}}})
	type fd struct{ first, follow int }
	var got []fd
	for _, d := range res.Days[:4] {
		got = append(got, fd{d.FirstTouches, d.FollowUps})
	}
	if want := []fd{{4, 0}, {0, 4}, {2, 0}, {0, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first/follow-ups per day %v, want %v", got, want)
	}
	if b := res.Days[0].Binding; b == nil || b.Policy != "ramp_cap" || b.AdapterID != aid(0) || b.Adapters != 1 {
		t.Fatalf("day 1 binding %+v, want ramp_cap of a0", b)
	}
	if res.Days[3].Binding != nil {
		t.Fatalf("day 4 has spare capacity, binding %+v", res.Days[3].Binding)
	}
	h := res.Sequences[0].Hypothetical
	if h.Completed != 6 || !h.P50.Equal(t0.Add(24*time.Hour)) || !h.P90.Equal(t0.Add(3*24*time.Hour)) {
		t.Fatalf("completion %+v", h)
	}
}

func TestJitterSwitch(t *testing.T) {
	t.Parallel()
	s := small([]int{0}, []int{1})
	s.Adapters[0].MinGapSeconds, s.Adapters[0].GapJitterSeconds = 3000, 1200
	req := forecast.Request{HorizonDays: 3, Changes: forecast.Changes{Enroll: []forecast.Enroll{{SequenceKey: "s", Count: 40}}}}
	a, b := run(t, s, req), run(t, s, req)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("jitter is not deterministic")
	}
	req.NoJitter = true
	// 08:00–18:00 with a 50-minute gap: 08:00, 08:50, …, 17:10 = 12 a day.
	if got := perDay(run(t, s, req), 1); got[0] != 12 {
		t.Fatalf("without jitter: %d sends on day 1, want 12", got[0])
	}
	if got := perDay(a, 1); got[0] >= 12 || got[0] < 9 {
		t.Fatalf("with jitter up to 20 min: %d sends on day 1, want 9..11", got[0])
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		req   forecast.Request
		code  string
		field string
	}{
		{"horizon", forecast.Request{HorizonDays: 400}, dripdrop.ECodeOutOfRange, "horizon_days"},
		{"unknown sequence", forecast.Request{Changes: forecast.Changes{Enroll: []forecast.Enroll{{SequenceKey: "x", Count: 1}}}}, dripdrop.ECodeNotFound, "changes.enroll[0].sequence_key"},
		{"enroll before now", forecast.Request{Changes: forecast.Changes{Enroll: []forecast.Enroll{{SequenceKey: "s", Count: 1, At: ptr(t0.Add(-time.Hour))}}}}, dripdrop.ECodeOutOfRange, "changes.enroll[0].at"},
		{"unknown pool", forecast.Request{Changes: forecast.Changes{AddAdapters: []forecast.AddAdapters{{PoolName: "nope", Count: 1}}}}, dripdrop.ECodeNotFound, "changes.add_adapters[0].pool_name"},
		{"no count", forecast.Request{Changes: forecast.Changes{AddAdapters: []forecast.AddAdapters{{PoolID: poolID}}}}, dripdrop.ECodeOutOfRange, "changes.add_adapters[0].count"},
		{"unknown adapter", forecast.Request{Changes: forecast.Changes{AdapterChanges: []forecast.AdapterChange{{AdapterID: aid(9)}}}}, dripdrop.ECodeNotFound, "changes.adapter_changes[0].adapter_id"},
		{"cap and uncapped", forecast.Request{Changes: forecast.Changes{AdapterChanges: []forecast.AdapterChange{{AdapterID: aid(0), DailyCap: ptr(3), Uncapped: true}}}}, dripdrop.ECodeInvalidValue, "changes.adapter_changes[0].uncapped"},
		{"negative gap", forecast.Request{Changes: forecast.Changes{AdapterChanges: []forecast.AdapterChange{{AdapterID: aid(0), MinGapSeconds: ptr(-1)}}}}, dripdrop.ECodeOutOfRange, "changes.adapter_changes[0].min_gap_seconds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := forecast.Run(small([]int{1}, []int{1}), c.req)
			var de *dripdrop.Error
			if err == nil || !asError(err, &de) || de.Code != c.code || de.Field != c.field {
				t.Fatalf("error %v, want %s on %s", err, c.code, c.field)
			}
		})
	}
}

func asError(err error, target **dripdrop.Error) bool {
	e, ok := err.(*dripdrop.Error)
	*target = e
	return ok
}

// TestRestProbeRamp: a resting adapter waits out its rest, probes 5 a day
// (dripdrop.ProbeBudget), and after 5 clean probe sends ramps from its floor
// with ramp_started_at at that moment (docs/health.md).
func TestRestProbeRamp(t *testing.T) {
	t.Parallel()
	s := small([]int{20}, []int{1})
	a := &s.Adapters[0]
	a.HealthState, a.RestingUntil, a.RampFloor, a.RampIncrement = "resting", ptr(t0.Add(24*time.Hour)), 2, 2
	// Pin 100 contacts to it (a resting member takes no new pins).
	for i := 0; i < 100; i++ {
		s.Enrollments = append(s.Enrollments, forecast.Enrollment{ID: uuid.New(), VersionID: verID, AdapterID: a.ID, Position: 1, ExecAdapter: a.ID, ScheduledFor: t0})
	}
	res := run(t, s, forecast.Request{HorizonDays: 5})
	// Mon resting; Tue 5 probes then ramping from Tue 08:00 (cap 2, already
	// 5 sent); Wed 08:00 one day elapsed: 4; Thu 6; Fri 8.
	if got, want := perDay(res, 5), []int{0, 5, 4, 6, 8}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sends per day %v, want %v", got, want)
	}
	if b := res.Days[0].Binding; b == nil || b.Policy != "adapter_resting" {
		t.Fatalf("Monday binding %+v, want adapter_resting", b)
	}
	if b := res.Days[1].Binding; b == nil || b.Policy != "ramp_cap" {
		t.Fatalf("Tuesday binding %+v, want ramp_cap", b)
	}
}
