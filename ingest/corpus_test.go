package ingest_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/ingest"
)

// TestCorpus classifies the labelled corpus (ingest/testdata/corpus,
// written by ingest/testdata/gen) and reports accuracy per intent. docs/ingest.md:
// 100 % on bounces and complaints (intent, hard/soft and the original
// Message-ID), ≥ 98 % overall, and every stated return date right.
func TestCorpus(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "corpus")
	raw, err := os.ReadFile(filepath.Join(dir, "labels.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ n, ok int }
	per := map[string]*tally{}
	total, correct, dates := 0, 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		file, intent, bounce, ret, orig := f[0], f[1], f[2], f[3], f[4]
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ingest.ParseRaw(b, time.Time{})
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		c := ingest.Classify(m)
		ok := string(c.Intent) == intent
		if ok && intent == "bounce" && c.Bounce != bounce {
			ok = false
			t.Errorf("%s: bounce type %s, want %s (status %q, diagnostic %q)", file, c.Bounce, bounce, c.Status, c.DiagnosticCode)
		}
		if ok && (intent == "bounce" || intent == "complaint") && orig != "-" {
			found := false
			for _, cand := range m.Candidates() {
				found = found || cand.ID == orig
			}
			if !found && c.OriginalMessageID != orig {
				ok = false
				t.Errorf("%s: original Message-ID %q not found (candidates %v)", file, orig, m.Candidates())
			}
		}
		if ok && intent == "bounce" && c.Bounce == "hard" && c.Recipient == "" {
			ok = false
			t.Errorf("%s: hard bounce without the failed recipient", file)
		}
		if ok && intent == "ooo" {
			got := ""
			if c.HasReturnDate {
				got = c.ReturnDate.String()
			}
			want := ret
			if want == "-" {
				want = ""
			} else {
				dates++
			}
			if got != want {
				ok = false
				t.Errorf("%s: return date %q, want %q", file, got, want)
			}
		}
		if !ok && string(c.Intent) != intent {
			t.Logf("%s: classified %s (%s), labelled %s", file, c.Intent, c.Signal, intent)
		}
		if per[intent] == nil {
			per[intent] = &tally{}
		}
		per[intent].n++
		total++
		if ok {
			per[intent].ok++
			correct++
		}
	}
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := per[k]
		t.Logf("%-12s %3d/%3d  %.1f %%", k, p.ok, p.n, 100*float64(p.ok)/float64(p.n))
		if (k == "bounce" || k == "complaint") && p.ok != p.n {
			t.Errorf("%s accuracy %.1f %%, want 100 %%", k, 100*float64(p.ok)/float64(p.n))
		}
	}
	acc := float64(correct) / float64(total)
	t.Logf("overall      %3d/%3d  %.1f %% (%d stated return dates checked)", correct, total, 100*acc, dates)
	if total < 200 {
		t.Errorf("corpus has %d messages, want at least 200", total)
	}
	if acc < 0.98 {
		t.Errorf("overall accuracy %.1f %%, want ≥ 98 %%", 100*acc)
	}
}
