package mailsync_test

import (
	"context"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/internal/dovecot"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/internal/oauthtest"
	"github.com/dripdrop/dripdrop/internal/testkit"
	"github.com/dripdrop/dripdrop/mailsync"
	"github.com/dripdrop/dripdrop/oauth"
)

// An OAuth2 mailbox: the sync loop logs in to Dovecot with the access
// token the engine's token source hands out (OAUTHBEARER, Dovecot offers
// it), Dovecot checks it at the test authorization server (RFC 7662); a
// revoked grant fails the sync with reconnect_required.
func TestDovecotOAuth2Mailbox(t *testing.T) {
	t.Parallel()
	dovecot.Skip(t)
	as := oauthtest.New(t, nil) // Dovecot checks exp against the wall clock
	as.User = mailboxUser
	d := dovecot.Start(t, dovecot.Options{OAuth2: &dovecot.OAuth2{IntrospectionURL: as.IntrospectURL(), Mode: "post", UsernameAttribute: "username",
		ActiveAttribute: "active", ActiveValue: "true"}})
	smtp := "smtp"
	w := newSyncWorldWith(t, []testkit.Option{testkit.WithAdapter(dripdrop.AdapterInput{Provider: &smtp}), testkit.WithStoreOptions(func(o *db.Options) { o.AllowPrivateTargets = true })}, d.Host, d.Port, "INBOX", `\Junk`)
	ctx := context.Background()
	custom, name, auth, tokenURL := "custom", "test provider", as.AuthURL(), as.TokenURL()
	app, err := w.Store.CreateOAuthApp(ctx, w.Tenant, dripdrop.OAuthAppInput{Name: &name, Provider: &custom, ClientID: &as.ClientID, ClientSecret: &as.ClientSecret,
		AuthURL: &auth, TokenURL: &tokenURL, Scopes: []string{"mail"}})
	if err != nil {
		t.Fatal(err)
	}
	oauth2 := dripdrop.AuthOAuth2
	if _, err := w.Store.UpdateAdapter(ctx, w.Tenant, w.Adapter.ID, dripdrop.AdapterInput{Auth: &oauth2, OAuthAppID: &app.ID}); err != nil {
		t.Fatal(err)
	}
	src := oauth.NewSource(w.Store, oauth.Config{Box: w.Box, Guard: netguard.Guard{AllowPrivate: true}, PublicBaseURL: "http://127.0.0.1:1", Timeout: 2 * time.Second})
	rt := as.Grant(mailboxUser)
	if _, err := src.StoreRefreshToken(ctx, w.Tenant, w.Adapter.ID, dripdrop.OAuthTokenInput{RefreshToken: &rt}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deliver(mailboxUser, dovecot.Message{Raw: unrelated("hello")}); err != nil {
		t.Fatal(err)
	}
	w.syncer(ctx, 500*time.Millisecond, func(c *mailsync.Config) { c.Tokens = src })
	waitFor(t, 10*time.Second, "an OAuth2 sync", func() bool { return w.syncState(w.Adapter.ID).State == dripdrop.SyncOK })
	st := w.syncState(w.Adapter.ID)
	if len(st.Folders) != 2 || st.Counts.Fetched != 1 || st.Counts.Skipped != 1 {
		t.Fatalf("after the OAuth2 login: %+v", st)
	}
	if as.Introspections() == 0 {
		t.Fatal("Dovecot never asked the authorization server about the token")
	}
	// The user withdrew consent: the live token stops working at the
	// server, the refresh is refused (invalid_grant).
	as.RevokeUser(mailboxUser)
	if _, err := w.Store.RequestMailboxSync(ctx, w.Tenant, w.Adapter.ID); err != nil {
		t.Fatal(err)
	}
	// The open connection is still logged in; the next login (after the
	// connection is dropped by an error or the server) must fail. Force a
	// fresh login by changing the settings.
	w.setIMAP(w.Adapter.ID, d.Host, d.Port, mailboxUser, "", "INBOX")
	waitFor(t, 15*time.Second, "the revoked grant to fail the sync", func() bool {
		st := w.syncState(w.Adapter.ID)
		return st.State == dripdrop.SyncFailing && st.LastError != nil
	})
	st = w.syncState(w.Adapter.ID)
	if r := st.LastError.Reason; r != mailsync.ReasonReconnect && r != mailsync.ReasonAuth {
		t.Fatalf("reason %q (%s), want reconnect_required or auth_failed", r, st.LastError.Message)
	}
	t.Logf("after revocation: %s — %s", st.LastError.Reason, st.LastError.Message)
}
