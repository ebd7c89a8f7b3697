package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
)

// MaxBatch is the most contacts one batch import may carry.
const MaxBatch = 10_000

// BatchResult is the outcome of one row of a batch import.
type BatchResult struct {
	Index        int        `json:"index"`
	Email        string     `json:"email"`  // as given in the row, so results can be matched without counting rows
	Status       string     `json:"status"` // created | existing | error
	EnrollmentID *uuid.UUID `json:"enrollment_id,omitempty"`
	AdapterID    *uuid.UUID `json:"adapter_id,omitempty"`
	Error        *RowError  `json:"error,omitempty"`
}

// RowError is why one row was rejected.
type RowError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func rowError(err error) *RowError {
	var e *dripdrop.Error
	if errors.As(err, &e) {
		return &RowError{Code: e.Code, Field: e.Field, Message: e.Message}
	}
	return &RowError{Code: dripdrop.ECodeInternal, Message: "internal error"}
}

// batchRow is a valid contact of a batch import, the first row carrying its
// address, on its way to the write. What a check learns about a row that
// the write needs (a value for a new column) is a field here: the checks
// may set it through rows[k], and batchColumns.add writes it.
type batchRow struct {
	i       int // its index in the request and the results
	contact dripdrop.Contact
	norm    string // the normalised address
	// provider is the mailbox provider of the address's domain, set by
	// checkRecipients and written with the row (docs/preflight.md).
	provider string
}

// A batchCheck decides rows before anything is written: it marks a row it
// settles in results (existing, or an error with its reason) and leaves
// the others undecided. EnrollBatch runs the checks in order, each on the
// rows the earlier ones left undecided, and writes what is left. A new
// reason to reject a row is one more check in batchChecks.
type batchCheck func(s *Store, ctx context.Context, tenant string, ref versionRef, rows []batchRow, results []BatchResult) error

// batchChecks run in this order: a contact already live in the sequence is
// "existing" whatever else is true of it.
var batchChecks = []batchCheck{checkLive, checkRecipients, checkSuppressed}

// checkLive marks rows whose contact already has an active or paused
// enrollment in the sequence as existing.
func checkLive(s *Store, ctx context.Context, tenant string, ref versionRef, rows []batchRow, results []BatchResult) error {
	return markLive(ctx, s.q, tenant, ref, rows, results)
}

// markLive is checkLive on q (also inside the import's transaction).
func markLive(ctx context.Context, q *dbsqlc.Queries, tenant string, ref versionRef, rows []batchRow, results []BatchResult) error {
	live, err := q.LiveEnrollmentsByEmails(ctx, dbsqlc.LiveEnrollmentsByEmailsParams{TenantKey: tenant, SequenceID: ref.seqID, Emails: rowNorms(rows)})
	if err != nil {
		return err
	}
	byNorm := make(map[string]uuid.UUID, len(live))
	for _, l := range live {
		byNorm[deref(l.EmailNorm)] = l.ID
	}
	for _, r := range rows {
		if id, ok := byNorm[r.norm]; ok {
			results[r.i].Status, results[r.i].EnrollmentID = "existing", &id
		}
	}
	return nil
}

// checkRecipients applies the version's recipient checks
// (docs/preflight.md#recipients): a rejected row gets its reason, an
// accepted one its provider, written with the row.
func checkRecipients(s *Store, ctx context.Context, tenant string, ref versionRef, rows []batchRow, results []BatchResult) error {
	verdicts, err := s.recipientCheck(ctx, tenant, ref.verify, rowNorms(rows))
	if err != nil {
		return err
	}
	for k := range rows {
		r := &rows[k]
		if v := verdicts[k]; v.Reason != "" {
			results[r.i].Status = "error"
			results[r.i].Error = rowError(rejectRecipient(v, "contacts["+strconv.Itoa(r.i)+"].email"))
		} else {
			r.provider = v.Provider
		}
	}
	return nil
}

// checkSuppressed rejects rows whose address or domain is suppressed.
func checkSuppressed(s *Store, ctx context.Context, tenant string, _ versionRef, rows []batchRow, results []BatchResult) error {
	domains := make([]string, len(rows))
	for k, r := range rows {
		domains[k] = dripdrop.EmailDomain(r.norm)
	}
	sup, err := s.q.SuppressedAmong(ctx, dbsqlc.SuppressedAmongParams{TenantKey: tenant, Emails: rowNorms(rows), Domains: domains})
	if err != nil || len(sup) == 0 {
		return err
	}
	blocked := map[string]bool{}
	for _, r := range sup {
		blocked[r.Kind+":"+r.Value] = true
	}
	for k, r := range rows {
		if blocked["email:"+r.norm] || blocked["domain:"+domains[k]] {
			results[r.i].Status = "error"
			results[r.i].Error = &RowError{Code: dripdrop.ECodeSuppressed, Field: fmt.Sprintf("contacts[%d].email", r.i), Message: "the address or its domain is on the suppression list"}
		}
	}
	return nil
}

func rowNorms(rows []batchRow) []string {
	out := make([]string, len(rows))
	for k, r := range rows {
		out[k] = r.norm
	}
	return out
}

// undecided are the rows no check has settled, filtered in place (the
// settled ones live on in the results).
func undecided(rows []batchRow, results []BatchResult) []batchRow {
	out := rows[:0]
	for _, r := range rows {
		if results[r.i].Status == "" {
			out = append(out, r)
		}
	}
	return out
}

// EnrollBatch enrolls up to MaxBatch contacts into one sequence. Every row
// gets its own result; a bad row never rejects the others. The rows are
// validated, checked (batchChecks), pinned (one pool lock, WDRR in memory)
// and written in one transaction by one statement (BulkEnroll: the
// enrollments, their first executions and their adapter_pinned outbox
// rows; on Citus, bulkEnrollOnCitus).
func (s *Store) EnrollBatch(ctx context.Context, tenant, seqKey string, contacts []dripdrop.ContactInput) (_ []BatchResult, err error) {
	defer wrapErr(&err, "enroll batch")
	if seqKey == "" {
		return nil, dripdrop.Errorf(dripdrop.ECodeRequired, "sequence_key", "sequence_key is required")
	}
	if len(contacts) == 0 {
		return nil, dripdrop.Errorf(dripdrop.ECodeRequired, "contacts", "at least one contact is required")
	}
	if len(contacts) > MaxBatch {
		return nil, dripdrop.Errorf(dripdrop.ECodeOutOfRange, "contacts", "at most %d contacts per batch", MaxBatch)
	}
	ref, err := s.activeVersion(ctx, tenant, seqKey)
	if err != nil {
		return nil, err
	}
	results := make([]BatchResult, len(contacts))
	rows := make([]batchRow, 0, len(contacts))
	firstOf := make(map[string]int, len(contacts)) // normalised address → first row carrying it
	var repeats [][2]int                           // a row repeating an earlier row's address, and that row
	for i, ci := range contacts {
		results[i].Index = i
		if ci.Email != nil {
			results[i].Email = *ci.Email
		}
		c, err := ci.Validate("")
		if err != nil {
			// Again with the row's field prefix (an error is rare; the
			// prefix, built for every row, is not free).
			_, err = ci.Validate("contacts[" + strconv.Itoa(i) + "].")
			results[i].Status, results[i].Error = "error", rowError(err)
			continue
		}
		n := normEmail(c.Email)
		if first, dup := firstOf[n]; dup {
			results[i].Status = "existing" // shares the first row's outcome, below
			repeats = append(repeats, [2]int{i, first})
			continue
		}
		firstOf[n] = i
		rows = append(rows, batchRow{i: i, contact: c, norm: n})
	}
	for _, check := range batchChecks {
		if rows = undecided(rows, results); len(rows) == 0 {
			break
		}
		if err := check(s, ctx, tenant, ref, rows, results); err != nil {
			return nil, err
		}
	}
	if rows = undecided(rows, results); len(rows) > 0 {
		ids, err := s.poolAdapterIDs(ctx, tenant, ref.poolID)
		if err != nil {
			return nil, err
		}
		if _, err := s.RecoverDueAdapters(ctx, tenant, ids); err != nil {
			return nil, err
		}
		if err := s.insertBatch(ctx, tenant, ref, rows, results); err != nil {
			return nil, err
		}
		s.notes.add(WorkChannel, tenant) // the first steps, after commit (notify.go)
		s.stats.grew(len(rows))          // planner statistics, after commit (stats.go)
	}
	// Rows that repeated an earlier row's address share its outcome.
	for _, rp := range repeats {
		i, first := rp[0], rp[1]
		results[i].EnrollmentID = results[first].EnrollmentID
		if results[first].Status == "error" {
			results[i].Status, results[i].Error = "error", results[first].Error
		}
	}
	return results, nil
}

// batchColumns are BulkEnroll's arguments: one array per column, one
// element per row to insert. A new enrollment column is one more array
// here, in add and in the statement.
type batchColumns struct{ dbsqlc.BulkEnrollParams }

func newBatchColumns(n int) *batchColumns {
	return &batchColumns{dbsqlc.BulkEnrollParams{
		Ids: make([]uuid.UUID, 0, n), ExecutionIds: make([]uuid.UUID, 0, n), Emails: make([]string, 0, n),
		FirstNames: make([]string, 0, n), LastNames: make([]string, 0, n), Companies: make([]string, 0, n),
		Timezones: make([]string, 0, n), VarsList: make([]string, 0, n), AdapterIds: make([]uuid.UUID, 0, n),
		RecipientProviders: make([]string, 0, n),
	}}
}

// add appends one row pinned to adapter (varsBuf is scratch space, handed
// back for the next row).
func (b *batchColumns) add(r batchRow, adapter uuid.UUID, varsBuf []byte) []byte {
	c := r.contact
	varsBuf = appendVarsJSON(varsBuf[:0], c.Vars)
	b.Ids = append(b.Ids, dripdrop.NewID())
	b.ExecutionIds = append(b.ExecutionIds, dripdrop.NewID())
	b.Emails = append(b.Emails, c.Email)
	b.FirstNames = append(b.FirstNames, c.FirstName)
	b.LastNames = append(b.LastNames, c.LastName)
	b.Companies = append(b.Companies, c.Company)
	b.Timezones = append(b.Timezones, c.Timezone)
	b.VarsList = append(b.VarsList, string(varsBuf))
	b.AdapterIds = append(b.AdapterIds, adapter)
	b.RecipientProviders = append(b.RecipientProviders, r.provider)
	return varsBuf
}

func (s *Store) insertBatch(ctx context.Context, tenant string, ref versionRef, rows []batchRow, results []BatchResult) error {
	return s.txPipe(ctx, []string{"begin"}, func(pp *pipe) ([]event, error) {
		q, err := pp.Q(ctx)
		if err != nil {
			return nil, err
		}
		var evs []event
		now := s.clock.Now()
		p, err := s.lockPicker(ctx, q, tenant, ref, now)
		if err != nil {
			return evs, err
		}
		sharded := s.onCitus(ctx)
		if sharded {
			// Copied rows cannot skip a conflict: the contacts enrolled
			// since checkLive, read again under the pool's lock.
			if err := markLive(ctx, q, tenant, ref, rows, results); err != nil {
				return evs, err
			}
			if rows = undecided(rows, results); len(rows) == 0 {
				return evs, nil
			}
		}
		cols := newBatchColumns(len(rows))
		cols.TenantKey, cols.SequenceID, cols.SequenceVersionID, cols.Now = tenant, ref.seqID, ref.versionID, now
		cols.StepID, cols.OverrideAdapterID = ref.firstStep.ID, ref.firstStep.AdapterOverrideID
		cols.ScheduledFor = now.Add(time.Duration(ref.firstStep.DelaySeconds) * time.Second)
		picked := make([]int, 0, len(rows)) // row of each column position
		exhausted := false
		var varsBuf []byte
		for k, r := range rows {
			adapter, ok := p.pickFor(r.provider)
			if !ok {
				exhausted = true
				results[r.i].Status = "error"
				results[r.i].Error = rowError(dripdrop.PoolExhausted(p.pool.ID, evictedOf(p.cands)))
				continue
			}
			varsBuf = cols.add(r, adapter, varsBuf)
			picked = append(picked, k)
		}
		if exhausted {
			evs = append(evs, p.exhaustedEvent(tenant, ref.versionID))
		}
		if len(picked) == 0 {
			return evs, nil
		}
		type insertedRow struct {
			pos     int
			written bool // its outbox row too (else the seam writes it)
			pending bool
		}
		var inserted []insertedRow
		if sharded {
			pending, err := s.bulkEnrollOnCitus(ctx, pp, q, cols)
			if err != nil {
				return evs, err
			}
			for pos := range cols.Ids {
				inserted = append(inserted, insertedRow{pos: pos, written: true, pending: pending})
			}
		} else {
			ins, err := q.BulkEnroll(ctx, cols.BulkEnrollParams)
			if err != nil {
				return evs, err
			}
			for _, r := range ins {
				inserted = append(inserted, insertedRow{pos: int(r.Pos), written: true, pending: r.Pending})
			}
		}
		evs = slices.Grow(evs, len(inserted))
		done := make([]bool, len(picked))
		for _, ins := range inserted {
			pos := ins.pos
			done[pos] = true
			i := rows[picked[pos]].i
			// The results point into the columns, which outlive them.
			results[i].Status, results[i].EnrollmentID, results[i].AdapterID = "created", &cols.Ids[pos], &cols.AdapterIds[pos]
			ev := evAdapterPinned(tenant, cols.Ids[pos], ref.versionID, cols.AdapterIds[pos])
			ev.written, ev.noMatch = ins.written, ins.written && !ins.pending
			evs = append(evs, ev)
		}
		// Rows not inserted lost a race with a concurrent enroll of the same
		// contact: they are "existing".
		for pos, ok := range done {
			if ok {
				continue
			}
			r := rows[picked[pos]]
			results[r.i].Status, results[r.i].AdapterID = "existing", nil
			if e, err := q.GetLiveEnrollmentByEmail(ctx, dbsqlc.GetLiveEnrollmentByEmailParams{TenantKey: tenant, SequenceID: ref.seqID, Email: r.contact.Email}); err == nil {
				id := e.ID
				results[r.i].EnrollmentID = &id
			}
		}
		return evs, p.saveCounters(ctx, q, tenant, ref.versionID)
	})
}

// appendVarsJSON appends vars as a JSON object, keys in order ({} when
// there are none): what json.Marshal writes for the map, without its
// reflection.
func appendVarsJSON(b []byte, vars map[string]string) []byte {
	if len(vars) == 0 {
		return append(b, "{}"...)
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[string])
	b = append(b, '{')
	for n, k := range keys {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, vars[k])
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
