package api_test

import (
	"context"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/dripdrop/dripdrop/api"
)

// loadSpec loads and validates api/openapi.yaml with kin-openapi.
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// TestOpenAPIValid: the document validates with a real OpenAPI validator,
// and every operation (whoever added it) has an operationId and at least one
// 4xx response.
func TestOpenAPIValid(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q already used by %s", where, op.OperationID, prev)
			} else {
				ids[op.OperationID] = where
			}
			has4xx := false
			for code := range op.Responses.Map() {
				if strings.HasPrefix(code, "4") {
					has4xx = true
				}
			}
			if !has4xx {
				t.Errorf("%s: no 4xx response", where)
			}
		}
	}
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

// contractRouter is a kin-openapi router over openapi.yaml with its servers
// removed, so it matches the test server's paths on any host.
func contractRouter(t testing.TB) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
		if err != nil {
			specErr = err
			return
		}
		doc.Servers = nil
		specRouter, specErr = legacy.NewRouter(doc)
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specRouter
}

// checkContract validates a response against the operation's documented
// responses: status, content type and body schema. Requests the document
// does not describe (unknown paths or methods, which the router answers
// with 404/405 problems) are skipped: TestOpenAPIMatchesRouter covers them.
func checkContract(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	route, params, err := contractRouter(t).FindRoute(req)
	if err != nil {
		return
	}
	// JSON bodies are checked against their schemas; other media (HTML
	// pages, the YAML document, metrics text, event streams) for status and
	// content type only.
	mt, _, _ := mime.ParseMediaType(header.Get("Content-Type"))
	jsonBody := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if !jsonBody && len(body) > 0 {
		op := route.Operation
		r := op.Responses.Status(status)
		if r == nil {
			r = op.Responses.Default()
		}
		if r == nil || r.Value == nil || r.Value.Content.Get(mt) == nil {
			t.Fatalf("%s %s: response %d with Content-Type %q is not documented in openapi.yaml", req.Method, req.URL.Path, status, mt)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s: response %d does not match openapi.yaml: %v\n%s", req.Method, req.URL.Path, status, err, body)
	}
}
