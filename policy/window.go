package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Clock is a wall-clock time of day in minutes after midnight.
type Clock int

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// Window is when a version may send. Days are the local weekdays on which
// the window opens; End before Start wraps past midnight. Holidays names
// calendars (HolidayCalendars) whose holidays close the window for the whole
// local day.
type Window struct {
	Days     []time.Weekday
	Start    Clock
	End      Clock
	Timezone string // the version's zone, used when the contact has none
	Holidays []string
}

// Validate rejects empty windows, no days and unknown zones.
func (w Window) Validate() error {
	if len(w.Days) == 0 {
		return errors.New("policy: a window needs at least one day")
	}
	if w.Start == w.End {
		return errors.New("policy: a window cannot be empty")
	}
	if w.Start < 0 || w.Start >= 1440 || w.End < 0 || w.End >= 1440 {
		return errors.New("policy: window times must be within the day")
	}
	if w.Timezone != "" {
		if _, err := time.LoadLocation(w.Timezone); err != nil {
			return fmt.Errorf("policy: unknown timezone %q", w.Timezone)
		}
	}
	for _, h := range w.Holidays {
		if !ValidHolidayCalendar(h) {
			return fmt.Errorf("policy: unknown holiday calendar %q", h)
		}
	}
	return nil
}

// bounds returns the window that opens on local date y-m-d.
func (w Window) bounds(y int, m time.Month, d int, loc *time.Location) (open, close time.Time) {
	open = localInstant(y, m, d, int(w.Start), loc)
	if w.End > w.Start {
		close = localInstant(y, m, d, int(w.End), loc)
	} else {
		n := time.Date(y, m, d+1, 12, 0, 0, 0, loc)
		ny, nm, nd := n.Date()
		close = localInstant(ny, nm, nd, int(w.End), loc)
	}
	return open, close
}

// Check reports whether now is inside the window in loc and, when it is
// not, the next opening instant. A local date that is a holiday of one of
// the window's calendars is closed from its midnight to the next; the next
// opening skips it (a window that wraps past midnight opens at the
// holiday's end, when it is still open then).
func (w Window) Check(now time.Time, loc *time.Location) (bool, time.Time) {
	if len(w.Holidays) == 0 {
		return w.check(now, loc)
	}
	t := now
	for range 400 { // a year of holidays is far fewer days
		if code, _ := HolidayOn(w.Holidays, t, loc); code != "" {
			t = NextMidnight(t, loc)
			continue
		}
		open, next := w.check(t, loc)
		if open {
			return t.Equal(now), t
		}
		t = next
	}
	return false, t
}

// check is Check without holidays.
func (w Window) check(now time.Time, loc *time.Location) (bool, time.Time) {
	if len(w.Days) == 0 || w.Start == w.End {
		return true, now
	}
	lt := now.In(loc)
	for k := -1; k <= 8; k++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+k, 12, 0, 0, 0, loc)
		if !slices.Contains(w.Days, day.Weekday()) {
			continue
		}
		open, close := w.bounds(day.Year(), day.Month(), day.Day(), loc)
		if !now.Before(open) && now.Before(close) {
			return true, now
		}
		if open.After(now) {
			return false, open
		}
	}
	return true, now // unreachable with at least one day
}
