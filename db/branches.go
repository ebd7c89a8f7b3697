package db

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/internal/dbsqlc"
	"github.com/dripdrop/dripdrop/policy"
)

// Branches between sequences (docs/sequences.md#branches). A version may
// route a contact to another sequence on a categorised reply (on_reply),
// an auto-reply (on_auto_reply) or completion without a reply
// (on_completed_without_reply). The outcome's transaction (ingest, or the
// leader's route_sweep for completions) writes one route per source
// enrollment, due after the branch's delay; a later human reply re-decides
// a pending route. RunDueRoutes carries due routes out: it enrolls the
// same contact into the target sequence's active version, pinned to the
// source's adapter when that adapter is a usable member of the target's
// pool, in a new thread unless the target version sets continue_thread
// (and the sender is the same), with audit entries on both enrollments
// and dripdrop.enrollment.routed. Cycles are refused when a version is
// authored or activated (422 branch_cycle).

// Route states and the reasons a route is skipped.
const (
	RoutePending  = "pending"
	RouteEnrolled = "enrolled"
	RouteSkipped  = "skipped"

	RouteSuperseded      = "superseded"        // a later reply has no branch
	RouteAlreadyEnrolled = "already_enrolled"  // the contact is live in the target
	RouteSuppressed      = "suppressed"        // the address or its domain
	RouteNoActiveVersion = "no_active_version" // the target has none
	RoutePoolExhausted   = "pool_exhausted"    // no member of the target's pool can take it
)

// completedLookback bounds how far back the route sweep looks for
// enrollments completed without a reply (a sweep that was down longer
// misses older ones).
const completedLookback = 7 * 24 * time.Hour

func versionBranches(raw []byte) dripdrop.Branches {
	var b dripdrop.Branches
	if len(raw) > 2 {
		_ = json.Unmarshal(raw, &b)
	}
	return b
}

// setBranches resolves a version's targets, refuses cycles and stores the
// branches with the version (in the authoring transaction).
func (s *Store) setBranches(ctx context.Context, q *dbsqlc.Queries, tenant string, seq, version uuid.UUID, v *dripdrop.SequenceVersion, active bool) error {
	if !v.Branches.Empty() {
		if err := q.LockBranchGraph(ctx, tenant); err != nil {
			return err
		}
		if err := resolveBranches(ctx, q, tenant, &v.Branches); err != nil {
			return err
		}
		if err := checkCycles(ctx, q, tenant, seq, v.Branches); err != nil {
			return err
		}
	}
	raw, err := json.Marshal(v.Branches)
	if err != nil {
		return err
	}
	return q.SetVersionBranches(ctx, dbsqlc.SetVersionBranchesParams{TenantKey: tenant, ID: version, Branches: raw, ContinueThread: v.ContinueThread})
}

// resolveBranches sets each route's sequence id (404 not_found on the
// route's field for an unknown key).
func resolveBranches(ctx context.Context, q *dbsqlc.Queries, tenant string, b *dripdrop.Branches) error {
	refs := b.Refs()
	keys := make([]string, 0, len(refs))
	for _, r := range refs {
		keys = append(keys, r.Route.SequenceKey)
	}
	rows, err := q.SequenceKeys(ctx, dbsqlc.SequenceKeysParams{TenantKey: tenant, Keys: keys})
	if err != nil {
		return err
	}
	ids := map[string]uuid.UUID{}
	for _, r := range rows {
		ids[r.Key] = r.ID
	}
	for _, r := range refs {
		id, ok := ids[r.Route.SequenceKey]
		if !ok {
			return &dripdrop.Error{Code: dripdrop.ECodeNotFound, Field: r.Field + ".sequence_key", Message: "sequence " + r.Route.SequenceKey + " not found"}
		}
		r.Route.SequenceID = id
		if r.Category != "" {
			b.OnReply[r.Category] = *r.Route
		}
	}
	return nil
}

// checkCycles refuses branches that lead back to seq through the active
// versions of the tenant's sequences (seq's own edges being the new ones).
func checkCycles(ctx context.Context, q *dbsqlc.Queries, tenant string, seq uuid.UUID, b dripdrop.Branches) error {
	rows, err := q.ActiveBranches(ctx, tenant)
	if err != nil {
		return err
	}
	edges := map[uuid.UUID][]uuid.UUID{}
	keys := map[uuid.UUID]string{}
	for _, r := range rows {
		keys[r.SequenceID] = r.Key
		if r.SequenceID == seq {
			continue
		}
		for _, ref := range versionBranches(r.Branches).Refs() {
			edges[r.SequenceID] = append(edges[r.SequenceID], ref.Route.SequenceID)
		}
	}
	for _, ref := range b.Refs() {
		keys[ref.Route.SequenceID] = ref.Route.SequenceKey
	}
	// The path from a target back to seq, if there is one.
	var back func(at uuid.UUID, seen map[uuid.UUID]bool) []uuid.UUID
	back = func(at uuid.UUID, seen map[uuid.UUID]bool) []uuid.UUID {
		if at == seq {
			return []uuid.UUID{at}
		}
		if seen[at] {
			return nil
		}
		seen[at] = true
		for _, next := range edges[at] {
			if p := back(next, seen); p != nil {
				return append([]uuid.UUID{at}, p...)
			}
		}
		return nil
	}
	for _, ref := range b.Refs() {
		if p := back(ref.Route.SequenceID, map[uuid.UUID]bool{}); p != nil {
			path := make([]string, 0, len(p)+1)
			for _, id := range append([]uuid.UUID{seq}, p...) {
				if _, ok := keys[id]; !ok {
					if sq, err := q.GetSequence(ctx, dbsqlc.GetSequenceParams{TenantKey: tenant, ID: id}); err == nil {
						keys[id] = sq.Key
					}
				}
				path = append(path, keyOr(keys, id))
			}
			return dripdrop.BranchCycleError(ref.Field+".sequence_key", path)
		}
	}
	return nil
}

func keyOr(keys map[uuid.UUID]string, id uuid.UUID) string {
	if k, ok := keys[id]; ok {
		return k
	}
	return id.String()
}

// routeOutcome decides the route of an enrollment's outcome in the
// outcome's transaction: a branch for it writes (or, for a human reply,
// re-decides) the enrollment's route, due after the branch's delay, and
// stops a still-live source enrollment as routed; a human reply without
// a branch skips a pending route (superseded).
func (s *Store) routeOutcome(ctx context.Context, q *dbsqlc.Queries, tenant string, enrollment, version uuid.UUID, trigger, category string, inbound *uuid.UUID, now time.Time) ([]event, error) {
	v, err := q.GetVersionBranches(ctx, dbsqlc.GetVersionBranchesParams{TenantKey: tenant, ID: version})
	if err != nil {
		return nil, err
	}
	b := versionBranches(v.Branches)
	var route *dripdrop.Route
	switch trigger {
	case dripdrop.TriggerOnReply:
		if r, ok := b.OnReply[category]; ok {
			route = &r
		}
	case dripdrop.TriggerOnAutoReply:
		route = b.OnAutoReply
	case dripdrop.TriggerOnCompletedWithoutReply:
		route = b.OnCompletedWithoutReply
	}
	reply := trigger == dripdrop.TriggerOnReply
	if route == nil {
		if reply {
			_, err := q.SkipPendingRoute(ctx, dbsqlc.SkipPendingRouteParams{TenantKey: tenant, SourceEnrollmentID: enrollment, Reason: ptrTo(RouteSuperseded), Now: now})
			return nil, err
		}
		return nil, nil
	}
	var cat *string
	if category != "" {
		cat = &category
	}
	due := now.Add(time.Duration(route.DelaySeconds) * time.Second)
	row, err := q.UpsertRoute(ctx, dbsqlc.UpsertRouteParams{TenantKey: tenant, ID: dripdrop.NewID(), SourceEnrollmentID: enrollment,
		Trigger: trigger, Category: cat, InboundID: inbound, TargetSequenceID: route.SequenceID, DueAt: due, Now: now, Replace: reply})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil // decided before, and not a reply to re-decide it
	}
	if err != nil {
		return nil, err
	}
	if err := s.audit(ctx, q, tenant, "enrollment", enrollment, "route_planned", SourceEngine, map[string]any{
		"route_id": row.ID, "trigger": trigger, "category": category, "target_sequence_id": route.SequenceID,
		"target_sequence_key": route.SequenceKey, "due_at": row.DueAt}); err != nil {
		return nil, err
	}
	var evs []event
	if ev, err := s.stopEnrollment(ctx, q, tenant, enrollment, dripdrop.StopRouted); err != nil {
		return nil, err
	} else if ev.name != "" {
		evs = append(evs, ev)
	}
	return evs, nil
}

// RouteSweep writes the routes of enrollments completed without a reply
// (on_completed_without_reply, within the last 7 days) and carries out
// every due route; a leader duty, every minute. It returns how many
// contacts it enrolled.
func (s *Store) RouteSweep(ctx context.Context, tenant string) (n int, err error) {
	defer wrapErr(&err, "route sweep")
	now := s.clock.Now()
	done, err := s.q.CompletedWithoutReply(ctx, dbsqlc.CompletedWithoutReplyParams{TenantKey: tenant, Since: now.Add(-completedLookback), Now: now})
	if err != nil {
		return 0, err
	}
	for _, e := range done {
		err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
			at := now
			if e.EndedAt != nil {
				at = *e.EndedAt
			}
			return s.routeOutcome(ctx, q, tenant, e.ID, e.SequenceVersionID, dripdrop.TriggerOnCompletedWithoutReply, "", nil, at)
		})
		if err != nil {
			return 0, err
		}
	}
	return s.RunDueRoutes(ctx, tenant)
}

// RunDueRoutes carries out the tenant's routes that are due and returns
// how many contacts it enrolled.
func (s *Store) RunDueRoutes(ctx context.Context, tenant string) (n int, err error) {
	defer wrapErr(&err, "run routes")
	ids, err := s.q.DueRoutes(ctx, dbsqlc.DueRoutesParams{TenantKey: tenant, Now: s.clock.Now()})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		ok, err := s.runRoute(ctx, tenant, id)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// runRoute carries out one due route in one transaction. As an
// enrollment does, it first recovers the target pool's adapters whose
// rest is over (they are then eligible, and a usable pin).
func (s *Store) runRoute(ctx context.Context, tenant string, id uuid.UUID) (bool, error) {
	if rt, err := s.q.GetRoute(ctx, dbsqlc.GetRouteParams{TenantKey: tenant, ID: id}); err == nil {
		if ver, err := s.q.ActiveVersionOfSequence(ctx, dbsqlc.ActiveVersionOfSequenceParams{TenantKey: tenant, SequenceID: rt.TargetSequenceID}); err == nil {
			ids, err := s.poolAdapterIDs(ctx, tenant, ver.PoolID)
			if err != nil {
				return false, err
			}
			if _, err := s.RecoverDueAdapters(ctx, tenant, ids); err != nil {
				return false, err
			}
		}
	}
	var enrolled bool
	err := s.tx(ctx, func(q *dbsqlc.Queries) ([]event, error) {
		enrolled = false
		rt, err := q.LockRoute(ctx, dbsqlc.LockRouteParams{TenantKey: tenant, ID: id})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil // carried out or re-decided meanwhile
		}
		if err != nil {
			return nil, err
		}
		now := s.clock.Now()
		if rt.DueAt.After(now) {
			return nil, nil
		}
		src, err := q.GetEnrollmentRow(ctx, dbsqlc.GetEnrollmentRowParams{TenantKey: tenant, ID: rt.SourceEnrollmentID})
		if err != nil {
			return nil, err
		}
		skip := func(reason string, result *uuid.UUID) ([]event, error) {
			if err := q.FinishRoute(ctx, dbsqlc.FinishRouteParams{TenantKey: tenant, ID: rt.ID, State: RouteSkipped, Reason: &reason, ResultEnrollmentID: result, Now: now}); err != nil {
				return nil, err
			}
			return nil, s.audit(ctx, q, tenant, "enrollment", src.ID, "route_skipped", SourceEngine, map[string]any{"route_id": rt.ID, "reason": reason, "target_sequence_id": rt.TargetSequenceID})
		}
		ver, err := q.ActiveVersionOfSequence(ctx, dbsqlc.ActiveVersionOfSequenceParams{TenantKey: tenant, SequenceID: rt.TargetSequenceID})
		if errors.Is(err, pgx.ErrNoRows) {
			return skip(RouteNoActiveVersion, nil)
		}
		if err != nil {
			return nil, err
		}
		if live, err := q.GetLiveEnrollmentByEmail(ctx, dbsqlc.GetLiveEnrollmentByEmailParams{TenantKey: tenant, SequenceID: rt.TargetSequenceID, Email: src.Email}); err == nil {
			return skip(RouteAlreadyEnrolled, &live.ID)
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		if sup, err := q.IsSuppressedAddress(ctx, dbsqlc.IsSuppressedAddressParams{TenantKey: tenant, Email: strings.ToLower(src.Email), Domain: dripdrop.EmailDomain(src.Email)}); err != nil {
			return nil, err
		} else if sup {
			return skip(RouteSuppressed, nil)
		}
		first, err := q.GetFirstStep(ctx, dbsqlc.GetFirstStepParams{TenantKey: tenant, SequenceVersionID: ver.ID})
		if err != nil {
			return nil, err
		}
		ref := versionRef{seqID: ver.SequenceID, versionID: ver.ID, poolID: ver.PoolID, seqKey: ver.SequenceKey, firstStep: first}
		p, err := s.lockPicker(ctx, q, tenant, ref, now)
		if err != nil {
			return nil, err
		}
		adapter, kept := uuid.Nil, false
		for _, c := range p.cands {
			if c.row.AdapterID == src.AdapterID && p.pool.DeletedAt == nil && policy.Reassignable(c.member) {
				adapter, kept = src.AdapterID, true
			}
		}
		if !kept {
			var ok bool
			if adapter, ok = p.pickFor(deref(src.RecipientProvider)); !ok {
				return skip(RoutePoolExhausted, nil)
			}
		}
		row, err := q.InsertEnrollment(ctx, dbsqlc.InsertEnrollmentParams{
			TenantKey: tenant, ID: dripdrop.NewID(), SequenceID: ver.SequenceID, SequenceVersionID: ver.ID,
			Email: src.Email, FirstName: src.FirstName, LastName: src.LastName, Company: src.Company, Timezone: src.Timezone,
			Vars: src.Vars, AdapterID: adapter, RecipientProvider: src.RecipientProvider, Now: now,
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return skip(RouteAlreadyEnrolled, nil) // enrolled concurrently
		}
		if err != nil {
			return nil, err
		}
		// Threading: a new thread, unless the target continues the source's
		// (same sender only: a thread never changes sender).
		var refs []string
		var subject *string
		continued := false
		if ver.ContinueThread && adapter == src.AdapterID {
			msgs, err := q.SourceThread(ctx, dbsqlc.SourceThreadParams{TenantKey: tenant, EnrollmentID: src.ID, ThreadNo: &src.ThreadNo})
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				refs = append(refs, deref(m.OutMessageID))
			}
			if len(msgs) > 0 {
				subject, continued = msgs[0].Subject, true
			}
		}
		if err := q.SetEnrollmentRouting(ctx, dbsqlc.SetEnrollmentRoutingParams{TenantKey: tenant, ID: row.ID, RoutedFrom: &src.ID, ThreadRefs: refs, ThreadSubject: subject}); err != nil {
			return nil, err
		}
		if _, err := q.InsertExecution(ctx, dbsqlc.InsertExecutionParams{
			TenantKey: tenant, ID: dripdrop.NewID(), EnrollmentID: row.ID, StepID: first.ID,
			AdapterID: stepSender(first, adapter), ScheduledFor: now.Add(time.Duration(first.DelaySeconds) * time.Second), Now: now,
		}); err != nil {
			return nil, err
		}
		if err := p.saveCounters(ctx, q, tenant, ver.ID); err != nil {
			return nil, err
		}
		if err := q.FinishRoute(ctx, dbsqlc.FinishRouteParams{TenantKey: tenant, ID: rt.ID, State: RouteEnrolled, ResultEnrollmentID: &row.ID, Now: now}); err != nil {
			return nil, err
		}
		data := map[string]any{"route_id": rt.ID, "trigger": rt.Trigger, "category": rt.Category, "from_enrollment_id": src.ID,
			"to_enrollment_id": row.ID, "target_sequence_id": ver.SequenceID, "target_sequence_key": ver.SequenceKey,
			"adapter_id": adapter, "same_adapter": kept, "continue_thread": continued}
		for _, e := range []uuid.UUID{src.ID, row.ID} {
			if err := s.audit(ctx, q, tenant, "enrollment", e, "routed", SourceEngine, data); err != nil {
				return nil, err
			}
		}
		enrolled = true
		s.notes.add(WorkChannel, tenant)
		return []event{evAdapterPinned(tenant, row.ID, ver.ID, adapter),
			evRouted(tenant, src.ID, row.ID, ver.SequenceID, rt.Trigger, deref(rt.Category))}, nil
	})
	return enrolled, err
}

func evRouted(tenant string, from, to, sequence uuid.UUID, trigger, category string) event {
	var c any
	if category != "" {
		c = category
	}
	return event{name: "dripdrop.enrollment.routed", metadata: map[string]any{
		"enrollment_id": from.String(), "new_enrollment_id": to.String(), "sequence_id": sequence.String(),
		"trigger": trigger, "category": c, "tenant_key": tenant,
	}}
}

// enrollmentRoutes lists the routes that left an enrollment or created it.
func (s *Store) enrollmentRoutes(ctx context.Context, tenant string, id uuid.UUID) ([]dripdrop.EnrollmentRoute, error) {
	rows, err := s.q.RoutesInto(ctx, dbsqlc.RoutesIntoParams{TenantKey: tenant, ID: id})
	if err != nil {
		return nil, err
	}
	var out []dripdrop.EnrollmentRoute
	for _, r := range rows {
		out = append(out, dripdrop.EnrollmentRoute{ID: r.ID, SourceEnrollmentID: r.SourceEnrollmentID, Trigger: r.Trigger, Category: r.Category,
			TargetSequenceID: r.TargetSequenceID, DueAt: r.DueAt, State: r.State, Reason: r.Reason, ResultEnrollmentID: r.ResultEnrollmentID})
	}
	return out, nil
}
