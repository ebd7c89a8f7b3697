package ui

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// connectButtons are the adapter page's OAuth2 actions
// (docs/mailboxes.md): an oauth2 adapter gets "Connect <provider>" until
// it is connected, then "Reconnect"; an smtp adapter that logs in with a
// password gets "Connect Google" and "Connect Microsoft" for the tenant's
// apps of those providers, which switch it to oauth2 on that app's server.
func (h *Handler) connectButtons(r *http.Request, tenant string, a dripdrop.Adapter) ([]connectButton, error) {
	if h.cfg.OAuthStart == nil || a.Provider != "smtp" {
		return nil, nil
	}
	if a.Auth == dripdrop.AuthOAuth2 && a.OAuthAppID != nil {
		label := "Reconnect"
		if a.OAuth != nil && a.OAuth.State == dripdrop.TokenNotConnected {
			label = "Connect " + providerName(a.OAuth.Provider)
		}
		return []connectButton{{Label: label, AppID: *a.OAuthAppID}}, nil
	}
	apps, _, err := h.store.ListOAuthApps(r.Context(), tenant, db.Page{Limit: maxListed})
	if err != nil {
		return nil, err
	}
	var out []connectButton
	seen := map[string]bool{}
	for _, p := range []string{dripdrop.OAuthGoogle, dripdrop.OAuthMicrosoft} {
		for _, app := range apps {
			if app.Provider == p && !seen[p] {
				seen[p] = true
				out = append(out, connectButton{Label: "Connect " + providerName(p), AppID: app.ID})
			}
		}
	}
	return out, nil
}

func providerName(p string) string {
	switch p {
	case dripdrop.OAuthGoogle:
		return "Google"
	case dripdrop.OAuthMicrosoft:
		return "Microsoft"
	}
	return "mailbox"
}

// connect starts the connect flow and sends the browser to the provider.
// A password adapter is first switched to oauth2 with the chosen app (its
// SMTP server becomes the app's, the login its from address).
func (h *Handler) connect(w http.ResponseWriter, r *http.Request, p *page) (string, error) {
	id, err := h.id(r, "adapter")
	if err != nil {
		return "", err
	}
	if h.cfg.OAuthStart == nil {
		return "", dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "OAuth2 mailbox connections are not configured on this server")
	}
	ctx := r.Context()
	a, err := h.store.GetAdapter(ctx, p.Tenant, id)
	if err != nil {
		return "", err
	}
	if a.Auth != dripdrop.AuthOAuth2 {
		appID, err := uuid.Parse(r.PostFormValue("app_id"))
		if err != nil {
			return "", dripdrop.Errorf(dripdrop.ECodeRequired, "app_id", "choose the OAuth app to connect with")
		}
		app, err := h.store.GetOAuthApp(ctx, p.Tenant, appID)
		if err != nil {
			return "", err
		}
		if app.SMTPHost == "" {
			return "", dripdrop.Errorf(dripdrop.ECodeInvalidState, "app_id", "the OAuth app names no SMTP server")
		}
		auth := dripdrop.AuthOAuth2
		creds := &dripdrop.SMTPCredentials{Host: app.SMTPHost, Port: app.SMTPPort, Username: a.FromAddress, TLS: "starttls"}
		if _, err := h.store.UpdateAdapter(ctx, p.Tenant, id, dripdrop.AdapterInput{Auth: &auth, OAuthAppID: &app.ID, Credentials: creds}); err != nil {
			return "", err
		}
	}
	st, err := h.cfg.OAuthStart(ctx, p.Tenant, id)
	if err != nil {
		return "", err
	}
	http.Redirect(w, r, st.AuthorizeURL, http.StatusSeeOther)
	return "", nil
}
