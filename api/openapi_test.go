package api_test

import (
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/api"
)

type openAPIDoc struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]map[string]any `yaml:"schemas"`
	} `yaml:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRouter: every route the router serves is documented,
// and every documented operation is served.
func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	served := map[string]bool{}
	for _, rt := range api.New(api.Config{}).Routes() {
		served[rt.Method+" "+rt.Path] = true
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("router and openapi.yaml differ\nserved but undocumented: %v\ndocumented but not served: %v", missing, extra)
	}
}

// TestOpenAPIErrorCodes: the documented code enum lists every code the
// engine can return.
func TestOpenAPIErrorCodes(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	props := doc.Components.Schemas["Problem"]["properties"].(map[string]any)
	enum := props["code"].(map[string]any)["enum"].([]any)
	have := map[string]bool{}
	for _, c := range enum {
		have[c.(string)] = true
	}
	for _, c := range dripdrop.ErrorCodes() {
		if !have[c] {
			t.Errorf("error code %q is not documented in openapi.yaml", c)
		}
	}
	if len(have) != len(dripdrop.ErrorCodes()) {
		t.Errorf("openapi.yaml documents %d codes, the engine has %d", len(have), len(dripdrop.ErrorCodes()))
	}
}
