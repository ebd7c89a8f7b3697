package api

import (
	"html/template"
	"net/http"
	"slices"

	"github.com/dripdrop/dripdrop"
)

// problemTypeBase prefixes the code in a problem document's `type`; the
// engine serves that URI (errorPage), so the type always resolves.
const problemTypeBase = "/errors/"

var errorPageTmpl = template.Must(template.New("e").Parse(`<!doctype html>
<html lang="en"><meta charset="utf-8"><title>{{.Code}}: {{.Title}}</title>
<h1>{{.Title}}</h1>
<p>Problem type <code>{{.Code}}</code>, HTTP status {{.Status}}.</p>
<p>dripdrop answers errors as <code>application/problem+json</code> with <code>type</code> (this page),
<code>title</code>, <code>status</code>, <code>code</code>, <code>detail</code> (what exactly went wrong) and
<code>field</code> (the request field or header concerned, when there is one).</p>
{{if eq .Code "unsupported_media_type"}}<p>Send the header <code>Content-Type: application/json</code>
(or <code>text/csv</code> for <code>POST /v1/enrollments/batch</code>).</p>{{end}}
</html>
`))

// errorPage documents one problem type at /errors/{code}.
func errorPage(w http.ResponseWriter, r *http.Request) error {
	code := r.PathValue("code")
	if !slices.Contains(dripdrop.ErrorCodes(), code) {
		return dripdrop.NotFound("problem type")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	return errorPageTmpl.Execute(w, map[string]any{"Code": code, "Title": dripdrop.ErrorTitle(code), "Status": problemStatus(code)})
}
