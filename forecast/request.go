package forecast

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/policy"
)

// Defaults and limits of a forecast.
const (
	DefaultHorizonDays = 30
	MaxHorizonDays     = 366
	MaxAddAdapters     = 100000
	MaxEnroll          = 10000000
)

// Request is a forecast: a horizon and optional hypothetical changes.
type Request struct {
	HorizonDays int  `json:"horizon_days,omitempty"` // default 30
	NoJitter    bool `json:"no_jitter,omitempty"`    // gaps without their deterministic jitter
	// PerAdapter adds a row per adapter with sends to every day.
	PerAdapter bool    `json:"per_adapter,omitempty"`
	Changes    Changes `json:"changes"`
}

// Changes are hypothetical: applied to the simulation only.
type Changes struct {
	AddAdapters    []AddAdapters   `json:"add_adapters,omitempty"`
	Enroll         []Enroll        `json:"enroll,omitempty"`
	AdapterChanges []AdapterChange `json:"adapter_changes,omitempty"`
}

// AddAdapters adds Count new adapters with the given settings to a pool.
// With ramp fields they start ramping at At (default: the forecast's
// start), else active.
type AddAdapters struct {
	PoolID           uuid.UUID  `json:"pool_id"`
	PoolName         string     `json:"pool_name,omitempty"` // instead of pool_id
	Count            int        `json:"count"`
	Weight           int        `json:"weight,omitempty"` // default 1
	Timezone         string     `json:"timezone,omitempty"`
	DailyCap         *int       `json:"daily_cap,omitempty"`
	RampFloor        int        `json:"ramp_floor,omitempty"`
	RampIncrement    int        `json:"ramp_increment,omitempty"`
	MinGapSeconds    int        `json:"min_gap_seconds,omitempty"`
	GapJitterSeconds int        `json:"gap_jitter_seconds,omitempty"`
	At               *time.Time `json:"at,omitempty"`
}

// Enroll enrolls Count contacts into the active version of a sequence at
// At (default: the forecast's start).
type Enroll struct {
	SequenceKey string     `json:"sequence_key"`
	Count       int        `json:"count"`
	At          *time.Time `json:"at,omitempty"`
	Timezone    string     `json:"timezone,omitempty"` // the contacts' zone (default: the window's)
}

// AdapterChange changes an existing adapter's cap or gap from the start.
type AdapterChange struct {
	AdapterID        uuid.UUID `json:"adapter_id"`
	DailyCap         *int      `json:"daily_cap,omitempty"`
	Uncapped         bool      `json:"uncapped,omitempty"` // remove the daily cap
	RampFloor        *int      `json:"ramp_floor,omitempty"`
	RampIncrement    *int      `json:"ramp_increment,omitempty"`
	MinGapSeconds    *int      `json:"min_gap_seconds,omitempty"`
	GapJitterSeconds *int      `json:"gap_jitter_seconds,omitempty"`
}

func bad(code, field, format string, args ...any) error {
	return &dripdrop.Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate checks the request against the snapshot it will run on.
func (r *Request) Validate(s *Snapshot) error {
	if r.HorizonDays == 0 {
		r.HorizonDays = DefaultHorizonDays
	}
	if r.HorizonDays < 1 || r.HorizonDays > MaxHorizonDays {
		return bad(dripdrop.ECodeOutOfRange, "horizon_days", "horizon_days must be between 1 and %d", MaxHorizonDays)
	}
	pools := map[uuid.UUID]bool{}
	byName := map[string]uuid.UUID{}
	for _, p := range s.Pools {
		pools[p.ID] = true
		byName[p.Name] = p.ID
	}
	adapters := map[uuid.UUID]bool{}
	for _, a := range s.Adapters {
		adapters[a.ID] = true
	}
	seqs := map[string]bool{}
	for _, v := range s.Versions {
		if v.Active {
			seqs[v.SequenceKey] = true
		}
	}
	end := s.Now.Add(time.Duration(r.HorizonDays) * 24 * time.Hour)
	total := 0
	for i := range r.Changes.AddAdapters {
		a := &r.Changes.AddAdapters[i]
		f := fmt.Sprintf("changes.add_adapters[%d].", i)
		if a.PoolName != "" && a.PoolID == uuid.Nil {
			id, ok := byName[a.PoolName]
			if !ok {
				return bad(dripdrop.ECodeNotFound, f+"pool_name", "pool not found")
			}
			a.PoolID = id
		}
		switch {
		case !pools[a.PoolID]:
			return bad(dripdrop.ECodeNotFound, f+"pool_id", "pool not found")
		case a.Count < 1:
			return bad(dripdrop.ECodeOutOfRange, f+"count", "count must be at least 1")
		case a.Weight < 0 || a.Weight > 1000000:
			return bad(dripdrop.ECodeOutOfRange, f+"weight", "weight must be between 1 and 1000000")
		case a.DailyCap != nil && *a.DailyCap <= 0:
			return bad(dripdrop.ECodeOutOfRange, f+"daily_cap", "daily_cap must be positive")
		case a.RampFloor < 0 || a.RampIncrement < 0 || a.MinGapSeconds < 0 || a.GapJitterSeconds < 0:
			return bad(dripdrop.ECodeOutOfRange, f+"ramp_floor", "ramp and gap fields must not be negative")
		case a.At != nil && (a.At.Before(s.Now) || !a.At.Before(end)):
			return bad(dripdrop.ECodeOutOfRange, f+"at", "at must be within the horizon")
		}
		if a.Timezone != "" {
			if _, err := policy.LoadLocation(a.Timezone); err != nil {
				return bad(dripdrop.ECodeInvalidTimezone, f+"timezone", "unknown timezone %q", a.Timezone)
			}
		}
		total += a.Count
	}
	if total > MaxAddAdapters {
		return bad(dripdrop.ECodeOutOfRange, "changes.add_adapters", "at most %d adapters may be added", MaxAddAdapters)
	}
	total = 0
	for i, e := range r.Changes.Enroll {
		f := fmt.Sprintf("changes.enroll[%d].", i)
		switch {
		case e.SequenceKey == "":
			return bad(dripdrop.ECodeRequired, f+"sequence_key", "sequence_key is required")
		case !seqs[e.SequenceKey]:
			return bad(dripdrop.ECodeNotFound, f+"sequence_key", "no active version of sequence %q", e.SequenceKey)
		case e.Count < 1:
			return bad(dripdrop.ECodeOutOfRange, f+"count", "count must be at least 1")
		case e.At != nil && (e.At.Before(s.Now) || !e.At.Before(end)):
			return bad(dripdrop.ECodeOutOfRange, f+"at", "at must be within the horizon")
		}
		if e.Timezone != "" {
			if _, err := policy.LoadLocation(e.Timezone); err != nil {
				return bad(dripdrop.ECodeInvalidTimezone, f+"timezone", "unknown timezone %q", e.Timezone)
			}
		}
		total += e.Count
	}
	if total > MaxEnroll {
		return bad(dripdrop.ECodeOutOfRange, "changes.enroll", "at most %d hypothetical contacts", MaxEnroll)
	}
	for i, c := range r.Changes.AdapterChanges {
		f := fmt.Sprintf("changes.adapter_changes[%d].", i)
		switch {
		case !adapters[c.AdapterID]:
			return bad(dripdrop.ECodeNotFound, f+"adapter_id", "adapter not found")
		case c.DailyCap != nil && *c.DailyCap <= 0:
			return bad(dripdrop.ECodeOutOfRange, f+"daily_cap", "daily_cap must be positive")
		case c.DailyCap != nil && c.Uncapped:
			return bad(dripdrop.ECodeInvalidValue, f+"uncapped", "give daily_cap or uncapped, not both")
		case c.RampFloor != nil && *c.RampFloor < 0:
			return bad(dripdrop.ECodeOutOfRange, f+"ramp_floor", "ramp_floor must not be negative")
		case c.RampIncrement != nil && *c.RampIncrement <= 0:
			return bad(dripdrop.ECodeOutOfRange, f+"ramp_increment", "ramp_increment must be positive")
		case c.MinGapSeconds != nil && *c.MinGapSeconds < 0:
			return bad(dripdrop.ECodeOutOfRange, f+"min_gap_seconds", "min_gap_seconds must not be negative")
		case c.GapJitterSeconds != nil && *c.GapJitterSeconds < 0:
			return bad(dripdrop.ECodeOutOfRange, f+"gap_jitter_seconds", "gap_jitter_seconds must not be negative")
		}
	}
	return nil
}
