package dbtest

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// CitusMultiTask names the statements that may run as more than one task
// on Citus, and why. Keep it short: each is work that is not yet
// single-shard (docs/scaling.md#not-yet-router-safe).
var CitusMultiTask = map[string]string{}

// CitusAcrossWorkers are the allowed statements that touch the shards of
// several workers at once, and why: fleet-wide work the loops do once per
// interval or once per process, never per message.
var CitusAcrossWorkers = map[string]string{
	"MailsyncCandidates":    "mailbox sync's read of unowned mailboxes (when a replica is short of its share)",
	"CountSyncedMailboxes":  "mailbox sync's count of the fleet (once per claim interval)",
	"ReleaseMailboxes":      "a replica's shutdown gives its mailboxes back (once per process)",
	"AdaptersByFromAddress": "the inbound SMTP listener learns the tenant from the recipient address (a read per inbound message; no tenant to route by yet)",
}

// CitusTenantsReads are reads of the rows of the tenants they name, pruned
// to those tenants' shards: a single task for one tenant, one task per
// shard otherwise.
var CitusTenantsReads = map[string]string{
	"OwnedMailboxStates": "mailbox sync's read of the mailboxes a replica owns (once per changes interval)",
}

type recordedStatement struct {
	sql  string
	args []any
	n    int
}

// StatementRecorder keeps the first arguments of every distinct statement
// a store sends (its Add is a db.Options.StatementHook).
type StatementRecorder struct {
	mu   sync.Mutex
	seen map[string]recordedStatement
}

// NewStatementRecorder returns an empty recorder.
func NewStatementRecorder() *StatementRecorder {
	return &StatementRecorder{seen: map[string]recordedStatement{}}
}

// Add records one statement.
func (r *StatementRecorder) Add(sql string, args []any) {
	name := StatementName(sql)
	if name == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.seen[name]
	if !ok {
		st = recordedStatement{sql: sql, args: slices.Clone(args)}
	}
	st.n++
	r.seen[name] = st
}

// Count is how many times the statement named name was sent.
func (r *StatementRecorder) Count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[name].n
}

// StatementName is a sqlc query's name, or a raw statement's opening
// words; "" for transaction control and settings, which have no plan.
func StatementName(sql string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(sql), "\n")
	if rest, ok := strings.CutPrefix(first, "-- name: "); ok {
		name, _, _ := strings.Cut(rest, " ")
		return name
	}
	words := strings.Fields(strings.ToLower(sql))
	if len(words) == 0 {
		return ""
	}
	switch words[0] {
	case "begin", "commit", "rollback", "set", "listen", "unlisten", "savepoint", "release", "notify":
		return ""
	}
	// The outbox seam's insert, its Citus form (a multi-row VALUES, one
	// text per row count) and the single-node one, which must not be sent
	// on Citus (it commits on every worker).
	if strings.HasPrefix(sql, "INSERT INTO telemetry_outbox (tenant_key, name, metadata, measurements, occurred_at, status) VALUES") {
		return "outbox insert"
	}
	if strings.Contains(sql, "INSERT INTO telemetry_outbox (tenant_key, name, measurements, metadata, occurred_at, status)") {
		return "outbox insert (single-node form)"
	}
	if len(words) > 8 {
		words = words[:8]
	}
	return strings.Join(words, " ")
}

// RequireRouterPlans plans every statement rec saw, with the arguments it
// was first sent with, on the Citus database at url, and requires a single
// task (a router query) of each but those in CitusMultiTask (one worker),
// CitusAcrossWorkers and CitusTenantsReads. It logs which sqlc queries were not reached.
func RequireRouterPlans(t *testing.T, url string, rec *StatementRecorder) {
	t.Helper()
	RequireRouterPlansOf(t, url, rec, false)
}

// CitusSingleNodeOnly are the single-node forms of statements the store
// replaces on Citus (docs/scaling.md#writing-queries-that-shard): a
// scenario on Citus must never send them, and TestCitusEveryQueryPlans
// does not require them to be router queries.
var CitusSingleNodeOnly = map[string]string{
	"RecordSent":           "Citus: RecordSentSteps and VALUES inserts",
	"BulkEnroll":           "Citus: COPY of the rows",
	"ClaimMailboxes":       "Citus: LiveMailsyncOwners, MailsyncCandidates, ClaimTenantMailboxes",
	"MailsyncFleet":        "Citus: LiveMailsyncOwners and CountSyncedMailboxes",
	"OwnedMailboxChanges":  "Citus: OwnedMailboxStates",
	"SaveRecipientDomains": "Citus: a VALUES upsert",
	"ReserveSends":         "Citus: ReserveSendsSteps and AddDailyUsage",
}

// RequireRouterPlansOf is RequireRouterPlans; every says whether rec holds
// every generated query (TestCitusEveryQueryPlans), so that the
// single-node forms are skipped rather than refused.
func RequireRouterPlansOf(t *testing.T, url string, rec *StatementRecorder, every bool) {
	t.Helper()
	ctx := context.Background()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	names := slices.Sorted(maps.Keys(rec.seen))
	single := 0
	for _, name := range names {
		st := rec.seen[name]
		if why, ok := CitusSingleNodeOnly[name]; ok {
			if !every {
				t.Errorf("%s was sent on Citus: the single-node form (%s)", name, why)
			}
			continue
		}
		if strings.HasPrefix(name, "copy ") {
			// COPY has no plan: Citus routes its rows by their tenant_key
			// (TestCitusTwoPhaseCommits counts the workers it commits on).
			t.Logf("%s: not planned (COPY, sent %d times)", name, st.n)
			continue
		}
		plan, err := CitusExplain(ctx, url, st.sql, st.args)
		if err != nil {
			t.Errorf("%s: EXPLAIN: %v", name, err)
			continue
		}
		why, allowed := CitusMultiTask[name]
		across, acrossOK := CitusAcrossWorkers[name]
		if acrossOK {
			why, allowed = across, true
		}
		if why, ok := CitusTenantsReads[name]; ok {
			if plan.InsertSelect != "" || plan.Subplans > 0 {
				t.Errorf("%s: %+v, allowed only as %s", name, plan, why)
			} else {
				t.Logf("%s: %+v, allowed: %s", name, plan, why)
			}
			continue
		}
		switch {
		case plan.SingleTask() && allowed:
			t.Errorf("%s is a router query now (%+v): take it off the allow-list", name, plan)
		case plan.SingleTask():
			single++
		case allowed && plan.InsertSelect != "" && plan.InsertSelect != "pull to coordinator":
			t.Errorf("%s: %+v, allowed only as %s", name, plan, why)
		case allowed && !acrossOK && !plan.OneWorker():
			t.Errorf("%s: %+v spans workers; allowed only as %s", name, plan, why)
		case allowed:
			t.Logf("%s: %+v, allowed: %s", name, plan, why)
		default:
			t.Errorf("%s: %+v, want a single task (ran %d times)", name, plan, st.n)
		}
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	all := SqlcQueries(t, root)
	var missed []string
	for _, n := range all {
		if _, ok := rec.seen[n]; !ok {
			missed = append(missed, n)
		}
	}
	t.Logf("planned %d distinct statements: %d single-task; sqlc queries reached %d of %d; not reached: %s",
		len(names), single, len(all)-len(missed), len(all), strings.Join(missed, " "))
}

// SqlcQueries lists the names of the generated queries.
func SqlcQueries(t testing.TB, root string) []string {
	t.Helper()
	var all []string
	files, _ := filepath.Glob(filepath.Join(root, "db/internal/dbsqlc/*.go"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile("(?m)^const [a-zA-Z]+ = `-- name: ([A-Za-z]+) ").FindAllSubmatch(b, -1) {
			all = append(all, string(m[1]))
		}
	}
	return all
}
