package policy

import (
	"sort"
	"time"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/at"
	"github.com/rickar/cal/v2/be"
	"github.com/rickar/cal/v2/ca"
	"github.com/rickar/cal/v2/ch"
	"github.com/rickar/cal/v2/de"
	"github.com/rickar/cal/v2/dk"
	"github.com/rickar/cal/v2/es"
	"github.com/rickar/cal/v2/fi"
	"github.com/rickar/cal/v2/fr"
	"github.com/rickar/cal/v2/gb"
	"github.com/rickar/cal/v2/ie"
	"github.com/rickar/cal/v2/it"
	"github.com/rickar/cal/v2/nl"
	"github.com/rickar/cal/v2/no"
	"github.com/rickar/cal/v2/nz"
	"github.com/rickar/cal/v2/pl"
	"github.com/rickar/cal/v2/pt"
	"github.com/rickar/cal/v2/se"
	"github.com/rickar/cal/v2/us"
)

// holidayCalendars are the national public-holiday calendars a send window
// may name, by ISO 3166-1 alpha-2 code (github.com/rickar/cal/v2: each
// country's standard national holidays, with their observed days).
var holidayCalendars = func() map[string]*cal.Calendar {
	lists := map[string][]*cal.Holiday{
		"US": us.Holidays, "CA": ca.Holidays, "GB": gb.Holidays, "IE": ie.Holidays, "DE": de.Holidays, "AT": at.Holidays,
		"CH": ch.Holidays, "FR": fr.Holidays, "ES": es.Holidays, "IT": it.Holidays, "NL": nl.Holidays, "BE": be.Holidays,
		"SE": se.Holidays, "NO": no.Holidays, "DK": dk.Holidays, "FI": fi.Holidays, "PL": pl.Holidays, "PT": pt.Holidays,
		"NZ": nz.Holidays,
	}
	out := make(map[string]*cal.Calendar, len(lists))
	for code, hs := range lists {
		c := &cal.Calendar{Name: code, Cacheable: true}
		c.AddHoliday(hs...)
		out[code] = c
	}
	return out
}()

// HolidayCalendars lists the calendar codes a window may name, sorted.
func HolidayCalendars() []string {
	out := make([]string, 0, len(holidayCalendars))
	for c := range holidayCalendars {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// ValidHolidayCalendar reports whether code names a calendar.
func ValidHolidayCalendar(code string) bool { _, ok := holidayCalendars[code]; return ok }

// HolidayOn returns the first of the calendars that has a holiday (its
// actual or its observed day) on the local date of t in loc, and the
// holiday's name; "" when none does.
func HolidayOn(codes []string, t time.Time, loc *time.Location) (string, string) {
	if len(codes) == 0 {
		return "", ""
	}
	y, m, d := t.In(loc).Date()
	day := time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
	for _, code := range codes {
		c := holidayCalendars[code]
		if c == nil {
			continue
		}
		if act, obs, h := c.IsHoliday(day); act || obs {
			return code, h.Name
		}
	}
	return "", ""
}
