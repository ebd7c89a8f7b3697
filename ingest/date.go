package ingest

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Date is a calendar day without a time or zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return d.In(time.UTC, 0).Format("2006-01-02") }

// In returns hour:00 on that day in loc.
func (d Date) In(loc *time.Location, hour int) time.Time {
	return time.Date(d.Year, d.Month, d.Day, hour, 0, 0, 0, loc)
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, bool) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return Date{}, false
	}
	return Date{t.Year(), t.Month(), t.Day()}, true
}

// Languages whose numeric dates and month names are understood.
const (
	langEN = "en"
	langDE = "de"
	langFR = "fr"
	langES = "es"
	langPT = "pt"
	langNL = "nl"
	langSV = "sv"
)

// months maps month names and abbreviations of the seven languages (lower
// case, with and without accents) to months.
var months = func() map[string]time.Month {
	m := map[string]time.Month{}
	add := func(mo time.Month, names ...string) {
		for _, n := range names {
			m[n] = mo
		}
	}
	add(time.January, "january", "jan", "januar", "jänner", "janvier", "janv", "enero", "ene", "janeiro", "januari")
	add(time.February, "february", "feb", "februar", "février", "fevrier", "févr", "fevr", "febrero", "fevereiro", "fev", "februari")
	add(time.March, "march", "mar", "märz", "maerz", "mär", "mars", "marzo", "março", "marco", "maart", "mrt")
	add(time.April, "april", "apr", "avril", "avr", "abril", "abr")
	add(time.May, "may", "mai", "mayo", "maio", "mei", "maj")
	add(time.June, "june", "jun", "juni", "juin", "junio", "junho")
	add(time.July, "july", "jul", "juli", "juillet", "juil", "julio", "julho")
	add(time.August, "august", "aug", "août", "aout", "agosto", "ago", "augustus", "augusti")
	add(time.September, "september", "sep", "sept", "septembre", "septiembre", "setiembre", "setembro", "set")
	add(time.October, "october", "oct", "oktober", "okt", "octobre", "octubre", "outubro", "out")
	add(time.November, "november", "nov", "novembre", "noviembre", "novembro")
	add(time.December, "december", "dec", "dezember", "dez", "décembre", "decembre", "déc", "diciembre", "dic", "dezembro")
	return m
}()

// monthFirstExcluded are abbreviations too ambiguous to start a date
// ("out 3 days", "set 3 meetings").
var monthFirstExcluded = map[string]bool{"out": true, "set": true, "mar": false, "ago": true, "dez": false}

var (
	isoDate = regexp.MustCompile(`\b(\d{4})-(\d{1,2})-(\d{1,2})\b`)
	// 3.12.2026, 3.12., 03/12/2026, 3/12, 3-12-2026
	numDate = regexp.MustCompile(`\b(\d{1,2})([./-])(\d{1,2})(?:([./-])(\d{4}|\d{2})\b|(\.))?`)
	// 3 December, 3. Dezember 2026, 3 de diciembre de 2026, 3rd of December, 1er décembre
	// (month names are any word, looked up in months afterwards: one small
	// automaton instead of an alternation of every name)
	dayMonth = regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th|er|re|e|º|ª|o)?\.?\s*(?:de\s+|of\s+)?(\p{L}{3,10})\.?(?:,?\s*(?:de\s+)?(\d{4}))?(?:[^\p{L}]|$)`)
	// December 3, December 3rd, 2026
	monthDay = regexp.MustCompile(`(?i)(?:^|[^\p{L}])(\p{L}{3,10})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4}))?`)
)

// Cues before a date: "back on", "until", "through" (inclusive: the day
// after is the return day) in the seven languages.
var (
	inclusiveCue      = regexp.MustCompile(`(?i)(through|thru|up to and including|t/m|t\.m\.|tot en met|till och med|t\.o\.m\.|tom\b|einschließlich|einschliesslich|inclus|inclusive|inclusief)[^.\n]{0,25}$`)
	returnCue         = regexp.MustCompile(`(?i)(back|return|returning|returns|zurück|wieder|ab dem|ab|retour|reviens|reviendrai|regreso|regresaré|regresare|vuelta|volveré|volvere|retorno|retornarei|regresso|de volta|voltarei|terug|weer|vanaf|tillbaka|åter|from)[^.\n]{0,30}$`)
	trailingInclusive = regexp.MustCompile(`(?i)^[\s,(]*(inclus|inclusive|included|einschließlich|einschliesslich|inclusief|inklusive|incluido|incluído)`)
	untilCue          = regexp.MustCompile(`(?i)(until|till|til|bis|jusqu|hasta|até|ate\b|tot|fram till|t\.o\.m|to\b|au\b|–|-)[^.\n]{0,20}$`)
)

type dateHit struct {
	pos  int
	end  int
	date Date
	cue  int // 0 none, 1 until, 2 return, 3 inclusive
	// fixed: the cue came from a range's connector, not the text before.
	fixed bool
}

var (
	// "July 10-31", "July 10 through 31, 2026" (month first).
	monthRange = regexp.MustCompile(`(?:^|[^\p{L}])(\p{L}{3,10})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\s*(-|–|—|to|through|thru|until|till)\s*(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4}))?`)
	// "10-31 July", "10.-31. Juli", "from 10 to 31 July", "du 10 au 31
	// juillet", "del 10 al 31 de julio", "10 t/m 31 juli" (day first).
	dayRange = regexp.MustCompile(`\b(\d{1,2})(?:st|nd|rd|th|er|e|º)?\.?\s*(-|–|—|to|through|thru|au|al|a|bis|tot en met|tot|t/m|t\.m\.|till och med|t\.o\.m\.|tom|till|until)\s*(?:le\s+|el\s+|den\s+|zum\s+|dem\s+)?(\d{1,2})(?:st|nd|rd|th|er|e|º)?\.?\s*(?:de\s+|of\s+)?(\p{L}{3,10})\.?(?:,?\s*(?:de\s+)?(\d{4}))?(?:[^\p{L}]|$)`)
	// Range connectors that include the last day: back the day after.
	inclusiveConnector = regexp.MustCompile(`^(through|thru|tot en met|t/m|t\.m\.|till och med|t\.o\.m\.|tom)$`)
	// Signals that English is British (day-first numbers) or American.
	ukSignal = regexp.MustCompile(`(\bwhilst\b|\borganisation|\bprogramme\b|\bfavour|\bcolour|\bcentre\b|\brealise|\bapologise|\bunited kingdom\b|\blondon\b|\bmanchester\b|\bedinburgh\b|\+44[ (]|\.co\.uk\b|\.ac\.uk\b|\bbank holiday\b|\bmobile: ?07|\bannual leave\b)`)
	usSignal = regexp.MustCompile(`(\bcolor\b|\bcenter\b|\borganization|\bfavor\b|\brealize|\+1[ (-]\d{3}|\(\d{3}\) \d{3}-\d{4}|\b(est|edt|pst|pdt|cst|cdt)\b|\bthanksgiving\b|\bmemorial day\b|\blabor day\b|\bcell: )`)
)

// monthFirstNumbers decides how an English text writes numeric dates with
// slashes (docs/ingest.md, "Return dates"): a number above 12 in one of its
// numeric dates settles it (24/11 is day-first, 11/24 month-first); else
// a Content-Language of en-GB (and the other British locales) or en-US;
// else British or American spelling and places; else how the text writes
// dates with month names ("30 November" is British, "November 30"
// American); else month-first. Other languages are always day-first.
// The patterns read lower-cased text.
func monthFirstNumbers(lang, contentLanguage, lower string, nums [][]int, dayFirstNamed, monthFirstNamed int) bool {
	if len(nums) == 0 {
		return false // nothing to read either way
	}
	dmy, mdy := 0, 0
	for _, m := range nums {
		if m[10] < 0 && lower[m[4]:m[5]] != "/" {
			continue
		}
		a, _ := strconv.Atoi(lower[m[2]:m[3]])
		b, _ := strconv.Atoi(lower[m[6]:m[7]])
		switch {
		case a > 12 && b <= 12:
			dmy++
		case b > 12 && a <= 12:
			mdy++
		}
	}
	switch {
	case dmy > mdy:
		return false
	case mdy > dmy:
		return true
	case lang != langEN:
		return false
	}
	switch cl := strings.ToLower(strings.TrimSpace(contentLanguage)); {
	case strings.HasPrefix(cl, "en-us"):
		return true
	case strings.HasPrefix(cl, "en-gb") || strings.HasPrefix(cl, "en-ie") || strings.HasPrefix(cl, "en-au") || strings.HasPrefix(cl, "en-nz") || strings.HasPrefix(cl, "en-za") || strings.HasPrefix(cl, "en-in"):
		return false
	case cl != "" && !strings.HasPrefix(cl, "en"):
		return false
	}
	uk, us := ukSignal.MatchString(lower), usSignal.MatchString(lower)
	switch {
	case uk && !us:
		return false
	case us && !uk:
		return true
	case dayFirstNamed > monthFirstNamed:
		return false
	}
	return true
}

// vocab are short function words of each language.
var vocab = map[string][]string{
	langEN: {"the", "i", "am", "will", "be", "back", "office", "until", "and", "my", "on", "out", "of", "with", "please"},
	langDE: {"ich", "bin", "bis", "und", "der", "die", "das", "im", "nicht", "zum", "mit", "wieder", "sie", "ihre", "büro"},
	langFR: {"je", "suis", "le", "la", "les", "jusqu'au", "jusqu", "et", "du", "de", "vous", "bureau", "absent", "absente", "retour"},
	langES: {"estoy", "hasta", "el", "los", "las", "y", "del", "fuera", "oficina", "su", "estaré", "mi", "correo", "gracias", "por"},
	langPT: {"estou", "até", "o", "os", "e", "do", "da", "fora", "escritório", "seu", "estarei", "meu", "obrigado", "obrigada", "não"},
	langNL: {"ik", "ben", "tot", "en", "met", "het", "niet", "op", "kantoor", "afwezig", "weer", "uw", "mijn", "bent", "van"},
	langSV: {"jag", "är", "till", "och", "på", "inte", "med", "kontoret", "tillbaka", "din", "min", "frånvarande", "åter", "hälsningar", "tack"},
}

// vocabIndex maps a word to the languages whose vocabulary has it.
var vocabIndex = func() map[string][]string {
	index := map[string][]string{}
	for lang, ws := range vocab {
		for _, w := range ws {
			index[w] = append(index[w], lang)
		}
	}
	return index
}()

// detectLanguage guesses which of the seven languages a text is in, from
// short function words; English when unsure.
func detectLanguage(text string) string {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r > 127 || r == '\'')
	})
	score := map[string]int{}
	for i, w := range words {
		if i > 400 {
			break
		}
		for _, lang := range vocabIndex[w] {
			score[lang]++
		}
	}
	best, bestScore := langEN, 0
	for _, lang := range []string{langEN, langDE, langFR, langES, langPT, langNL, langSV} {
		if score[lang] > bestScore {
			best, bestScore = lang, score[lang]
		}
	}
	return best
}

// ReturnDate finds the day an out-of-office sender says they are back,
// from text (subject and body). ref is when the message was received: it
// settles dates written without a year (this year's unless that is more
// than 60 days past, then next year's: "back on 5 January" in December),
// and dates before ref or more than a year after it are ignored. Numeric dates are read day-first except in English
// with slashes (month-first, as in 12/3/2026), and a date after an
// inclusive cue ("through", "t/m", "till och med") means back the day after.
// Among several dates, the latest one after a cue wins, else the latest.
func ReturnDate(text string, ref time.Time) (Date, bool) {
	return returnDate(text, ref, "")
}

// returnDate is ReturnDate with the message's Content-Language (or "").
func returnDate(text string, ref time.Time, contentLanguage string) (Date, bool) {
	text = truncate(text, 64<<10)
	lower := strings.ToLower(text)
	lang := detectLanguage(lower)
	var hits []dateHit
	dayFirstNamed, monthFirstNamed := 0, 0 // "30 November" / "November 30"
	covered := make([]bool, len(lower)+1)
	mark := func(a, b int) bool {
		for i := a; i < b && i < len(covered); i++ {
			if covered[i] {
				return false
			}
		}
		for i := a; i < b && i < len(covered); i++ {
			covered[i] = true
		}
		return true
	}
	add := func(pos, end, y int, mo time.Month, d int) {
		if !mark(pos, end) {
			return
		}
		date, ok := resolve(y, mo, d, ref)
		if !ok {
			return
		}
		hits = append(hits, dateHit{pos: pos, end: end, date: date})
	}
	addRange := func(pos, end int, connector, day string, mo time.Month, lower string, ys, ye int) {
		first := len(hits)
		d, _ := strconv.Atoi(day)
		y := 0
		if ys >= 0 {
			y, _ = strconv.Atoi(lower[ys:ye])
		}
		add(pos, end, y, mo, d)
		if len(hits) == first {
			return
		}
		hits[first].cue = 1
		if inclusiveConnector.MatchString(connector) {
			hits[first].cue = 3
		}
		hits[first].fixed = true
	}
	// Ranges first ("July 10-31", "10.-31. Juli", "du 10 au 31 juillet"):
	// the month is written once, and the end of the range is the day
	// read (like "until"; "through"/"t/m"/"till och med" mean back the
	// day after).
	for _, m := range monthRange.FindAllStringSubmatchIndex(lower, 20) {
		name := lower[m[2]:m[3]]
		mo, isMonth := months[name]
		if !isMonth || monthFirstExcluded[name] {
			continue
		}
		addRange(m[2], m[1], lower[m[6]:m[7]], lower[m[8]:m[9]], mo, lower, m[10], m[11])
	}
	for _, m := range dayRange.FindAllStringSubmatchIndex(lower, 20) {
		mo, isMonth := months[lower[m[8]:m[9]]]
		if !isMonth {
			continue
		}
		addRange(m[2], m[1], lower[m[4]:m[5]], lower[m[6]:m[7]], mo, lower, m[10], m[11])
	}
	for _, m := range isoDate.FindAllStringSubmatchIndex(lower, 50) {
		y, _ := strconv.Atoi(lower[m[2]:m[3]])
		mo, _ := strconv.Atoi(lower[m[4]:m[5]])
		d, _ := strconv.Atoi(lower[m[6]:m[7]])
		add(m[0], m[1], y, time.Month(mo), d)
	}
	for _, m := range dayMonth.FindAllStringSubmatchIndex(lower, 50) {
		mo, isMonth := months[lower[m[4]:m[5]]]
		if !isMonth {
			continue
		}
		d, _ := strconv.Atoi(lower[m[2]:m[3]])
		y := 0
		if m[6] >= 0 {
			y, _ = strconv.Atoi(lower[m[6]:m[7]])
		}
		before := len(hits)
		add(m[0], m[1], y, mo, d)
		if len(hits) > before {
			dayFirstNamed++
		}
	}
	for _, m := range monthDay.FindAllStringSubmatchIndex(lower, 50) {
		name := lower[m[2]:m[3]]
		if _, isMonth := months[name]; !isMonth || monthFirstExcluded[name] {
			continue
		}
		d, _ := strconv.Atoi(lower[m[4]:m[5]])
		y := 0
		if m[6] >= 0 {
			y, _ = strconv.Atoi(lower[m[6]:m[7]])
		}
		before := len(hits)
		add(m[2], m[1], y, months[name], d)
		if len(hits) > before {
			monthFirstNamed++
		}
	}
	nums := numDate.FindAllStringSubmatchIndex(lower, 50)
	monthFirst := monthFirstNumbers(lang, contentLanguage, lower, nums, dayFirstNamed, monthFirstNamed)
	for _, m := range nums {
		sep := lower[m[4]:m[5]]
		hasYear := m[10] >= 0
		if !hasYear && !(sep == "." && m[12] >= 0) && sep != "/" {
			continue // "10-12" or "10.30" is not a date
		}
		if hasYear && lower[m[8]:m[9]] != sep {
			continue
		}
		a, _ := strconv.Atoi(lower[m[2]:m[3]])
		b, _ := strconv.Atoi(lower[m[6]:m[7]])
		y := 0
		if hasYear {
			y, _ = strconv.Atoi(lower[m[10]:m[11]])
			if y < 100 {
				y += 2000
			}
		}
		d, mo := a, b
		if monthFirst && sep == "/" && a <= 12 {
			d, mo = b, a
		}
		if mo > 12 && d <= 12 {
			d, mo = mo, d
		}
		add(m[0], m[1], y, time.Month(mo), d)
	}
	if len(hits) == 0 {
		return Date{}, false
	}
	for i := range hits {
		before := lower[max(0, hits[i].pos-60):hits[i].pos]
		switch {
		case hits[i].fixed && hits[i].cue == 3:
		case hits[i].fixed && inclusiveCue.MatchString(before):
			hits[i].cue = 3
		case hits[i].fixed:
		case inclusiveCue.MatchString(before):
			hits[i].cue = 3
		case returnCue.MatchString(before):
			hits[i].cue = 2
		case untilCue.MatchString(before):
			hits[i].cue = 1
		}
		if trailingInclusive.MatchString(lower[hits[i].end:min(len(lower), hits[i].end+20)]) {
			hits[i].cue = 3
		}
		if hits[i].cue == 3 {
			hits[i].date = hits[i].date.addDays(1)
		}
	}
	best := -1
	for i, h := range hits {
		if best < 0 || better(h, hits[best]) {
			best = i
		}
	}
	return hits[best].date, true
}

// better prefers a date after a cue, then the later date.
func better(h, b dateHit) bool {
	if (h.cue > 0) != (b.cue > 0) {
		return h.cue > 0
	}
	return h.date.after(b.date)
}

func (d Date) after(o Date) bool { return d.In(time.UTC, 0).After(o.In(time.UTC, 0)) }

func (d Date) addDays(n int) Date {
	t := d.In(time.UTC, 12).AddDate(0, 0, n)
	return Date{t.Year(), t.Month(), t.Day()}
}

// resolve validates a date and fills in a missing year relative to ref.
func resolve(y int, mo time.Month, d int, ref time.Time) (Date, bool) {
	if mo < 1 || mo > 12 || d < 1 || d > 31 {
		return Date{}, false
	}
	refDay := Date{ref.Year(), ref.Month(), ref.Day()}
	if y == 0 {
		y = ref.Year()
		if (Date{y, mo, d}).addDays(60).In(time.UTC, 0).Before(refDay.In(time.UTC, 0)) {
			y++
		}
	}
	if y < 1970 || y > 9999 {
		return Date{}, false
	}
	t := time.Date(y, mo, d, 12, 0, 0, 0, time.UTC)
	if t.Day() != d || t.Month() != mo {
		return Date{}, false // 31 November
	}
	date := Date{y, mo, d}
	if date.In(time.UTC, 0).Before(refDay.In(time.UTC, 0)) || t.After(ref.AddDate(1, 0, 0)) {
		return Date{}, false
	}
	return date, true
}

// Rescheduling bounds for out-of-office replies: without a stated return
// date, 7 days; never more than 30 (docs/ingest.md#what-each-intent-does).
const (
	DefaultOOODays = 7
	MaxOOODays     = 30
	OOOHour        = 9
)

// ReturnAt is when pending executions move to after an out-of-office
// reply: 09:00 in loc on the return date, or DefaultOOODays after now when
// no date was given; never more than MaxOOODays after now.
func ReturnAt(d Date, ok bool, loc *time.Location, now time.Time) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	if !ok {
		local := now.In(loc).AddDate(0, 0, DefaultOOODays)
		d = Date{local.Year(), local.Month(), local.Day()}
	}
	at := d.In(loc, OOOHour)
	if limit := now.AddDate(0, 0, MaxOOODays); at.After(limit) {
		at = limit
	}
	return at
}
