package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dripdrop/dripdrop"
)

// eCodes reads every ECode… constant declared in the root package's
// errors.go, so a code added there without a status row fails here.
func eCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "ECode") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", n.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				codes[n.Name] = v
			}
		}
	}
	if len(codes) == 0 {
		t.Fatal("no ECode constants found in errors.go")
	}
	return codes
}

// TestStatusTableCoversEveryCode: every ECode constant has exactly one row
// in the status table, is listed by dripdrop.ErrorCodes (which the problem
// pages and the OpenAPI enum follow), and the table has no other rows.
func TestStatusTableCoversEveryCode(t *testing.T) {
	codes := eCodes(t)
	listed := dripdrop.ErrorCodes()
	seen := map[string]bool{}
	for name, code := range codes {
		if _, ok := codeStatus[code]; !ok {
			t.Errorf("dripdrop.%s (%q) has no row in codeStatus", name, code)
		}
		if !slices.Contains(listed, code) {
			t.Errorf("dripdrop.%s (%q) is missing from dripdrop.ErrorCodes", name, code)
		}
		seen[code] = true
	}
	for code, status := range codeStatus {
		if !seen[code] {
			t.Errorf("codeStatus row %q is not an ECode constant", code)
		}
		if status < 400 || status > 599 {
			t.Errorf("codeStatus[%q] = %d, not an error status", code, status)
		}
	}
	if len(listed) != len(codes) {
		t.Errorf("dripdrop.ErrorCodes lists %d codes, errors.go declares %d", len(listed), len(codes))
	}
	if got := problemStatus("no_such_code"); got != 500 {
		t.Errorf("unknown code: status %d, want 500", got)
	}
}

// TestOpenAPIProblemStatuses: where openapi.yaml names a code in the
// description of a problem response, the response's status is the one the
// table answers that code with.
func TestOpenAPIProblemStatuses(t *testing.T) {
	type operation struct {
		Responses map[string]struct {
			Description string         `yaml:"description"`
			Content     map[string]any `yaml:"content"`
		} `yaml:"responses"`
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, c := range dripdrop.ErrorCodes() {
		known[c] = true
	}
	word := regexp.MustCompile(`[a-z][a-z0-9_]*`)
	checked := 0
	for path, ops := range doc.Paths {
		for method, node := range ops {
			if !slices.Contains([]string{"get", "put", "post", "patch", "delete"}, method) {
				continue
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			for key, resp := range op.Responses {
				status, err := strconv.Atoi(key)
				if err != nil || resp.Content["application/problem+json"] == nil {
					continue
				}
				for _, w := range word.FindAllString(resp.Description, -1) {
					if !known[w] {
						continue
					}
					checked++
					if got := problemStatus(w); got != status {
						t.Errorf("%s %s: openapi.yaml documents %s under %d, the API answers it with %d", strings.ToUpper(method), path, w, status, got)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no problem code found in openapi.yaml's response descriptions")
	}
}
