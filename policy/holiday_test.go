package policy

import (
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Holidays are local dates in the contact's zone: the same instant is a
// holiday in one zone and not in another, and the day ends at local
// midnight. 2026-11-26 is Thanksgiving; 2026-07-04 falls on a Saturday, so
// the US observes it on Friday 3 July; 3 October is German Unity Day.
func TestHolidayOnAtDayBoundaries(t *testing.T) {
	t.Parallel()
	ny, berlin, tokyo := mustLoc(t, "America/New_York"), mustLoc(t, "Europe/Berlin"), mustLoc(t, "Asia/Tokyo")
	cases := []struct {
		codes []string
		at    string
		loc   *time.Location
		want  string
	}{
		{[]string{"US"}, "2026-11-26T04:59:59Z", ny, ""},             // 23:59:59 on the 25th in New York
		{[]string{"US"}, "2026-11-26T05:00:00Z", ny, "US"},           // 00:00 on the 26th
		{[]string{"US"}, "2026-11-27T04:59:59Z", ny, "US"},           // 23:59:59 on the 26th
		{[]string{"US"}, "2026-11-27T05:00:00Z", ny, ""},             // 00:00 on the 27th
		{[]string{"US"}, "2026-11-27T04:30:00Z", berlin, ""},         // already the 27th in Berlin
		{[]string{"US"}, "2026-11-25T15:00:00Z", tokyo, "US"},        // already the 26th in Tokyo
		{[]string{"US"}, "2026-07-03T16:00:00Z", ny, "US"},           // observed Independence Day
		{[]string{"US"}, "2026-07-04T16:00:00Z", ny, "US"},           // the actual day
		{[]string{"DE"}, "2026-10-02T21:59:59Z", berlin, ""},         // 23:59:59 on the 2nd (CEST)
		{[]string{"DE"}, "2026-10-02T22:00:00Z", berlin, "DE"},       // 00:00 on the 3rd
		{[]string{"US", "DE"}, "2026-12-26T12:00:00Z", berlin, "DE"}, // Boxing Day: Germany's, not the US's
		{[]string{"US"}, "2026-12-26T12:00:00Z", ny, ""},
		{nil, "2026-12-25T12:00:00Z", ny, ""},
	}
	for _, c := range cases {
		got, name := HolidayOn(c.codes, utc(c.at), c.loc)
		if got != c.want || (got != "" && name == "") {
			t.Errorf("HolidayOn(%v, %s in %s) = %q %q, want %q", c.codes, c.at, c.loc, got, name, c.want)
		}
	}
}

func TestWindowSkipsHolidays(t *testing.T) {
	t.Parallel()
	ny := mustLoc(t, "America/New_York")
	weekdays := Window{Days: []time.Weekday{1, 2, 3, 4, 5}, Start: 8 * 60, End: 18 * 60, Holidays: []string{"US"}}
	night := Window{Days: []time.Weekday{0, 1, 2, 3, 4, 5, 6}, Start: 22 * 60, End: 6 * 60, Holidays: []string{"US"}}
	cases := []struct {
		w    Window
		at   string
		open bool
		next string
	}{
		// Wednesday evening before Thanksgiving: the next opening is Friday 08:00, not Thursday.
		{weekdays, "2026-11-25T23:30:00Z", false, "2026-11-27T13:00:00Z"},
		{weekdays, "2026-11-26T15:00:00Z", false, "2026-11-27T13:00:00Z"},
		{weekdays, "2026-11-27T13:00:00Z", true, "2026-11-27T13:00:00Z"},
		// Without holidays the same window opens on Thursday.
		{Window{Days: weekdays.Days, Start: weekdays.Start, End: weekdays.End}, "2026-11-25T23:30:00Z", false, "2026-11-26T13:00:00Z"},
		// A night window opened on Wednesday 22:00 closes at the holiday's
		// midnight and opens again at the next midnight (still its night).
		{night, "2026-11-26T04:59:00Z", true, "2026-11-26T04:59:00Z"},
		{night, "2026-11-26T05:00:00Z", false, "2026-11-27T05:00:00Z"},
		{night, "2026-11-27T04:00:00Z", false, "2026-11-27T05:00:00Z"},
		{night, "2026-11-27T05:00:00Z", true, "2026-11-27T05:00:00Z"},
	}
	for _, c := range cases {
		open, next := c.w.Check(utc(c.at), ny)
		if open != c.open || !next.Equal(utc(c.next)) {
			t.Errorf("Check(%s) with %v = %v %s, want %v %s", c.at, c.w.Holidays, open, next.UTC().Format(time.RFC3339), c.open, c.next)
		}
	}
	if err := (Window{Days: []time.Weekday{1}, Start: 1, End: 2, Holidays: []string{"XX"}}).Validate(); err == nil {
		t.Fatal("an unknown calendar validated")
	}
}

// The holiday verdict binds before the window's, defers to the next
// opening after the holiday, and explains which holiday it is.
func TestEvaluateHoliday(t *testing.T) {
	t.Parallel()
	in := Input{
		EnrollmentState: dripdrop.EnrollmentActive, ContactTimezone: "America/New_York",
		Window:  Window{Days: []time.Weekday{1, 2, 3, 4, 5}, Start: 8 * 60, End: 18 * 60, Timezone: "UTC", Holidays: []string{"US", "DE"}},
		Adapter: Adapter{HealthState: dripdrop.HealthActive},
	}
	in.Now = utc("2026-11-26T15:00:00Z") // Thanksgiving, 10:00 in New York
	r := Evaluate(in)
	if r.Binding == nil || r.Binding.Policy != Holiday || r.Binding.Reason != "holiday" || !r.NextEligibleAt.Equal(utc("2026-11-27T13:00:00Z")) {
		t.Fatalf("Thanksgiving: %+v", r.Binding)
	}
	if v := r.Verdicts[2]; v.Policy != Holiday || v.Inputs["calendar"] != "US" || v.Inputs["holiday"] == nil || v.Inputs["local_date"] != "2026-11-26" {
		t.Fatalf("holiday verdict inputs: %+v", v)
	}
	if v := r.Verdicts[2].Scope(); v != ScopeExecution {
		t.Fatalf("holiday scope %v", v)
	}
	// The calendars apply to the contact's local date, whatever the zone:
	// Friday the 27th in Berlin is no holiday of either.
	in.Now = utc("2026-11-27T10:00:00Z")
	in.ContactTimezone = "Europe/Berlin"
	if r := Evaluate(in); r.Binding != nil {
		t.Fatalf("Friday in Berlin: %+v", r.Binding)
	}
	// Lean evaluation (the forecast) takes the same decision.
	in.Now, in.ContactTimezone, in.Lean = utc("2026-11-26T15:00:00Z"), "America/New_York", true
	if r := Evaluate(in); r.Binding == nil || r.Binding.Policy != Holiday || !r.NextEligibleAt.Equal(utc("2026-11-27T13:00:00Z")) {
		t.Fatalf("lean: %+v", r.Binding)
	}
}
