package dripdrop

import (
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Adapter auth kinds (docs/mailboxes.md): password logs in with the
// credentials' username and password (AUTH PLAIN/LOGIN); oauth2 with an
// access token of the adapter's OAuth app (XOAUTH2/OAUTHBEARER).
const (
	AuthPassword = "password"
	AuthOAuth2   = "oauth2"
)

// OAuth app providers.
const (
	OAuthGoogle    = "google"
	OAuthMicrosoft = "microsoft"
	OAuthCustom    = "custom"
)

// OAuth token states of an oauth2 adapter (OAuthStatus.State).
const (
	TokenNotConnected      = "not_connected"
	TokenConnected         = "connected"
	TokenReconnectRequired = "reconnect_required"
)

// ReasonReconnectRequired is the health reason of an adapter whose OAuth
// grant died (revoked, password changed, consent withdrawn).
const ReasonReconnectRequired = "reconnect_required"

// OAuthApp is a tenant's OAuth client registration with a mail provider.
// The client secret is write-only.
type OAuthApp struct {
	ID              uuid.UUID `json:"id"`
	Name            string    `json:"name"`
	Provider        string    `json:"provider"`
	ClientID        string    `json:"client_id"`
	ClientSecretSet bool      `json:"client_secret_set"`
	AuthURL         string    `json:"auth_url"`
	TokenURL        string    `json:"token_url"`
	Scopes          []string  `json:"scopes"`
	SMTPHost        string    `json:"smtp_host"`
	SMTPPort        int       `json:"smtp_port"`
	IMAPHost        string    `json:"imap_host"`
	IMAPPort        int       `json:"imap_port"`
	CreatedAt       time.Time `json:"created_at"`
}

// OAuthAppInput registers an OAuth app. google and microsoft fill the
// URLs, scopes and servers from their presets (MicrosoftTenant picks the
// Entra ID directory of a single-tenant app; default "organizations");
// custom needs auth_url, token_url and scopes.
type OAuthAppInput struct {
	Name            *string  `json:"name"`
	Provider        *string  `json:"provider"`
	ClientID        *string  `json:"client_id"`
	ClientSecret    *string  `json:"client_secret"`
	MicrosoftTenant *string  `json:"microsoft_tenant"`
	AuthURL         *string  `json:"auth_url"`
	TokenURL        *string  `json:"token_url"`
	Scopes          []string `json:"scopes"`
	SMTPHost        *string  `json:"smtp_host"`
	SMTPPort        *int     `json:"smtp_port"`
	IMAPHost        *string  `json:"imap_host"`
	IMAPPort        *int     `json:"imap_port"`
}

// The presets' scopes and servers.
var (
	GoogleScopes    = []string{"https://mail.google.com/"}
	MicrosoftScopes = []string{"https://outlook.office.com/SMTP.Send", "https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"}
)

// Apply validates the input and returns the app it describes (without id
// and times); the secret stays in the input.
func (in OAuthAppInput) Apply() (OAuthApp, error) {
	var a OAuthApp
	if in.Provider == nil {
		return a, Errorf(ECodeRequired, "provider", "provider is required (google, microsoft or custom)")
	}
	a.Provider = *in.Provider
	if in.ClientID == nil || strings.TrimSpace(*in.ClientID) == "" {
		return a, Errorf(ECodeRequired, "client_id", "client_id is required")
	}
	if err := checkHeaderText("client_id", *in.ClientID, 500, true); err != nil {
		return a, err
	}
	a.ClientID = strings.TrimSpace(*in.ClientID)
	if in.ClientSecret != nil {
		if err := checkHeaderText("client_secret", *in.ClientSecret, 2000, false); err != nil {
			return a, err
		}
		a.ClientSecretSet = *in.ClientSecret != ""
	}
	if in.MicrosoftTenant != nil && a.Provider != OAuthMicrosoft {
		return a, Errorf(ECodeInvalidValue, "microsoft_tenant", "microsoft_tenant applies to the microsoft provider only")
	}
	switch a.Provider {
	case OAuthGoogle, OAuthMicrosoft:
		for f, set := range map[string]bool{"auth_url": in.AuthURL != nil, "token_url": in.TokenURL != nil, "scopes": in.Scopes != nil} {
			if set {
				return a, Errorf(ECodeInvalidValue, f, "%s is fixed by the %s preset; use provider custom to set it", f, a.Provider)
			}
		}
		if a.Provider == OAuthGoogle {
			a.AuthURL, a.TokenURL = "https://accounts.google.com/o/oauth2/auth", "https://oauth2.googleapis.com/token"
			a.Scopes = append([]string(nil), GoogleScopes...)
			a.SMTPHost, a.SMTPPort, a.IMAPHost, a.IMAPPort = "smtp.gmail.com", 587, "imap.gmail.com", 993
		} else {
			dir := "organizations"
			if in.MicrosoftTenant != nil {
				dir = strings.TrimSpace(*in.MicrosoftTenant)
				if dir == "" || len(dir) > 100 || strings.ContainsAny(dir, "/?#%@ \t\r\n") {
					return a, Errorf(ECodeInvalidValue, "microsoft_tenant", "microsoft_tenant must be a directory id, a domain, organizations or common")
				}
			}
			base := "https://login.microsoftonline.com/" + dir + "/oauth2/v2.0/"
			a.AuthURL, a.TokenURL = base+"authorize", base+"token"
			a.Scopes = append([]string(nil), MicrosoftScopes...)
			a.SMTPHost, a.SMTPPort, a.IMAPHost, a.IMAPPort = "smtp.office365.com", 587, "outlook.office365.com", 993
		}
	case OAuthCustom:
		if in.AuthURL == nil {
			return a, Errorf(ECodeRequired, "auth_url", "a custom app needs auth_url")
		}
		if in.TokenURL == nil {
			return a, Errorf(ECodeRequired, "token_url", "a custom app needs token_url")
		}
		if len(in.Scopes) == 0 {
			return a, Errorf(ECodeRequired, "scopes", "a custom app needs its scopes")
		}
		for _, u := range []struct {
			field string
			v     *string
			out   *string
		}{{"auth_url", in.AuthURL, &a.AuthURL}, {"token_url", in.TokenURL, &a.TokenURL}} {
			p, err := url.Parse(*u.v)
			if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.User != nil || p.Fragment != "" || len(*u.v) > 2000 {
				return a, Errorf(ECodeInvalidValue, u.field, "%s must be an http(s) URL without credentials or fragment", u.field)
			}
			*u.out = *u.v
		}
		if len(in.Scopes) > 20 {
			return a, Errorf(ECodeOutOfRange, "scopes", "at most 20 scopes")
		}
		for _, s := range in.Scopes {
			if s == "" || len(s) > 300 || strings.ContainsAny(s, " \t\r\n\"\\") {
				return a, Errorf(ECodeInvalidValue, "scopes", "each scope is one non-empty token without spaces or quotes")
			}
		}
		a.Scopes = append([]string(nil), in.Scopes...)
	default:
		return a, Errorf(ECodeInvalidValue, "provider", "provider must be google, microsoft or custom")
	}
	if in.SMTPHost != nil || in.SMTPPort != nil || in.IMAPHost != nil || in.IMAPPort != nil {
		if a.Provider != OAuthCustom {
			return a, Errorf(ECodeInvalidValue, "smtp_host", "the servers are fixed by the %s preset", a.Provider)
		}
		for _, h := range []struct {
			field string
			v     *string
			out   *string
		}{{"smtp_host", in.SMTPHost, &a.SMTPHost}, {"imap_host", in.IMAPHost, &a.IMAPHost}} {
			if h.v == nil {
				continue
			}
			if err := checkHeaderText(h.field, *h.v, 253, false); err != nil {
				return a, err
			}
			if strings.ContainsAny(*h.v, " /@") {
				return a, Errorf(ECodeInvalidValue, h.field, "%s must be a host name or IP address", h.field)
			}
			*h.out = *h.v
		}
		for _, p := range []struct {
			field string
			v     *int
			out   *int
		}{{"smtp_port", in.SMTPPort, &a.SMTPPort}, {"imap_port", in.IMAPPort, &a.IMAPPort}} {
			if p.v == nil {
				continue
			}
			if err := checkRange(p.field, *p.v, 1, 65535); err != nil {
				return a, err
			}
			*p.out = *p.v
		}
	}
	a.Name = a.Provider
	if in.Name != nil {
		if err := checkHeaderText("name", *in.Name, 200, true); err != nil {
			return a, err
		}
		a.Name = strings.TrimSpace(*in.Name)
	}
	return a, nil
}

// OAuthStatus is what an oauth2 adapter shows about its connection; never
// a token.
type OAuthStatus struct {
	AppID    uuid.UUID `json:"app_id"`
	Provider string    `json:"provider"`
	// State is not_connected, connected or reconnect_required.
	State           string     `json:"state"`
	ConnectedAt     *time.Time `json:"connected_at"`
	RefreshedAt     *time.Time `json:"refreshed_at"`
	AccessExpiresAt *time.Time `json:"access_token_expires_at"`
	LastError       string     `json:"last_error,omitempty"`
}

// OAuthStart is the answer of POST /v1/adapters/{id}/oauth/start.
type OAuthStart struct {
	AuthorizeURL string    `json:"authorize_url"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// OAuthTokenInput stores a refresh token obtained outside the connect
// flow (PUT /v1/adapters/{id}/oauth/token).
type OAuthTokenInput struct {
	RefreshToken *string `json:"refresh_token"`
}

// Validate checks the refresh token's presence and size.
func (in OAuthTokenInput) Validate() error {
	if in.RefreshToken == nil || *in.RefreshToken == "" {
		return Errorf(ECodeRequired, "refresh_token", "refresh_token is required")
	}
	if len(*in.RefreshToken) > 8192 {
		return Errorf(ECodeTooLong, "refresh_token", "refresh_token is longer than 8192 characters")
	}
	return checkHeaderText("refresh_token", *in.RefreshToken, 8192, true)
}

// OAuthConnection is the result of a connect or a stored refresh token:
// the adapter with its token state and the proof login's outcome.
type OAuthConnection struct {
	Adapter Adapter       `json:"adapter"`
	Proof   *VerifyResult `json:"proof,omitempty"`
}
