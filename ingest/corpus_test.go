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
// written by ingest/testdata/gen) and reports accuracy per intent, the
// bounced or complaining recipient and the original Message-ID. The
// targets (docs/ingest.md#quality): 100 % on delivery and feedback reports
// (intent and hard/soft), ≥ 98 % overall, every stated return date right,
// the recipient of ≥ 95 % of hard bounces and the original Message-ID of
// ≥ 95 % of bounces and complaints. What the whose-failure rule makes of
// each delivery report (the rule column: whose failure, hard or soft, or no
// bounce) must agree with its label.
func TestCorpus(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "corpus")
	raw, err := os.ReadFile(filepath.Join(dir, "labels.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ n, ok int }
	per := map[string]*tally{}
	rule := map[string]*tally{}
	var rcpts, ids tally
	total, correct, dates := 0, 0, 0
	var slowest time.Duration
	slowestFile := ""
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		for len(f) < 7 {
			f = append(f, "-")
		}
		file, intent, bounce, ret, orig, wantRule, wantRcpt := f[0], f[1], f[2], f[3], f[4], f[5], f[6]
		// The rule decides what a delivery report means (docs/ingest.md):
		// a success, relayed or delayed report is no bounce; 5.2.2 over
		// quota is soft.
		switch wantRule {
		case "none":
			intent, bounce = string(ingest.AutoReply), "-"
		case "soft":
			bounce = "soft"
		}
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		m, err := ingest.ParseRaw(b, time.Time{})
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		c := ingest.Classify(m)
		if d := time.Since(start); d > slowest {
			slowest, slowestFile = d, file
		}
		ok := string(c.Intent) == intent
		if ok && intent == "bounce" && bounce != "-" && c.Bounce != bounce {
			ok = false
			t.Errorf("%s: bounce type %s, want %s (status %q, diagnostic %q)", file, c.Bounce, bounce, c.Status, c.DiagnosticCode)
		}
		if (intent == "bounce" || intent == "complaint") && orig != "-" {
			ids.n++
			found := c.OriginalMessageID == orig
			for _, cand := range m.Candidates() {
				found = found || cand.ID == orig
			}
			if found {
				ids.ok++
			} else {
				ok = false
				t.Errorf("%s: original Message-ID %q not found (classified %q, candidates %v)", file, orig, c.OriginalMessageID, m.Candidates())
			}
		}
		if intent == "bounce" && bounce == "hard" || intent == "complaint" && wantRcpt != "-" {
			rcpts.n++
			if c.Recipient != "" && (wantRcpt == "-" || strings.EqualFold(c.Recipient, wantRcpt)) {
				rcpts.ok++
			} else {
				ok = false
				t.Errorf("%s: recipient %q, want %q", file, c.Recipient, wantRcpt)
			}
		}
		if wantRule != "-" {
			// A hard bounce of the prospect only for "recipient"; the
			// prospect's soft bounce for "soft"; the sender's failure for
			// "sender"; no bounce at all for "none".
			bounced := c.Intent == ingest.Bounce
			agree := map[string]bool{
				"recipient": bounced && c.Fault == ingest.FaultRecipient && c.Bounce == "hard",
				"soft":      bounced && c.Fault == ingest.FaultRecipient && c.Bounce == "soft",
				"sender":    bounced && c.Fault == ingest.FaultSender,
				"none":      !bounced,
			}[wantRule]
			if !agree {
				t.Errorf("%s: rule %s, classified %s/%s/%s", file, wantRule, c.Intent, c.Bounce, c.Fault)
			}
			if rule[wantRule] == nil {
				rule[wantRule] = &tally{}
			}
			rule[wantRule].n++
			if agree {
				rule[wantRule].ok++
			}
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
		if string(c.Intent) != intent {
			t.Errorf("%s: classified %s (%s), labelled %s", file, c.Intent, c.Signal, intent)
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
	pct := func(p tally) float64 { return 100 * float64(p.ok) / float64(max(p.n, 1)) }
	names := make([]string, 0, len(per))
	for k := range per {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := per[k]
		t.Logf("%-12s %3d/%3d  %.1f %%", k, p.ok, p.n, pct(*p))
		if (k == "bounce" || k == "complaint") && p.ok != p.n {
			t.Errorf("%s accuracy %.1f %%, want 100 %%", k, pct(*p))
		}
	}
	t.Logf("overall      %3d/%3d  %.1f %% (%d stated return dates checked)", correct, total, 100*float64(correct)/float64(total), dates)
	t.Logf("recipient    %3d/%3d  %.1f %% (hard bounces and complaints that name one)", rcpts.ok, rcpts.n, pct(rcpts))
	t.Logf("original id  %3d/%3d  %.1f %% (bounces and complaints)", ids.ok, ids.n, pct(ids))
	for _, k := range []string{"recipient", "soft", "sender", "none"} {
		if p := rule[k]; p != nil {
			t.Logf("rule %-9s %3d/%3d  %.1f %% agree", k, p.ok, p.n, pct(*p))
		}
	}
	// 10 ms a message is the rule (BenchmarkCorpus); under -race and next
	// to the parallel 10 MiB tests only a runaway is an error here.
	t.Logf("slowest      %v (%s)", slowest, slowestFile)
	if slowest > time.Second {
		t.Errorf("%s took %v", slowestFile, slowest)
	}
	if total < 400 {
		t.Errorf("corpus has %d messages, want at least 400", total)
	}
	if float64(correct) < 0.98*float64(total) {
		t.Errorf("overall accuracy %.1f %%, want ≥ 98 %%", 100*float64(correct)/float64(total))
	}
	if pct(rcpts) < 95 {
		t.Errorf("recipient found for %.1f %%, want ≥ 95 %%", pct(rcpts))
	}
	if pct(ids) < 95 {
		t.Errorf("original Message-ID found for %.1f %%, want ≥ 95 %%", pct(ids))
	}
}

// BenchmarkCorpus parses and classifies every corpus message once per
// iteration; ns/op divided by the corpus size is the time per message.
func BenchmarkCorpus(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.eml"))
	var raws [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, raw)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, raw := range raws {
			if m, err := ingest.ParseRaw(raw, time.Time{}); err == nil {
				ingest.Classify(m)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(raws)), "ns/message")
}
