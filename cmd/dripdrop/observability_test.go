package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop/telemetry"
)

// scrape returns the metric families of /metrics and the whole text.
func scrape(t *testing.T, base string) (map[string]string, string) {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	families := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			families[f[2]] = f[3]
		}
	}
	return families, string(b)
}

// exported says whether a name used in a query is a series the engine
// exports (histograms also as _bucket, _sum, _count).
func exported(families map[string]string, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && families[base] == "histogram" {
			return true
		}
	}
	return false
}

var metricName = regexp.MustCompile(`\bdripdrop_[a-z0-9_]+`)

// TestMetricsAndObservabilityKit: /metrics of a running engine has the
// build info, HTTP metrics by route template, the database gauges and every
// catalog counter at zero before its first event; the Grafana dashboard and
// the alert rules query only metrics the engine exports.
func TestMetricsAndObservabilityKit(t *testing.T) {
	t.Parallel()
	d := startDev(t, t.TempDir(), "metrics-admin")
	ids := demoIDs(t, d.base, d.key)
	req, _ := http.NewRequest("GET", d.base+"/v1/enrollments/"+ids["enrollment"], nil)
	req.Header.Set("Authorization", "Bearer "+d.key)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET enrollment: %v", err)
	} else {
		res.Body.Close()
	}
	families, text := scrape(t, d.base)
	for _, want := range []string{
		`dripdrop_build_info{commit="`,
		`dripdrop_http_requests_total{code="200",method="GET",route="/v1/enrollments/{id}"} 1`,
		`dripdrop_http_request_duration_seconds_count{method="GET",route="/v1/enrollments/{id}"} 1`,
		`dripdrop_enrollments{state="active"} `,
		`dripdrop_adapters{health_state="active"} 2`,
		`dripdrop_due_backlog `,
		`dripdrop_gauges_up 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, ids["enrollment"]) {
		t.Error("an id became a label value: routes must be templates")
	}
	for _, s := range telemetry.Catalog() {
		if families[telemetry.MetricName(s.Name)] != "counter" {
			t.Errorf("%s is not exported before its first event", telemetry.MetricName(s.Name))
		}
		if s.Kind == telemetry.Threshold && !strings.HasSuffix(telemetry.RateMetricName(s.Name), "_ratio") {
			t.Errorf("threshold gauge %s is not named _ratio", telemetry.RateMetricName(s.Name))
		}
	}

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile("../../deploy/grafana/dashboards/dripdrop.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("dashboard JSON: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("dashboard panel %q queries no dripdrop metric: %s", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exported(families, n) {
					t.Errorf("dashboard panel %q queries %s, which the engine does not export", p.Title, n)
				}
			}
		}
	}
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		if !exported(families, n) {
			t.Errorf("alerts.yml uses %s, which the engine does not export", n)
		}
	}
}

// TestAlertRulesPromtool runs `promtool check rules` on the alert rules.
func TestAlertRulesPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus); .ci/run installs it. Skipping `promtool check rules deploy/prometheus/alerts.yml`")
	}
	out, err := exec.Command(promtool, "check", "rules", "../../deploy/prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
