package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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

// EnrollBatch enrolls up to MaxBatch contacts into one sequence. Every row
// gets its own result; a bad row never rejects the others. The good rows are
// pinned (one pool lock, WDRR in memory) and written with two set-based
// inserts in one transaction.
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
	valid := make([]dripdrop.Contact, len(contacts))
	firstOf := map[string]int{} // normalised email → first row carrying it
	var emails, domains []string
	for i, ci := range contacts {
		results[i].Index = i
		if ci.Email != nil {
			results[i].Email = *ci.Email
		}
		c, err := ci.Validate(fmt.Sprintf("contacts[%d].", i))
		if err != nil {
			results[i].Status, results[i].Error = "error", rowError(err)
			continue
		}
		valid[i] = c
		n := normEmail(c.Email)
		if _, dup := firstOf[n]; dup {
			results[i].Status = "existing"
			continue
		}
		firstOf[n] = i
		emails = append(emails, n)
		domains = append(domains, dripdrop.EmailDomain(n))
	}
	// The recipient checks (docs/preflight.md#recipients): a rejected row
	// gets its reason; an accepted one its provider, written with the row.
	providers := make([]string, len(contacts))
	if len(emails) > 0 {
		verdicts, err := s.recipientCheck(ctx, tenant, ref.verify, emails)
		if err != nil {
			return nil, err
		}
		for k, n := range emails {
			i := firstOf[n]
			if v := verdicts[k]; v.Reason != "" {
				results[i].Status = "error"
				results[i].Error = rowError(rejectRecipient(v, fmt.Sprintf("contacts[%d].email", i)))
			} else {
				providers[i] = v.Provider
			}
		}
	}
	if len(emails) > 0 {
		sup, err := s.q.SuppressedAmong(ctx, dbsqlc.SuppressedAmongParams{TenantKey: tenant, Emails: emails, Domains: domains})
		if err != nil {
			return nil, err
		}
		blocked := map[string]bool{}
		for _, r := range sup {
			blocked[r.Kind+":"+r.Value] = true
		}
		live, err := s.q.LiveEnrollmentsByEmails(ctx, dbsqlc.LiveEnrollmentsByEmailsParams{TenantKey: tenant, SequenceID: ref.seqID, Emails: emails})
		if err != nil {
			return nil, err
		}
		for _, l := range live {
			i := firstOf[deref(l.EmailNorm)]
			id := l.ID
			results[i].Status, results[i].EnrollmentID, results[i].Error = "existing", &id, nil
		}
		for n, i := range firstOf {
			if results[i].Status == "" && results[i].Error == nil && (blocked["email:"+n] || blocked["domain:"+dripdrop.EmailDomain(n)]) {
				results[i].Status = "error"
				results[i].Error = &RowError{Code: dripdrop.ECodeSuppressed, Field: fmt.Sprintf("contacts[%d].email", i), Message: "the address or its domain is on the suppression list"}
			}
		}
	}
	var todo []int
	for i := range results {
		if results[i].Status == "" {
			todo = append(todo, i)
		}
	}
	if len(todo) > 0 {
		ids, err := s.poolAdapterIDs(ctx, tenant, ref.poolID)
		if err != nil {
			return nil, err
		}
		if _, err := s.RecoverDueAdapters(ctx, tenant, ids); err != nil {
			return nil, err
		}
		if err := s.insertBatch(ctx, tenant, ref, valid, providers, todo, results); err != nil {
			return nil, err
		}
		s.notes.add(WorkChannel, tenant) // the first steps, after commit (notify.go)
		s.stats.grew(len(todo))          // planner statistics, after commit (stats.go)
	}
	// Rows that repeated an earlier row's address share its outcome.
	for i := range results {
		if results[i].Status == "existing" && results[i].EnrollmentID == nil {
			first := firstOf[normEmail(valid[i].Email)]
			if first != i {
				results[i].EnrollmentID = results[first].EnrollmentID
				if results[first].Status == "error" {
					results[i].Status, results[i].Error = "error", results[first].Error
				}
			}
		}
	}
	return results, nil
}

func (s *Store) insertBatch(ctx context.Context, tenant string, ref versionRef, valid []dripdrop.Contact, providers []string, todo []int, results []BatchResult) error {
	return s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		var evs []event
		now := s.clock.Now()
		p, err := s.lockPicker(ctx, q, tenant, ref, now)
		if err != nil {
			return evs, err
		}
		n := len(todo)
		params := dbsqlc.BulkInsertEnrollmentsParams{
			TenantKey: tenant, SequenceID: ref.seqID, SequenceVersionID: ref.versionID, Now: now,
			Ids: make([]uuid.UUID, 0, n), Emails: make([]string, 0, n), FirstNames: make([]string, 0, n), LastNames: make([]string, 0, n),
			Companies: make([]string, 0, n), Timezones: make([]string, 0, n), VarsList: make([]string, 0, n), AdapterIds: make([]uuid.UUID, 0, n),
			RecipientProviders: make([]string, 0, n),
		}
		rowOf := map[uuid.UUID]int{}
		exhausted := false
		for _, i := range todo {
			adapter, ok := p.pickFor(providers[i])
			if !ok {
				exhausted = true
				results[i].Status = "error"
				results[i].Error = rowError(dripdrop.PoolExhausted(p.pool.ID, evictedOf(p.cands)))
				continue
			}
			c := valid[i]
			vars := "{}"
			if len(c.Vars) > 0 {
				b, _ := json.Marshal(c.Vars)
				vars = string(b)
			}
			id := dripdrop.NewID()
			rowOf[id] = i
			a := adapter
			results[i].AdapterID = &a
			params.Ids = append(params.Ids, id)
			params.Emails = append(params.Emails, c.Email)
			params.FirstNames = append(params.FirstNames, c.FirstName)
			params.LastNames = append(params.LastNames, c.LastName)
			params.Companies = append(params.Companies, c.Company)
			params.Timezones = append(params.Timezones, c.Timezone)
			params.VarsList = append(params.VarsList, vars)
			params.AdapterIds = append(params.AdapterIds, adapter)
			params.RecipientProviders = append(params.RecipientProviders, providers[i])
		}
		if exhausted {
			evs = append(evs, p.exhaustedEvent(tenant, ref.versionID))
		}
		if len(params.Ids) == 0 {
			return evs, nil
		}
		inserted, err := q.BulkInsertEnrollments(ctx, params)
		if err != nil {
			return evs, err
		}
		execIDs := make([]uuid.UUID, len(inserted))
		execAdapters := make([]uuid.UUID, len(inserted))
		for k, id := range inserted {
			i := rowOf[id]
			eid := id
			results[i].Status, results[i].EnrollmentID = "created", &eid
			execIDs[k] = dripdrop.NewID()
			execAdapters[k] = *results[i].AdapterID
			evs = append(evs, evAdapterPinned(tenant, id, ref.versionID, *results[i].AdapterID))
			delete(rowOf, id)
		}
		// Rows not inserted lost a race with a concurrent enroll of the same
		// contact: they are "existing".
		for _, i := range rowOf {
			results[i].Status, results[i].AdapterID = "existing", nil
			if e, err := q.GetLiveEnrollmentByEmail(ctx, dbsqlc.GetLiveEnrollmentByEmailParams{TenantKey: tenant, SequenceID: ref.seqID, Email: valid[i].Email}); err == nil {
				id := e.ID
				results[i].EnrollmentID = &id
			}
		}
		if len(inserted) > 0 {
			if err := q.BulkInsertExecutions(ctx, dbsqlc.BulkInsertExecutionsParams{
				TenantKey: tenant, StepID: ref.firstStep.ID, ScheduledFor: now.Add(time.Duration(ref.firstStep.DelaySeconds) * time.Second),
				Now: now, Ids: execIDs, EnrollmentIds: inserted, AdapterIds: execAdapters, OverrideAdapterID: ref.firstStep.AdapterOverrideID,
			}); err != nil {
				return evs, err
			}
		}
		return evs, p.saveCounters(ctx, q, tenant, ref.versionID)
	})
}
