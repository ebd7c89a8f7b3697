package api

import (
	"html/template"
	"net/http"

	"github.com/dripdrop/dripdrop"
)

// OAuth2 mailbox connections (docs/mailboxes.md): the tenant's OAuth apps,
// the connect flow's start and public callback, and refresh tokens given
// through the API. Tokens and secrets never appear in a response.

func (s *Server) oauthUnavailable() error {
	return dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "OAuth2 mailbox connections are not configured on this server")
}

// oauthStart: POST /v1/adapters/{id}/oauth/start → {authorize_url}.
func (s *Server) oauthStart(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.store.GetAdapter(r.Context(), tenantOf(r), id); err != nil {
		return err
	}
	if s.cfg.OAuth == nil {
		return s.oauthUnavailable()
	}
	st, err := s.cfg.OAuth.Start(r.Context(), tenantOf(r), id)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, st)
}

// oauthToken: PUT /v1/adapters/{id}/oauth/token — a refresh token
// obtained elsewhere.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in dripdrop.OAuthTokenInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if _, err := s.store.GetAdapter(r.Context(), tenantOf(r), id); err != nil {
		return err
	}
	if s.cfg.OAuth == nil {
		return s.oauthUnavailable()
	}
	c, err := s.cfg.OAuth.StoreRefreshToken(r.Context(), tenantOf(r), id, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

var callbackPage = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · dripdrop</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1d2330}
h1{font-size:1.4rem}.ok{color:#17663a}.bad{color:#a12a2a}table{border-collapse:collapse}td{padding:.1rem .6rem .1rem 0}</style></head>
<body><h1 class="{{if .OK}}ok{{else}}bad{{end}}">{{.Title}}</h1><p>{{.Detail}}</p>
{{with .Proof}}<table>{{range .Stages}}<tr><td>{{.Stage}}</td><td>{{if .OK}}ok{{else}}failed{{end}}</td><td>{{.Code}} {{.Reply}}{{.Error}}</td></tr>{{end}}</table>{{end}}
<p><a href="{{.Back}}">Back to the dashboard</a></p></body></html>
`))

// oauthCallback: GET /oauth/callback — public: the provider sends the
// browser here. It answers an HTML page (never a token); a bad, reused or
// expired state is refused and changes nothing.
func (s *Server) oauthCallback(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if s.cfg.OAuth == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return callbackPage.Execute(w, map[string]any{"Title": "OAuth2 is not configured", "Detail": "This engine has no OAuth2 connect flow.", "Back": "/ui/"})
	}
	res := s.cfg.OAuth.Callback(r.Context(), r.URL.Query())
	back := "/ui/adapters"
	if res.TenantKey != "" {
		back = "/ui/adapters/" + res.AdapterID.String()
	}
	status := http.StatusOK
	if !res.OK && res.Proof == nil {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	return callbackPage.Execute(w, map[string]any{"OK": res.OK, "Title": res.Title, "Detail": res.Detail, "Proof": res.Proof, "Back": back})
}
