package telemetry

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated catalog table of docs/telemetry.md")

const docPath = "../docs/telemetry.md"

// TestDocsCatalog checks that docs/telemetry.md has a row for every event
// with its metadata keys, and that its table is the one CatalogMarkdown
// generates (go test ./telemetry -run DocsCatalog -update rewrites it).
func TestDocsCatalog(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- catalog:begin -->\n", "<!-- catalog:end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatal("docs/telemetry.md lacks the catalog markers")
	}
	want := CatalogMarkdown()
	if *update && string(doc[i+len(begin):j]) != want {
		doc = slices.Concat(doc[:i+len(begin)], []byte(want), doc[j:])
		j = i + len(begin) + len(want)
		if err := os.WriteFile(docPath, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := map[string]string{}
	for _, l := range strings.Split(string(doc), "\n") {
		if name, _, ok := strings.Cut(strings.TrimPrefix(l, "| `"), "` |"); ok && strings.HasPrefix(l, "| `dripdrop.") {
			rows[name] = l
		}
	}
	for _, s := range Catalog() {
		row, ok := rows[s.Name]
		switch {
		case !ok:
			t.Errorf("no row for %s", s.Name)
		case !strings.Contains(row, " | "+strings.Join(s.Metadata, ", ")+" | "):
			t.Errorf("row of %s lacks its metadata keys %v: %s", s.Name, s.Metadata, row)
		}
	}
	if string(doc[i+len(begin):j]) != want {
		t.Fatal("docs/telemetry.md's catalog table is stale: run go test ./telemetry -run DocsCatalog -update")
	}
}

// TestDocsMetrics checks that every Prometheus metric the recipe exports
// is named in docs/telemetry.md, apart from the per-event counters, which
// follow the documented naming rule.
func TestDocsMetrics(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]bool{}
	for _, name := range Events() {
		events[MetricName(name)] = true
	}
	mfs, err := gatherAll(t).Gather()
	must(t, err)
	for _, mf := range mfs {
		if !events[mf.GetName()] && !bytes.Contains(doc, []byte("`"+mf.GetName())) {
			t.Errorf("metric %s is not documented", mf.GetName())
		}
	}
	for _, want := range []string{"WithHighCardinalityLabels", "seconds", "committed", "panic", "e-mail addresses"} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("docs/telemetry.md does not mention %q", want)
		}
	}
}
