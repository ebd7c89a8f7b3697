package db

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// Mailbox sync (docs/ingest.md#mailbox-sync): the settings live in
// mailbox_sync, one row per adapter; a replica owns a row (lease_owner)
// while its heartbeat lease 'mailsync/<owner>' in leader_leases is alive,
// so polling a mailbox with nothing new writes nothing.

func imapFromRow(r dbsqlc.MailboxSync) *dripdrop.IMAPSettings {
	en := r.Enabled
	folders := r.Folders
	if len(folders) == 0 {
		folders = append([]string(nil), dripdrop.DefaultIMAPFolders...)
	}
	return &dripdrop.IMAPSettings{Host: r.Host, Port: r.Port, TLS: r.Tls, Username: r.Username, Folders: folders,
		IntervalSeconds: r.IntervalSeconds, Enabled: &en, TLSCAPEM: r.TlsCaPem}
}

// putIMAP stores or removes an adapter's mailbox settings after a create or
// update (inside its transaction).
func (s *Store) putIMAP(ctx context.Context, q *dbsqlc.Queries, tenant string, id uuid.UUID, in dripdrop.AdapterInput, a *dripdrop.Adapter) error {
	if !in.IMAP.Set {
		return nil
	}
	if a.IMAP == nil {
		return q.DeleteMailboxSettings(ctx, dbsqlc.DeleteMailboxSettingsParams{TenantKey: tenant, AdapterID: id})
	}
	st := a.IMAP
	if st.Host == "" {
		// An oauth2 adapter without host or preset reads its OAuth app's
		// IMAP server (docs/mailboxes.md#reading-the-mailbox-mailbox-sync).
		if err := s.imapFromApp(ctx, q, tenant, a, st); err != nil {
			return err
		}
	}
	row, err := q.PutMailboxSettings(ctx, dbsqlc.PutMailboxSettingsParams{
		TenantKey: tenant, AdapterID: id, Host: st.Host, Port: st.Port, Tls: st.TLS, Username: st.Username,
		Folders: st.Folders, IntervalSeconds: st.IntervalSeconds, Enabled: *st.Enabled, TlsCaPem: st.TLSCAPEM, Now: s.clock.Now(),
	})
	if err != nil {
		return err
	}
	a.IMAP = imapFromRow(row)
	return nil
}

// imapFromApp fills st's host (and port, when not given) from the OAuth
// app of an oauth2 adapter; an app without an IMAP server is refused.
func (s *Store) imapFromApp(ctx context.Context, q *dbsqlc.Queries, tenant string, a *dripdrop.Adapter, st *dripdrop.IMAPSettings) error {
	if a.Auth != dripdrop.AuthOAuth2 || a.OAuthAppID == nil {
		return dripdrop.Errorf(dripdrop.ECodeRequired, "imap.host", "imap.host is required (or a preset)")
	}
	app, err := q.GetOAuthApp(ctx, dbsqlc.GetOAuthAppParams{TenantKey: tenant, ID: *a.OAuthAppID})
	if err != nil {
		return oauthAppMissing(err)
	}
	if app.ImapHost == "" {
		return dripdrop.Errorf(dripdrop.ECodeRequired, "imap.host", "the oauth app names no IMAP server (imap_host); give imap.host or imap.preset")
	}
	st.Host = app.ImapHost
	if st.Port == 0 {
		st.Port = app.ImapPort
		if st.Port == 0 {
			st.Port = st.DefaultPort()
		}
	}
	return nil
}

// attachIMAP fills the IMAP settings of adapters read from the database.
func (s *Store) attachIMAP(ctx context.Context, tenant string, as []dripdrop.Adapter) error {
	if len(as) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(as))
	for i := range as {
		ids[i] = as[i].ID
	}
	rows, err := s.q.ListMailboxSyncs(ctx, dbsqlc.ListMailboxSyncsParams{TenantKey: tenant, Ids: ids})
	if err != nil {
		return err
	}
	by := make(map[uuid.UUID]dbsqlc.MailboxSync, len(rows))
	for _, r := range rows {
		by[r.AdapterID] = r
	}
	for i := range as {
		if r, ok := by[as[i].ID]; ok {
			as[i].IMAP = imapFromRow(r)
		}
	}
	return nil
}

func syncFromRow(r dbsqlc.MailboxSync) dripdrop.MailboxSync {
	m := dripdrop.MailboxSync{
		AdapterID: r.AdapterID, State: r.State, Enabled: r.Enabled, IntervalSeconds: r.IntervalSeconds,
		NextSyncAt: r.NextSyncAt, SyncRequestedAt: r.SyncRequestedAt, LastAttemptAt: r.LastAttemptAt,
		LastSuccessAt: r.LastSuccessAt, Failures: r.Failures, Folders: []dripdrop.FolderState{},
		Counts: dripdrop.SyncCounts{Fetched: r.Fetched, Candidates: r.Candidates, Applied: r.Applied, Skipped: r.Skipped},
	}
	if !r.Enabled {
		m.State = dripdrop.SyncDisabled
	}
	if r.LastError != "" && r.LastErrorAt != nil {
		m.LastError = &dripdrop.SyncError{Reason: r.LastErrorReason, Message: r.LastError, At: *r.LastErrorAt}
	}
	m.Folders = append(m.Folders, decodeCursors(r.Cursors)...)
	return m
}

// decodeCursors reads the cursors column: folder name → cursor, in folder
// name order.
func decodeCursors(b []byte) []dripdrop.FolderState {
	var m map[string]dripdrop.FolderCursor
	if len(b) == 0 || json.Unmarshal(b, &m) != nil {
		return nil
	}
	out := make([]dripdrop.FolderState, 0, len(m))
	for name, c := range m {
		out = append(out, dripdrop.FolderState{Name: name, FolderCursor: c})
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Name < out[j-1].Name; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

var errNoIMAP = &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: "imap", Message: "this adapter has no imap settings; PATCH the adapter with an imap object to read its mailbox"}

// MailboxSync returns an adapter's mailbox sync state.
func (s *Store) MailboxSync(ctx context.Context, tenant string, adapter uuid.UUID) (_ dripdrop.MailboxSync, err error) {
	defer wrapErr(&err, "mailbox sync")
	if _, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: adapter}); err != nil {
		return dripdrop.MailboxSync{}, mapErr(err, "adapter")
	}
	row, err := s.q.GetMailboxSync(ctx, dbsqlc.GetMailboxSyncParams{TenantKey: tenant, AdapterID: adapter})
	if errors.Is(err, pgx.ErrNoRows) {
		return dripdrop.MailboxSync{}, errNoIMAP
	}
	if err != nil {
		return dripdrop.MailboxSync{}, err
	}
	return syncFromRow(row), nil
}

// RequestMailboxSync asks the replica that owns the mailbox to sync it now.
func (s *Store) RequestMailboxSync(ctx context.Context, tenant string, adapter uuid.UUID) (_ dripdrop.MailboxSync, err error) {
	defer wrapErr(&err, "request mailbox sync")
	if _, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: tenant, ID: adapter}); err != nil {
		return dripdrop.MailboxSync{}, mapErr(err, "adapter")
	}
	cur, err := s.q.GetMailboxSync(ctx, dbsqlc.GetMailboxSyncParams{TenantKey: tenant, AdapterID: adapter})
	if errors.Is(err, pgx.ErrNoRows) {
		return dripdrop.MailboxSync{}, errNoIMAP
	}
	if err != nil {
		return dripdrop.MailboxSync{}, err
	}
	if !cur.Enabled {
		return dripdrop.MailboxSync{}, &dripdrop.Error{Code: dripdrop.ECodeInvalidState, Field: "imap.enabled", Message: "mailbox sync is disabled for this adapter; PATCH imap.enabled to true first"}
	}
	now := s.clock.Now()
	row, err := s.q.RequestMailboxSync(ctx, dbsqlc.RequestMailboxSyncParams{TenantKey: tenant, AdapterID: adapter, Now: &now})
	if errors.Is(err, pgx.ErrNoRows) {
		return dripdrop.MailboxSync{}, errNoIMAP
	}
	if err != nil {
		return dripdrop.MailboxSync{}, err
	}
	return syncFromRow(row), nil
}

// Mailbox is one mailbox a sync replica owns: what it needs to log in and
// where its sync stands.
type Mailbox struct {
	TenantKey   string
	AdapterID   uuid.UUID
	FromAddress string
	Settings    dripdrop.IMAPSettings // normalized; Username resolved
	Password    string
	// Auth is dripdrop.AuthPassword or dripdrop.AuthOAuth2 (an access token
	// from the sync loop's token source).
	Auth            string
	State           string
	Failures        int
	NextSyncAt      time.Time
	LastSuccessAt   *time.Time
	Cursors         map[string]dripdrop.FolderCursor
	UpdatedAt       time.Time
	SyncRequestedAt *time.Time
}

// mailsyncLease names a replica's heartbeat lease.
func mailsyncLease(owner string) string { return "mailsync/" + owner }

// MailsyncHeartbeat renews owner's heartbeat lease (database clock); while
// it is alive the mailboxes owner claimed stay owner's.
func (s *Store) MailsyncHeartbeat(ctx context.Context, owner string, ttl time.Duration) (bool, error) {
	return s.TryLeadership(ctx, mailsyncLease(owner), owner, ttl)
}

// ReleaseMailboxes gives up owner's mailboxes and heartbeat (clean
// shutdown), so other replicas take them at once.
func (s *Store) ReleaseMailboxes(ctx context.Context, owner string) error {
	if err := s.q.ReleaseMailboxes(ctx, owner); err != nil {
		return wrap("release mailboxes", err)
	}
	return s.ResignLeadership(ctx, mailsyncLease(owner), owner)
}

// ClaimMailboxes takes up to limit enabled mailboxes that no live replica
// owns (SKIP LOCKED: replicas claim side by side).
func (s *Store) ClaimMailboxes(ctx context.Context, owner string, limit int) (_ []Mailbox, err error) {
	defer wrapErr(&err, "claim mailboxes")
	var rows []dbsqlc.MailboxSync
	var claimErr error
	if s.onCitus(ctx) {
		rows, claimErr = s.claimMailboxesSharded(ctx, owner, limit)
	} else {
		rows, claimErr = s.q.ClaimMailboxes(ctx, dbsqlc.ClaimMailboxesParams{Owner: owner, Lim: int32(limit)})
	}
	out := make([]Mailbox, 0, len(rows))
	for _, r := range rows {
		m, err := s.mailboxFromRow(ctx, r)
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
	return out, claimErr
}

// claimMailboxesSharded is the claim on Citus, where one statement cannot
// lock rows on several workers nor join the coordinator-local leases
// (docs/scaling.md#writing-queries-that-shard): the live replicas are read
// first, then the unowned mailboxes (a read), then each tenant's share is
// taken by a statement on that tenant's worker alone. A row another
// replica took in between fails the claim's recheck and is left to it.
// What was claimed before an error is returned with it.
func (s *Store) claimMailboxesSharded(ctx context.Context, owner string, limit int) ([]dbsqlc.MailboxSync, error) {
	live, err := s.q.LiveMailsyncOwners(ctx)
	if err != nil {
		return nil, err
	}
	cands, err := s.q.MailsyncCandidates(ctx, dbsqlc.MailsyncCandidatesParams{Owner: owner, Live: live, Lim: int32(limit)})
	if err != nil {
		return nil, err
	}
	var tenants []string
	ids := map[string][]uuid.UUID{}
	for _, c := range cands {
		if _, ok := ids[c.TenantKey]; !ok {
			tenants = append(tenants, c.TenantKey)
		}
		ids[c.TenantKey] = append(ids[c.TenantKey], c.AdapterID)
	}
	var out []dbsqlc.MailboxSync
	for _, tn := range tenants {
		rows, err := s.q.ClaimTenantMailboxes(ctx, dbsqlc.ClaimTenantMailboxesParams{TenantKey: tn, Ids: ids[tn], Owner: owner, Live: live})
		if err != nil {
			return out, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// LoadMailbox rereads one owned mailbox (after its settings changed).
func (s *Store) LoadMailbox(ctx context.Context, tenant string, adapter uuid.UUID) (_ Mailbox, err error) {
	defer wrapErr(&err, "load mailbox")
	r, err := s.q.GetMailboxSync(ctx, dbsqlc.GetMailboxSyncParams{TenantKey: tenant, AdapterID: adapter})
	if err != nil {
		return Mailbox{}, mapErr(err, "mailbox")
	}
	return s.mailboxFromRow(ctx, r)
}

func (s *Store) mailboxFromRow(ctx context.Context, r dbsqlc.MailboxSync) (Mailbox, error) {
	a, err := s.q.GetAdapter(ctx, dbsqlc.GetAdapterParams{TenantKey: r.TenantKey, ID: r.AdapterID})
	if err != nil {
		return Mailbox{}, err
	}
	creds, err := s.AdapterCredentials(ctx, r.TenantKey, r.AdapterID)
	if err != nil {
		return Mailbox{}, err
	}
	st := *imapFromRow(r)
	if st.Username == "" {
		st.Username = creds.Username
	}
	if st.Username == "" {
		st.Username = a.FromAddress
	}
	m := Mailbox{
		TenantKey: r.TenantKey, AdapterID: r.AdapterID, FromAddress: a.FromAddress, Settings: st, Password: creds.Password,
		Auth: a.Auth, State: r.State, Failures: r.Failures, NextSyncAt: r.NextSyncAt, LastSuccessAt: r.LastSuccessAt,
		Cursors: map[string]dripdrop.FolderCursor{}, UpdatedAt: r.UpdatedAt, SyncRequestedAt: r.SyncRequestedAt,
	}
	if len(r.Cursors) > 0 {
		if err := json.Unmarshal(r.Cursors, &m.Cursors); err != nil {
			return Mailbox{}, err
		}
	}
	return m, nil
}

// MailboxKey names a mailbox.
type MailboxKey struct {
	TenantKey string
	AdapterID uuid.UUID
}

// MailboxChange is something an owner must react to.
type MailboxChange struct {
	MailboxKey
	UpdatedAt       time.Time
	SyncRequestedAt *time.Time
	// Keep is false when owner may no longer sync the mailbox (disabled,
	// adapter deleted, or another replica took it).
	Keep bool
}

// OwnedMailboxChanges reads (never writes) what changed among owner's
// mailboxes since the given time: settings, "sync now" requests, and
// mailboxes it must drop. Missing rows (settings removed) are reported with
// Keep false.
func (s *Store) OwnedMailboxChanges(ctx context.Context, owner string, keys []MailboxKey, since time.Time) (_ []MailboxChange, err error) {
	defer wrapErr(&err, "owned mailbox changes")
	if len(keys) == 0 {
		return nil, nil
	}
	tenants := make([]string, len(keys))
	ids := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		tenants[i], ids[i] = k.TenantKey, k.AdapterID
	}
	if s.onCitus(ctx) {
		return s.ownedMailboxChangesSharded(ctx, owner, keys, tenants, ids, since)
	}
	rows, err := s.q.OwnedMailboxChanges(ctx, dbsqlc.OwnedMailboxChangesParams{Owner: owner, Tenants: tenants, Ids: ids, Since: since})
	if err != nil {
		return nil, err
	}
	out := make([]MailboxChange, 0, len(rows))
	for _, r := range rows {
		out = append(out, MailboxChange{MailboxKey: MailboxKey{r.TenantKey, r.AdapterID}, UpdatedAt: r.UpdatedAt, SyncRequestedAt: r.SyncRequestedAt, Keep: r.Keep})
	}
	return out, nil
}

// ownedMailboxChangesSharded is OwnedMailboxChanges on Citus, where a
// parameter array cannot be joined to the shards: it reads the mailboxes'
// rows by tenant and id and applies the same filter here.
func (s *Store) ownedMailboxChangesSharded(ctx context.Context, owner string, keys []MailboxKey, tenants []string, ids []uuid.UUID, since time.Time) ([]MailboxChange, error) {
	rows, err := s.q.OwnedMailboxStates(ctx, dbsqlc.OwnedMailboxStatesParams{Owner: owner, Tenants: slices.Compact(slices.Sorted(slices.Values(tenants))), Ids: ids})
	if err != nil {
		return nil, err
	}
	found := make(map[MailboxKey]dbsqlc.OwnedMailboxStatesRow, len(rows))
	for _, r := range rows {
		found[MailboxKey{r.TenantKey, r.AdapterID}] = r
	}
	var out []MailboxChange
	now := s.clock.Now()
	for _, k := range keys {
		r, ok := found[k]
		switch {
		case !ok:
			out = append(out, MailboxChange{MailboxKey: k, UpdatedAt: now})
		case r.UpdatedAt.After(since) || r.SyncRequestedAt != nil || !r.Keep:
			out = append(out, MailboxChange{MailboxKey: k, UpdatedAt: r.UpdatedAt, SyncRequestedAt: r.SyncRequestedAt, Keep: r.Keep})
		}
	}
	return out, nil
}

// MailboxExists reports whether a mailbox row still exists.
func (s *Store) MailboxExists(ctx context.Context, k MailboxKey) (bool, error) {
	_, err := s.q.GetMailboxSync(ctx, dbsqlc.GetMailboxSyncParams{TenantKey: k.TenantKey, AdapterID: k.AdapterID})
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, wrap("mailbox exists", err)
}

// SyncOutcome is the result of one sync of a mailbox, to be stored.
type SyncOutcome struct {
	MailboxKey
	StartedAt time.Time
	At        time.Time // when it ended
	State     string    // ok, failing or throttled
	Failures  int       // consecutive failures after this sync
	Reason    string    // failure reason (failing/throttled)
	Error     string    // failure message
	Cursors   map[string]dripdrop.FolderCursor
	NextSync  time.Time
	// LastSuccessAt is when the mailbox last synced successfully.
	LastSuccessAt                         *time.Time
	Fetched, Candidates, Applied, Skipped int64
}

// ErrMailboxLost is returned by SaveMailboxSync when another replica owns
// the mailbox now (this one's heartbeat lapsed): the caller drops it.
var ErrMailboxLost = errors.New("mailbox owned by another replica")

// SaveMailboxSync stores a sync's outcome if owner still owns the mailbox,
// and emits dripdrop.mailbox.sync_failed / sync_recovered when the state or
// the failure reason changed (never on a repeat).
func (s *Store) SaveMailboxSync(ctx context.Context, owner string, o SyncOutcome) (err error) {
	defer wrapErr(&err, "save mailbox sync")
	cursors, err := json.Marshal(o.Cursors)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		prev, err := q.GetMailboxSyncForUpdate(ctx, dbsqlc.GetMailboxSyncForUpdateParams{TenantKey: o.TenantKey, AdapterID: o.AdapterID})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrMailboxLost
		}
		if err != nil {
			return nil, err
		}
		if prev.LeaseOwner == nil || *prev.LeaseOwner != owner {
			return nil, ErrMailboxLost
		}
		p := dbsqlc.SaveMailboxSyncParams{
			TenantKey: o.TenantKey, AdapterID: o.AdapterID, Owner: owner, State: o.State, Failures: o.Failures,
			LastAttemptAt: &o.At, LastSuccessAt: o.LastSuccessAt, LastError: prev.LastError, LastErrorReason: prev.LastErrorReason,
			LastErrorAt: prev.LastErrorAt, Cursors: cursors, NextSyncAt: o.NextSync, Fetched: o.Fetched,
			Candidates: o.Candidates, Applied: o.Applied, Skipped: o.Skipped, StartedAt: &o.StartedAt,
		}
		var evs []event
		failing := o.State == dripdrop.SyncFailing || o.State == dripdrop.SyncThrottled
		wasFailing := prev.State == dripdrop.SyncFailing || prev.State == dripdrop.SyncThrottled
		if failing {
			p.LastError, p.LastErrorReason, p.LastErrorAt = o.Error, o.Reason, &o.At
			if !wasFailing || prev.LastErrorReason != o.Reason {
				evs = append(evs, evSyncFailed(o.TenantKey, o.AdapterID, o.Reason, o.State, o.NextSync))
			}
		} else if wasFailing {
			evs = append(evs, evSyncRecovered(o.TenantKey, o.AdapterID, prev.Failures))
		}
		n, err := q.SaveMailboxSync(ctx, p)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, ErrMailboxLost
		}
		return evs, nil
	})
}

// MailboxLookups answers which of ids (bare Message-IDs) this adapter sent
// and which of emails (lower case) are addresses of the tenant's enrolled
// contacts, in two queries.
func (s *Store) MailboxLookups(ctx context.Context, tenant string, adapter uuid.UUID, ids, emails []string) (ours, enrolled map[string]bool, err error) {
	defer wrapErr(&err, "mailbox lookups")
	ours, enrolled = map[string]bool{}, map[string]bool{}
	if len(ids) > 0 {
		br := make([]string, len(ids))
		for i, id := range ids {
			br[i] = "<" + id + ">"
		}
		got, err := s.q.OursMessageIDs(ctx, dbsqlc.OursMessageIDsParams{TenantKey: tenant, AdapterID: adapter, Ids: br})
		if err != nil {
			return nil, nil, err
		}
		for _, g := range got {
			if len(g) > 2 {
				ours[g[1:len(g)-1]] = true
			}
		}
	}
	if len(emails) > 0 {
		got, err := s.q.EnrolledAddresses(ctx, dbsqlc.EnrolledAddressesParams{TenantKey: tenant, Emails: emails})
		if err != nil {
			return nil, nil, err
		}
		for _, g := range got {
			if g != nil {
				enrolled[*g] = true
			}
		}
	}
	return ours, enrolled, nil
}

func evSyncFailed(tenant string, adapter uuid.UUID, reason, state string, retry time.Time) event {
	return event{name: "dripdrop.mailbox.sync_failed", metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "reason": reason, "state": state, "retry_at": retry,
	}}
}

func evSyncRecovered(tenant string, adapter uuid.UUID, failures int) event {
	return event{name: "dripdrop.mailbox.sync_recovered", metadata: map[string]any{
		"adapter_id": adapter.String(), "tenant_key": tenant, "failures": failures,
	}}
}

// MailsyncFleet returns the number of live sync replicas and of mailboxes
// to sync, so each replica claims about its share.
func (s *Store) MailsyncFleet(ctx context.Context) (replicas, mailboxes int, err error) {
	if s.onCitus(ctx) {
		// The leases are coordinator-local on Citus: two reads.
		live, err := s.q.LiveMailsyncOwners(ctx)
		if err != nil {
			return 0, 0, wrap("mailsync fleet", err)
		}
		n, err := s.q.CountSyncedMailboxes(ctx)
		if err != nil {
			return 0, 0, wrap("mailsync fleet", err)
		}
		return len(live), int(n), nil
	}
	r, err := s.q.MailsyncFleet(ctx)
	if err != nil {
		return 0, 0, wrap("mailsync fleet", err)
	}
	return int(r.Replicas), int(r.Mailboxes), nil
}

// ReleaseMailbox gives one of owner's mailboxes back (rebalancing when
// another replica joined).
func (s *Store) ReleaseMailbox(ctx context.Context, owner string, k MailboxKey) error {
	return wrap("release mailbox", s.q.ReleaseMailbox(ctx, dbsqlc.ReleaseMailboxParams{TenantKey: k.TenantKey, AdapterID: k.AdapterID, Owner: owner}))
}
