package forecast_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/forecast"
)

// bigSnapshot is an in-memory tenant: adapters in pools of 100 (mixed
// zones, caps, ramps and gaps), one 3-step sequence per pool, and
// enrollments spread over the adapters with pending first touches and
// follow-ups.
func bigSnapshot(adapters, enrollments int) *forecast.Snapshot {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	s := &forecast.Snapshot{Now: now}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"}
	id := func(kind, i int) uuid.UUID {
		var u uuid.UUID
		u[0], u[1] = byte(kind), 0x70
		u[8], u[9], u[10], u[11] = 0x80, byte(i>>16), byte(i>>8), byte(i)
		return u
	}
	for i := 0; i < adapters; i++ {
		cap := 30 + i%21
		started := now.Add(-time.Duration(i%10) * 24 * time.Hour)
		a := forecast.Adapter{ID: id(1, i), Name: fmt.Sprintf("mbox-%d", i), Active: true, Timezone: zones[i%len(zones)],
			HealthState: "ramping", DailyCap: &cap, RampFloor: 5, RampIncrement: 3, RampStartedAt: &started,
			MinGapSeconds: 60 + 60*(i%5), GapJitterSeconds: 30}
		s.Adapters = append(s.Adapters, a)
	}
	pools := (adapters + 99) / 100
	for p := 0; p < pools; p++ {
		pool := forecast.Pool{ID: id(2, p), Name: fmt.Sprintf("pool-%d", p), OnPinUnavailable: "pause"}
		for i := p * 100; i < min(adapters, (p+1)*100); i++ {
			pool.Members = append(pool.Members, forecast.Member{AdapterID: s.Adapters[i].ID, Weight: 1 + i%3, Active: true})
		}
		s.Pools = append(s.Pools, pool)
		s.Versions = append(s.Versions, forecast.Version{ID: id(3, p), SequenceKey: fmt.Sprintf("seq-%d", p), Version: 1, Active: true,
			PoolID: pool.ID, WindowDays: []int{1, 2, 3, 4, 5}, WindowStart: 8 * 60, WindowEnd: 18 * 60, WindowTZ: "Europe/London",
			Steps: []forecast.Step{{Position: 1}, {Position: 2, DelaySeconds: 3 * 86400}, {Position: 3, DelaySeconds: 4 * 86400}}})
	}
	for e := 0; e < enrollments; e++ {
		ai := e % adapters
		p := ai / 100
		pos := 1 + e%3
		at := now.Add(time.Duration(e%7200) * time.Minute)
		s.Enrollments = append(s.Enrollments, forecast.Enrollment{ID: id(4, e), VersionID: s.Versions[p].ID, AdapterID: s.Adapters[ai].ID,
			Position: pos, ExecAdapter: s.Adapters[ai].ID, ScheduledFor: at, Followup: pos > 1})
	}
	return s
}

// BenchmarkForecast: 10 000 adapters, 1 000 000 enrollments, 30 days
// (docs/forecast.md target: under 10 s on 2 cores).
func BenchmarkForecast(b *testing.B) {
	snap := bigSnapshot(10000, 1000000)
	b.ResetTimer()
	for b.Loop() {
		res, err := forecast.Run(snap, forecast.Request{HorizonDays: 30})
		if err != nil {
			b.Fatal(err)
		}
		sends := 0
		for _, d := range res.Days {
			sends += d.Sends
		}
		b.ReportMetric(float64(sends), "sends")
	}
}
