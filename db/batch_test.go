package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/telemetry"
	"github.com/dripdrop/dripdrop/vault"
)

// captured holds what the store emitted in process and what it counted.
type captured struct {
	telemetry.NoOp
	mu        sync.Mutex
	emitted   []map[string]any // metadata of the adapter_pinned events
	published map[string]int
	noMatch   map[string]int
}

func (c *captured) Emit(_ context.Context, name string, _ map[string]float64, metadata map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "dripdrop.dispatch.adapter_pinned" {
		c.emitted = append(c.emitted, metadata)
	}
}

func (c *captured) OutboxEventsPublished(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.published[name]++
}

func (c *captured) OutboxEventsNoMatch(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noMatch[name]++
}

// TestBulkEnrollOutboxRowsMatchTheEvents: a batch import writes the
// adapter_pinned outbox rows in SQL from the rows it inserted. For every
// created row there must be exactly one outbox row, its metadata equal to
// the event emitted in process (evAdapterPinned's), its measurements
// {"count": 1}, written as no_match while the tenant has no active
// subscription and as pending once it has one, and counted by the outbox
// metrics like every other event. Rows that are not created (a repeated
// address, an invalid one, a contact already live) write none.
func TestBulkEnrollOutboxRowsMatchTheEvents(t *testing.T) {
	t.Parallel()
	bulkOutboxRowsMatchTheEvents(t, dbtest.URL(t))
}

// TestCitusBulkEnrollOutboxRowsMatchTheEvents is the same on Citus, where
// the import copies its rows (COPY) instead of BulkEnroll.
func TestCitusBulkEnrollOutboxRowsMatchTheEvents(t *testing.T) {
	t.Parallel()
	bulkOutboxRowsMatchTheEvents(t, dbtest.CitusURL(t))
}

func bulkOutboxRowsMatchTheEvents(t *testing.T, url string) {
	ctx := context.Background()
	box, _ := vault.ParseKey(vault.GenerateKey())
	c := &captured{published: map[string]int{}, noMatch: map[string]int{}}
	store, err := db.Open(ctx, url, db.Options{Vault: box, Telemetry: c, OutboxMetrics: c})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := bulkTenant(t, store, 3)
	const pinned = "dripdrop.dispatch.adapter_pinned"

	batch := func(emails ...string) []db.BatchResult {
		t.Helper()
		in := make([]dripdrop.ContactInput, len(emails))
		for i := range emails {
			in[i] = dripdrop.ContactInput{Email: &emails[i], Vars: map[string]any{"plan": "pro"}}
		}
		res, err := store.EnrollBatch(ctx, "acme", key, in)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	outbox := func(status string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, r := range dbtest.Query(t, url, `SELECT metadata, measurements FROM telemetry_outbox
			WHERE tenant_key = 'acme' AND name = $1 AND status = $2 ORDER BY id`, pinned, status) {
			if m := r[1].(map[string]any); len(m) != 1 || m["count"] != float64(1) {
				t.Fatalf("measurements %v, want {\"count\": 1}", m)
			}
			out = append(out, r[0].(map[string]any))
		}
		return out
	}
	sameEvents := func(rows []map[string]any, emitted []map[string]any) {
		t.Helper()
		key := func(m map[string]any) string { b, _ := json.Marshal(m); return string(b) }
		var a, b []string
		for _, m := range rows {
			a = append(a, key(m))
		}
		for _, m := range emitted {
			b = append(b, key(m))
		}
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("outbox rows and emitted events differ:\n rows    %v\n emitted %v", a, b)
		}
	}

	var emails []string
	for i := range 40 {
		emails = append(emails, fmt.Sprintf("c%d@example.com", i))
	}
	emails = append(emails, "C3@Example.com", "not an address")
	res := batch(emails...)
	created := 0
	for _, r := range res {
		if r.Status == "created" {
			created++
		}
	}
	if created != 40 || res[40].Status != "existing" || *res[40].EnrollmentID != *res[3].EnrollmentID || res[41].Status != "error" {
		t.Fatalf("created %d (want 40); repeated row %+v, invalid row %+v", created, res[40], res[41])
	}
	rows := outbox("no_match")
	if len(rows) != 40 || len(outbox("pending")) != 0 {
		t.Fatalf("%d no_match and %d pending adapter_pinned rows, want 40 and 0", len(rows), len(outbox("pending")))
	}
	c.mu.Lock()
	sameEvents(rows, c.emitted)
	for _, m := range c.emitted {
		if len(m) != 4 || m["tenant_key"] != "acme" || m["sequence_version_id"] == nil {
			t.Fatalf("emitted metadata %v", m)
		}
	}
	for _, r := range res[:40] {
		found := false
		for _, m := range c.emitted {
			found = found || (m["enrollment_id"] == r.EnrollmentID.String() && m["adapter_id"] == r.AdapterID.String())
		}
		if !found {
			t.Fatalf("no adapter_pinned event for row %+v", r)
		}
	}
	if c.published[pinned] != 40 || c.noMatch[pinned] != 40 {
		t.Fatalf("metrics: %d published, %d no_match; want 40 each", c.published[pinned], c.noMatch[pinned])
	}
	c.emitted = nil
	c.mu.Unlock()

	// Once the tenant subscribes, the rows are pending for the fan-out;
	// contacts already live write nothing.
	hook := "https://hooks.example.com/dripdrop"
	if _, err := store.CreateSubscription(ctx, "acme", db.SubscriptionInput{URL: &hook}); err != nil {
		t.Fatal(err)
	}
	res = batch("c1@example.com", "new1@example.com", "new2@example.com")
	if res[0].Status != "existing" || res[1].Status != "created" || res[2].Status != "created" {
		t.Fatalf("second batch: %+v", res)
	}
	pending := outbox("pending")
	if len(pending) != 2 || len(outbox("no_match")) != 40 {
		t.Fatalf("%d pending rows after subscribing, want 2", len(pending))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sameEvents(pending, c.emitted)
	if c.published[pinned] != 42 || c.noMatch[pinned] != 40 {
		t.Fatalf("metrics: %v published, %v no_match; want 42 and 40", maps.Clone(c.published), maps.Clone(c.noMatch))
	}
}

// TestOneTripCommitCommitsNothingOnFailure: a transaction whose COMMIT goes
// out in the same round trip as its statements (the record of a group of
// sends) commits nothing when one of them fails (the server skips the rest
// of the batch, COMMIT included), commits all when none does, and its
// connection is fit for the next transaction either way.
func TestOneTripCommitCommitsNothingOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	store, err := db.Open(ctx, url, db.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.OneTripCommit(ctx, "failing", `SELECT 1/0`); err == nil {
		t.Fatal("a batch with a failing statement reported no error")
	}
	if err := store.OneTripCommit(ctx, "passing", `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	got := dbtest.Query(t, url, `SELECT tenant_key FROM tenants ORDER BY tenant_key`)
	if len(got) != 1 || got[0][0] != "passing" {
		t.Fatalf("tenants %v, want only the one of the batch that did not fail", got)
	}
}

// TestCitusBatchConflictIsRefusedWhole: on Citus the import copies its
// rows, which cannot skip a contact enrolled meanwhile as BulkEnroll's ON
// CONFLICT does. The contacts live under the pool's lock are skipped; one
// enrolled by a path that does not take the lock (here a statement sent
// just before the copy) makes the batch fail whole with a conflict, nothing
// written, and the batch sent again reports that contact existing.
func TestCitusBatchConflictIsRefusedWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.CitusURL(t)
	box, _ := vault.ParseKey(vault.GenerateKey())
	var race atomic.Bool
	hook := func(sql string, _ []any) {
		if race.Load() && strings.HasPrefix(sql, `COPY "enrollments" `) {
			race.Store(false)
			dbtest.Exec(t, url, `INSERT INTO enrollments (tenant_key, id, sequence_id, sequence_version_id, email, adapter_id, created_at, updated_at)
				SELECT tenant_key, gen_random_uuid(), sequence_id, sequence_version_id, 'raced@example.com', adapter_id, now(), now()
				FROM enrollments WHERE tenant_key = 'acme' LIMIT 1`)
		}
	}
	store, err := db.Open(ctx, url, db.Options{Vault: box, StatementHook: hook})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key := bulkTenant(t, store, 2)
	contacts := func(emails ...string) []dripdrop.ContactInput {
		in := make([]dripdrop.ContactInput, len(emails))
		for i := range emails {
			in[i] = dripdrop.ContactInput{Email: &emails[i]}
		}
		return in
	}
	if _, err := store.EnrollBatch(ctx, "acme", key, contacts("first@example.com")); err != nil {
		t.Fatal(err)
	}
	counts := func() [3]int64 {
		r := dbtest.Query(t, url, `SELECT (SELECT count(*) FROM enrollments WHERE tenant_key = 'acme'),
			(SELECT count(*) FROM step_executions WHERE tenant_key = 'acme'), (SELECT count(*) FROM telemetry_outbox WHERE tenant_key = 'acme')`)[0]
		return [3]int64{r[0].(int64), r[1].(int64), r[2].(int64)}
	}
	before := counts()
	race.Store(true)
	_, err = store.EnrollBatch(ctx, "acme", key, contacts("a@example.com", "raced@example.com", "b@example.com"))
	var de *dripdrop.Error
	if !errors.As(err, &de) || de.Code != dripdrop.ECodeConflict || de.Field != "contacts" {
		t.Fatalf("batch racing an enrollment: %v, want a conflict on contacts", err)
	}
	after := counts()
	if after[0] != before[0]+1 || after[1] != before[1] || after[2] != before[2] {
		t.Fatalf("enrollments, executions, outbox rows %v → %v: want only the raced enrollment added", before, after)
	}
	res, err := store.EnrollBatch(ctx, "acme", key, contacts("a@example.com", "raced@example.com", "b@example.com"))
	if err != nil || res[0].Status != "created" || res[1].Status != "existing" || res[2].Status != "created" {
		t.Fatalf("the batch again: %+v, %v; want the raced contact existing, the others created", res, err)
	}
}
