// Package mailsync reads adapters' mailboxes over IMAP and hands replies,
// out-of-office notes and bounces to ingest (docs/ingest.md#mailbox-sync).
//
// A replica claims mailboxes (db.Store.ClaimMailboxes, FOR UPDATE SKIP
// LOCKED) and owns them while its heartbeat lease lives, so each mailbox is
// synced by one replica once per interval and a poll that finds nothing new
// writes nothing. Each sync reads only envelopes and body structures
// (BODY.PEEK), reads a message whole only when Candidate says so, and
// passes it to db.Store.Ingest with provider "imap", exactly as
// POST /v1/inbound/raw does. The pure decisions are in rules.go.
package mailsync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/mailauth"
)

// Provider is the ingest provider of messages read from a mailbox: the
// duplicate key (tenant, "imap", Message-ID) makes every re-read harmless.
const Provider = "imap"

// Defaults.
const (
	DefaultConcurrency   = 64
	DefaultHeartbeatTTL  = 30 * time.Second
	DefaultClaimEvery    = 5 * time.Second
	DefaultChangesEvery  = 2 * time.Second
	DefaultMaxOwned      = 10000
	DefaultSuccessRecord = 15 * time.Minute
	// envelopeBatch bounds how many envelopes are held at once.
	envelopeBatch = 500
)

// Config configures a Syncer.
type Config struct {
	Store  *db.Store
	Logger *slog.Logger
	// Owner names this replica (default host-pid-random).
	Owner string
	// Concurrency bounds simultaneous syncs (default 64).
	Concurrency int
	// Dialer opens IMAP sessions (default IMAPDialer{}).
	Dialer Dialer
	// Tokens gives OAuth2 access tokens for adapters with auth oauth2
	// (nil: such mailboxes fail with reason "token").
	Tokens mailauth.TokenSource
	// Metrics, when set, records syncs (see NewMetrics).
	Metrics *Metrics
	// HeartbeatTTL is how long this replica's claim on its mailboxes
	// outlives its last heartbeat (renewed every TTL/3; default 30 s).
	HeartbeatTTL time.Duration
	// ClaimEvery is how often unowned mailboxes are claimed (default 5 s).
	ClaimEvery time.Duration
	// ChangesEvery is how often owned mailboxes are checked for changed
	// settings and "sync now" requests — a read (default 2 s).
	ChangesEvery time.Duration
	// MaxOwned caps the mailboxes one replica holds (default 10 000).
	MaxOwned int
	// SuccessRecord is how often an idle mailbox's last_success_at is
	// written (a poll with nothing new writes nothing otherwise; default
	// 15 min).
	SuccessRecord time.Duration
	// Interval, when > 0, replaces every mailbox's interval (tests and
	// benchmarks that scale time).
	Interval time.Duration
	// Tick is the scheduler's resolution (default 100 ms).
	Tick time.Duration
	// OnApplied, when set, is called after a candidate was ingested as a
	// new inbound message (dev mode's live log, tests).
	OnApplied func(tenant string, adapter uuid.UUID, res ingest.InboundResult)
}

// Syncer runs mailbox sync for one replica.
type Syncer struct {
	cfg   Config
	store *db.Store
	log   *slog.Logger

	mu       sync.Mutex
	boxes    map[db.MailboxKey]*box
	hbOK     time.Time // last successful heartbeat
	sem      chan struct{}
	wg       sync.WaitGroup
	syncs    atomic.Int64
	sessions atomic.Int64
}

// box is one owned mailbox.
type box struct {
	mb       db.Mailbox
	sess     Session
	special  map[string]string // special-use attribute → folder, per session
	next     time.Time
	running  bool
	dropped  bool
	recorded time.Time // last time last_success_at was written
	lastOK   *time.Time
	reqSeen  time.Time // the last "sync now" request acted on
	// sentSeen is the \Sent folder's UIDVALIDITY/UIDNEXT at the last look
	// (per process: a restart looks again once).
	sentSeen Status
}

// New returns a Syncer; Run starts it.
func New(cfg Config) *Syncer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Dialer == nil {
		cfg.Dialer = IMAPDialer{}
	}
	if cfg.HeartbeatTTL <= 0 {
		cfg.HeartbeatTTL = DefaultHeartbeatTTL
	}
	if cfg.ClaimEvery <= 0 {
		cfg.ClaimEvery = DefaultClaimEvery
	}
	if cfg.ChangesEvery <= 0 {
		cfg.ChangesEvery = DefaultChangesEvery
	}
	if cfg.MaxOwned <= 0 {
		cfg.MaxOwned = DefaultMaxOwned
	}
	if cfg.SuccessRecord <= 0 {
		cfg.SuccessRecord = DefaultSuccessRecord
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	s := &Syncer{cfg: cfg, store: cfg.Store, log: cfg.Logger, boxes: map[db.MailboxKey]*box{}, sem: make(chan struct{}, cfg.Concurrency)}
	if cfg.Metrics != nil {
		cfg.Metrics.attach(s)
	}
	return s
}

// Owner is this replica's name.
func (s *Syncer) Owner() string { return s.cfg.Owner }

// Owned is the number of mailboxes this replica holds.
func (s *Syncer) Owned() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.boxes)
}

// Sessions is the number of IMAP connections this replica holds open.
func (s *Syncer) Sessions() int64 { return s.sessions.Load() }

// Syncs is the number of syncs run so far.
func (s *Syncer) Syncs() int64 { return s.syncs.Load() }

// Run syncs until ctx ends, then closes its sessions and releases its
// mailboxes so other replicas take them at once.
func (s *Syncer) Run(ctx context.Context) error {
	s.heartbeat(ctx)
	s.claim(ctx)
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	lastHB, lastClaim, lastChanges := time.Now(), time.Now(), time.Now()
	changesSince := s.store.Now().Add(-time.Second)
	for {
		select {
		case <-ctx.Done():
			s.shutdown()
			return nil
		case <-tick.C:
		}
		now := time.Now()
		if now.Sub(lastHB) >= s.cfg.HeartbeatTTL/3 {
			lastHB = now
			s.heartbeat(ctx)
		}
		if !s.alive() {
			// Our claim may have lapsed: others may hold our mailboxes.
			s.dropAll()
			continue
		}
		if now.Sub(lastChanges) >= s.cfg.ChangesEvery {
			lastChanges = now
			changesSince = s.changes(ctx, changesSince)
		}
		if now.Sub(lastClaim) >= s.cfg.ClaimEvery {
			lastClaim = now
			s.claim(ctx)
		}
		s.dispatch(ctx)
	}
}

func (s *Syncer) heartbeat(ctx context.Context) {
	ok, err := s.store.MailsyncHeartbeat(ctx, s.cfg.Owner, s.cfg.HeartbeatTTL)
	if err != nil || !ok {
		s.log.Warn("mailsync heartbeat failed", "owner", s.cfg.Owner, "err", err)
		return
	}
	s.mu.Lock()
	s.hbOK = time.Now()
	s.mu.Unlock()
}

// alive reports whether our heartbeat is fresh enough that our claims hold
// (a safety margin of a third of the TTL).
func (s *Syncer) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.hbOK.IsZero() && time.Since(s.hbOK) < s.cfg.HeartbeatTTL*2/3
}

func (s *Syncer) claim(ctx context.Context) {
	if !s.alive() {
		return
	}
	owned := s.Owned()
	target := s.cfg.MaxOwned
	if replicas, total, err := s.store.MailsyncFleet(ctx); err == nil && replicas > 0 {
		// Aim at an even share (rounded up), so replicas split the fleet.
		if share := (total + replicas - 1) / replicas; share < target {
			target = share
		}
	}
	if owned > target+target/10+1 {
		s.shed(ctx, owned-target)
		return
	}
	n := target - owned
	if n <= 0 {
		return
	}
	if n > 1000 {
		n = 1000
	}
	mbs, err := s.store.ClaimMailboxes(ctx, s.cfg.Owner, n)
	if err != nil {
		s.log.Warn("mailsync claim failed", "err", err)
	}
	if len(mbs) == 0 {
		return
	}
	now := s.store.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mb := range mbs {
		k := db.MailboxKey{TenantKey: mb.TenantKey, AdapterID: mb.AdapterID}
		if _, ok := s.boxes[k]; ok {
			continue
		}
		b := &box{mb: mb, next: mb.NextSyncAt, lastOK: mb.LastSuccessAt}
		if b.next.Before(now) {
			b.next = now
		}
		if mb.LastSuccessAt != nil {
			b.recorded = *mb.LastSuccessAt
		}
		if mb.SyncRequestedAt != nil {
			b.next = now
			b.reqSeen = *mb.SyncRequestedAt
		}
		s.boxes[k] = b
	}
	s.log.Info("mailsync claimed mailboxes", "owner", s.cfg.Owner, "claimed", len(mbs), "owned", len(s.boxes))
}

// changes reacts to settings changes and "sync now" requests (reads only).
func (s *Syncer) changes(ctx context.Context, since time.Time) time.Time {
	s.mu.Lock()
	keys := make([]db.MailboxKey, 0, len(s.boxes))
	for k := range s.boxes {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	if len(keys) == 0 {
		return s.store.Now().Add(-time.Second)
	}
	start := s.store.Now()
	chs, err := s.store.OwnedMailboxChanges(ctx, s.cfg.Owner, keys, since)
	if err != nil {
		s.log.Warn("mailsync changes read failed", "err", err)
		return since
	}
	for _, c := range chs {
		s.mu.Lock()
		b, ok := s.boxes[c.MailboxKey]
		s.mu.Unlock()
		if !ok {
			continue
		}
		if !c.Keep {
			s.drop(c.MailboxKey, b)
			continue
		}
		if c.UpdatedAt.After(b.mb.UpdatedAt) {
			mb, err := s.store.LoadMailbox(ctx, c.TenantKey, c.AdapterID)
			if err != nil {
				continue
			}
			s.mu.Lock()
			if !b.running {
				b.mb = mb
				b.closeSession(s)
				b.next = start
			}
			s.mu.Unlock()
		}
		if c.SyncRequestedAt != nil && c.SyncRequestedAt.After(b.reqSeen) {
			s.mu.Lock()
			b.reqSeen = *c.SyncRequestedAt
			if !b.running {
				b.next = start
			}
			s.mu.Unlock()
		}
	}
	// Overlap the window a little: a change committed while we read is
	// seen next time (reacting twice is harmless).
	return start.Add(-time.Second)
}

// shed gives n idle mailboxes back for other replicas to claim.
func (s *Syncer) shed(ctx context.Context, n int) {
	s.mu.Lock()
	var give []db.MailboxKey
	for k, b := range s.boxes {
		if len(give) == n {
			break
		}
		if !b.running {
			give = append(give, k)
		}
	}
	s.mu.Unlock()
	for _, k := range give {
		if err := s.store.ReleaseMailbox(ctx, s.cfg.Owner, k); err != nil {
			return
		}
		s.mu.Lock()
		if b, ok := s.boxes[k]; ok && !b.running {
			b.dropped = true
			b.closeSession(s)
			delete(s.boxes, k)
		}
		s.mu.Unlock()
	}
	s.log.Info("mailsync rebalanced", "owner", s.cfg.Owner, "released", len(give))
}

func (s *Syncer) drop(k db.MailboxKey, b *box) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.dropped = true
	if !b.running {
		b.closeSession(s)
	}
	delete(s.boxes, k)
}

func (s *Syncer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, b := range s.boxes {
		b.dropped = true
		if !b.running {
			b.closeSession(s)
		}
		delete(s.boxes, k)
	}
}

// closeSession closes b's session (s.mu held or b not shared).
func (b *box) closeSession(s *Syncer) {
	if b.sess != nil {
		sess := b.sess
		b.sess, b.special = nil, nil
		s.sessions.Add(-1)
		go sess.Close()
	}
}

// dispatch starts the syncs that are due, up to the concurrency bound.
func (s *Syncer) dispatch(ctx context.Context) {
	now := s.store.Now()
	s.mu.Lock()
	var due []*box
	for _, b := range s.boxes {
		if !b.running && !b.next.After(now) {
			due = append(due, b)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].next.Before(due[j].next) })
	var start []*box
	for _, b := range due {
		select {
		case s.sem <- struct{}{}:
			b.running = true
			start = append(start, b)
		default:
		}
	}
	s.mu.Unlock()
	for _, b := range start {
		s.wg.Add(1)
		go func(b *box) {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			s.syncBox(ctx, b)
		}(b)
	}
}

func (s *Syncer) shutdown() {
	s.wg.Wait()
	s.dropAll()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.ReleaseMailboxes(ctx, s.cfg.Owner); err != nil {
		s.log.Warn("mailsync release failed", "err", err)
	}
}

// SyncNow runs one sync of an owned mailbox immediately and waits for it
// (tests and the benchmark); it reports false when this replica does not
// own the mailbox or it is already running.
func (s *Syncer) SyncNow(ctx context.Context, tenant string, adapter uuid.UUID) bool {
	s.mu.Lock()
	b, ok := s.boxes[db.MailboxKey{TenantKey: tenant, AdapterID: adapter}]
	if !ok || b.running {
		s.mu.Unlock()
		return false
	}
	b.running = true
	s.mu.Unlock()
	s.sem <- struct{}{}
	defer func() { <-s.sem }()
	s.syncBox(ctx, b)
	return true
}

func randFloat() float64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return float64(binary.LittleEndian.Uint64(b[:])>>11) / (1 << 53)
}

// interval is b's sync interval.
func (s *Syncer) interval(b *box) time.Duration {
	if s.cfg.Interval > 0 {
		return s.cfg.Interval
	}
	return time.Duration(b.mb.Settings.IntervalSeconds) * time.Second
}

// counts are one sync's message counts.
type counts struct{ fetched, candidates, applied, skipped int64 }

// syncBox runs one sync of b and records its outcome.
func (s *Syncer) syncBox(ctx context.Context, b *box) {
	s.syncs.Add(1)
	started := s.store.Now()
	wall := time.Now()
	cursors := make(map[string]dripdrop.FolderCursor, len(b.mb.Cursors))
	for k, v := range b.mb.Cursors {
		cursors[k] = v
	}
	var c counts
	err := s.syncFolders(ctx, b, cursors, &c)
	if err != nil && b.sess != nil && retryable(err) {
		// A reused connection may have died between polls: one fresh try.
		s.mu.Lock()
		b.closeSession(s)
		s.mu.Unlock()
		err = s.syncFolders(ctx, b, cursors, &c)
	}
	end := s.store.Now()
	interval := s.interval(b)
	o := db.SyncOutcome{MailboxKey: db.MailboxKey{TenantKey: b.mb.TenantKey, AdapterID: b.mb.AdapterID}, StartedAt: started, At: end,
		Cursors: cursors, Fetched: c.fetched, Candidates: c.candidates, Applied: c.applied, Skipped: c.skipped, LastSuccessAt: b.lastOK}
	outcome := "ok"
	if err != nil {
		reason, throttled := Classify(err)
		if errors.Is(err, mailauth.ErrReconnectRequired) {
			reason = ReasonReconnect
		} else if errors.Is(err, mailauth.ErrNotConnected) || errors.As(err, new(*mailauth.TokenError)) {
			reason = ReasonTokenError
		}
		o.Failures = b.mb.Failures + 1
		o.State, o.Reason, o.Error = dripdrop.SyncFailing, reason, ingest.Truncate(err.Error(), 500)
		outcome = "error"
		if throttled {
			o.State, outcome = dripdrop.SyncThrottled, "throttled"
		}
		o.NextSync = end.Add(Backoff(interval, o.Failures, throttled))
		s.mu.Lock()
		b.closeSession(s)
		s.mu.Unlock()
		s.log.Warn("mailbox sync failed", "adapter_id", b.mb.AdapterID, "tenant_key", b.mb.TenantKey, "reason", reason, "failures", o.Failures, "retry_at", o.NextSync, "err", err)
	} else {
		o.State, o.Failures = dripdrop.SyncOK, 0
		o.LastSuccessAt = &end
		o.NextSync = NextSync(end, interval, randFloat())
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.observe(outcome, time.Since(wall), c)
	}
	// An idle, healthy poll writes nothing: the cursor did not move, there
	// is no state change, no count, no request to clear, and
	// last_success_at was recorded recently.
	idle := err == nil && b.mb.State == dripdrop.SyncOK && c == (counts{}) && sameCursors(cursors, b.mb.Cursors) &&
		b.mb.SyncRequestedAt == nil && b.reqSeen.IsZero() && end.Sub(b.recorded) < s.cfg.SuccessRecord
	if !b.reqSeen.IsZero() && b.mb.SyncRequestedAt == nil {
		b.mb.SyncRequestedAt = &b.reqSeen
	}
	var saveErr error
	if !idle {
		saveErr = s.store.SaveMailboxSync(ctx, s.cfg.Owner, o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b.running = false
	if saveErr != nil {
		if errors.Is(saveErr, db.ErrMailboxLost) {
			b.dropped = true
			delete(s.boxes, o.MailboxKey)
		} else {
			s.log.Warn("mailbox sync not recorded", "adapter_id", b.mb.AdapterID, "err", saveErr)
			// Keep the old state so the next sync records again.
			b.next = end.Add(Backoff(interval, 1, false))
		}
	} else {
		if !idle {
			b.mb.State, b.mb.Failures, b.mb.SyncRequestedAt = o.State, o.Failures, nil
			b.reqSeen = time.Time{}
			if o.LastSuccessAt != nil {
				b.recorded = *o.LastSuccessAt
			}
		}
		b.mb.Cursors = cursors
		b.lastOK = o.LastSuccessAt
		b.mb.NextSyncAt = o.NextSync
		b.next = o.NextSync
	}
	if b.dropped {
		b.closeSession(s)
	}
	if b.next.IsZero() {
		b.next = o.NextSync
	}
}

func sameCursors(a, b map[string]dripdrop.FolderCursor) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// retryable reports a failure a fresh connection may not have.
func retryable(err error) bool {
	r, throttled := Classify(err)
	return !throttled && (r == ReasonConnect || r == ReasonTimeout)
}

// session returns b's open session or dials one.
func (s *Syncer) session(ctx context.Context, b *box) (Session, error) {
	if b.sess != nil {
		return b.sess, nil
	}
	st := b.mb.Settings
	login := Login{Username: st.Username, Password: b.mb.Password}
	if b.mb.Auth == dripdrop.AuthOAuth2 {
		if s.cfg.Tokens == nil {
			return nil, &mailauth.TokenError{Reason: "no token source configured"}
		}
		tok, err := s.cfg.Tokens.AccessToken(ctx, b.mb.TenantKey, b.mb.AdapterID)
		if err != nil {
			return nil, err
		}
		login = Login{Username: st.Username, Token: tok}
	}
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	sess, err := s.cfg.Dialer.Dial(dctx, st.Host, st.Port, st.TLS, st.TLSCAPEM, login)
	if err != nil {
		if inv, ok := s.cfg.Tokens.(mailauth.Invalidator); ok && login.Token != "" {
			if r, _ := Classify(err); r == ReasonAuth {
				inv.Invalidate(ctx, b.mb.TenantKey, b.mb.AdapterID, login.Token)
			}
		}
		return nil, err
	}
	s.mu.Lock()
	b.sess, b.special = sess, map[string]string{}
	s.mu.Unlock()
	s.sessions.Add(1)
	return sess, nil
}

// syncFolders syncs every configured folder of b, advancing cursors.
func (s *Syncer) syncFolders(ctx context.Context, b *box, cursors map[string]dripdrop.FolderCursor, c *counts) error {
	sess, err := s.session(ctx, b)
	if err != nil {
		return err
	}
	for _, want := range b.mb.Settings.Folders {
		if err := ctx.Err(); err != nil {
			return err
		}
		folder := want
		if strings.HasPrefix(want, `\`) {
			name, ok := b.special[want]
			if !ok {
				if name, err = sess.SpecialUse(want); err != nil {
					return err
				}
				b.special[want] = name
			}
			if name == "" {
				continue // the server has no such folder: nothing to read
			}
			folder = name
		}
		if err := s.syncFolder(ctx, b, sess, folder, cursors, c); err != nil {
			return fmt.Errorf("folder %s: %w", folder, err)
		}
	}
	if err := s.syncSent(ctx, b, sess); err != nil {
		if retryable(err) {
			return fmt.Errorf("folder %s: %w", SentFolder, err)
		}
		// The alignment check waits for a later sync; replies do not.
		s.log.Warn("mailbox sync could not read the Sent folder", "adapter_id", b.mb.AdapterID, "err", err)
	}
	return nil
}

func (s *Syncer) syncFolder(ctx context.Context, b *box, sess Session, folder string, cursors map[string]dripdrop.FolderCursor, c *counts) error {
	st, err := sess.Status(folder)
	if err != nil {
		return err
	}
	var cur *Cursor
	if v, ok := cursors[folder]; ok {
		cur = &v
	}
	now := s.store.Now()
	plan := PlanFolder(cur, st, now)
	if plan.Action == Idle {
		// Nothing arrived. A HIGHESTMODSEQ that moved alone is a flag change:
		// the stored modseq catches up the next time something is written.
		return nil
	}
	ex, err := sess.Examine(folder)
	if err != nil {
		return err
	}
	if err := s.readFolder(ctx, b, sess, folder, cur, st, ex, plan, cursors, c); err != nil {
		return err
	}
	return sess.Unselect()
}

func (s *Syncer) readFolder(ctx context.Context, b *box, sess Session, folder string, cur *Cursor, st, ex Status, plan FolderPlan, cursors map[string]dripdrop.FolderCursor, c *counts) error {
	now := s.store.Now()
	if ex.UIDValidity != st.UIDValidity {
		// Changed between STATUS and EXAMINE: decide again on what is open.
		st = ex
		plan = PlanFolder(cur, st, now)
	} else if ex.UIDNext > st.UIDNext {
		st.UIDNext = ex.UIDNext
	}
	var envs []Envelope
	switch plan.Action {
	case Backfill, Resync:
		uids, err := sess.SearchSince(plan.Since)
		if err != nil {
			return err
		}
		for len(uids) > 0 {
			n := min(len(uids), envelopeBatch)
			batch, err := sess.Envelopes(0, uids[:n])
			if err != nil {
				return err
			}
			envs = append(envs[:0], batch...)
			if err := s.handle(ctx, b, sess, envs, c); err != nil {
				return err
			}
			uids = uids[n:]
		}
		// The cursor moves only when the whole window was read: a backfill
		// cut short starts again, and re-reads are harmless.
		cursors[folder] = Advance(cur, st, plan, 0)
	case FetchNew:
		batch, err := sess.Envelopes(plan.FromUID, nil)
		if err != nil {
			return err
		}
		if err := s.handle(ctx, b, sess, batch, c); err != nil {
			return err
		}
		cursors[folder] = Advance(cur, st, plan, maxUID(batch))
	}
	return nil
}

func maxUID(es []Envelope) uint32 {
	var m uint32
	for _, e := range es {
		if e.UID > m {
			m = e.UID
		}
	}
	return m
}

// handle decides which envelopes are candidates, reads those whole and
// ingests them; the rest are only counted.
func (s *Syncer) handle(ctx context.Context, b *box, sess Session, envs []Envelope, c *counts) error {
	if len(envs) == 0 {
		return nil
	}
	c.fetched += int64(len(envs))
	idSet, fromSet := map[string]bool{}, map[string]bool{}
	for _, e := range envs {
		for _, id := range e.InReplyTo {
			idSet[id] = true
		}
		for _, id := range e.References {
			idSet[id] = true
		}
		if e.From != "" {
			fromSet[e.From] = true
		}
	}
	ids, froms := keys(idSet), keys(fromSet)
	ours, enrolled, err := s.store.MailboxLookups(ctx, b.mb.TenantKey, b.mb.AdapterID, ids, froms)
	if err != nil {
		return err
	}
	l := Lookups{Ours: func(id string) bool { return ours[id] }, Enrolled: func(a string) bool { return enrolled[a] }}
	adapter := b.mb.AdapterID
	for _, e := range envs {
		reason, ok := Candidate(e, l)
		if !ok {
			c.skipped++
			continue
		}
		c.candidates++
		if e.Size > MaxMessageSize {
			c.skipped++
			s.log.Warn("mailbox candidate too large to read", "adapter_id", adapter, "uid", e.UID, "size", e.Size, "reason", reason)
			continue
		}
		raw, err := sess.Raw(e.UID)
		if errors.Is(err, ingest.ErrTooLarge) {
			c.skipped++
			continue
		}
		if err != nil {
			return err
		}
		m, err := ingest.ParseRaw(raw, s.store.Now())
		if err != nil {
			c.skipped++
			s.log.Warn("mailbox candidate unreadable", "adapter_id", adapter, "uid", e.UID, "err", err)
			continue
		}
		res, err := s.store.Ingest(ctx, b.mb.TenantKey, ingest.InboundInput{Provider: Provider, AdapterID: &adapter, Message: m})
		if err != nil {
			var de *dripdrop.Error
			if errors.As(err, &de) {
				c.skipped++
				s.log.Warn("mailbox candidate refused by ingest", "adapter_id", adapter, "uid", e.UID, "code", de.Code)
				continue
			}
			return err
		}
		if !res.Duplicate {
			c.applied++
			if s.cfg.OnApplied != nil {
				s.cfg.OnApplied(b.mb.TenantKey, adapter, res)
			}
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
