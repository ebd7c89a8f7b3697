package dripdrop

import (
	"fmt"
	"slices"
	"sort"

	"github.com/google/uuid"
)

// Reply categories (docs/sequences.md#reply-categories); the lexicon that
// assigns them lives in package ingest.
var ReplyCategories = []string{"interested", "not_interested", "not_now", "referral", "wrong_person", "question", "uncategorized"}

// Branch triggers of a version (docs/sequences.md#branches).
const (
	TriggerOnReply                 = "on_reply"
	TriggerOnAutoReply             = "on_auto_reply"
	TriggerOnCompletedWithoutReply = "on_completed_without_reply"
)

// StopRouted is the stop reason of an enrollment a branch moved to another
// sequence while it was still live (an auto-reply's branch, or a reply's
// with stop_on_reply off).
const StopRouted = "routed"

// MaxBranchDelaySeconds is the longest delay of a branch (365 days).
const MaxBranchDelaySeconds = 365 * 24 * 3600

// BranchesInput routes a version's outcomes to other sequences. A present
// branches object replaces the version's branches ({} removes them).
type BranchesInput struct {
	// OnReply maps a reply category to a route.
	OnReply                 map[string]RouteInput `json:"on_reply"`
	OnAutoReply             *RouteInput           `json:"on_auto_reply"`
	OnCompletedWithoutReply *RouteInput           `json:"on_completed_without_reply"`
}

// RouteInput names the target sequence and the delay before the contact is
// enrolled there.
type RouteInput struct {
	SequenceKey  *string `json:"sequence_key"`
	DelaySeconds *int64  `json:"delay_seconds"`
}

// Branches are a version's routes; SequenceID is resolved by the store.
type Branches struct {
	OnReply                 map[string]Route `json:"on_reply,omitempty"`
	OnAutoReply             *Route           `json:"on_auto_reply,omitempty"`
	OnCompletedWithoutReply *Route           `json:"on_completed_without_reply,omitempty"`
}

// Route is one branch: enroll the contact into SequenceKey after
// DelaySeconds.
type Route struct {
	SequenceKey  string    `json:"sequence_key"`
	SequenceID   uuid.UUID `json:"sequence_id"`
	DelaySeconds int64     `json:"delay_seconds"`
}

// BranchRef is one route of a version with the field that authored it.
type BranchRef struct {
	Field, Trigger, Category string
	Route                    *Route
}

// Refs lists the routes in a fixed order (on_reply by category name,
// then on_auto_reply, then on_completed_without_reply).
func (b Branches) Refs() []BranchRef {
	var out []BranchRef
	cats := make([]string, 0, len(b.OnReply))
	for c := range b.OnReply {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		r := b.OnReply[c]
		out = append(out, BranchRef{Field: "branches.on_reply." + c, Trigger: TriggerOnReply, Category: c, Route: &r})
	}
	if b.OnAutoReply != nil {
		out = append(out, BranchRef{Field: "branches.on_auto_reply", Trigger: TriggerOnAutoReply, Route: b.OnAutoReply})
	}
	if b.OnCompletedWithoutReply != nil {
		out = append(out, BranchRef{Field: "branches.on_completed_without_reply", Trigger: TriggerOnCompletedWithoutReply, Route: b.OnCompletedWithoutReply})
	}
	return out
}

// Empty reports whether there are no routes.
func (b Branches) Empty() bool {
	return len(b.OnReply) == 0 && b.OnAutoReply == nil && b.OnCompletedWithoutReply == nil
}

// apply validates the branches (targets are resolved, and cycles refused,
// by the store).
func (in BranchesInput) apply() (Branches, error) {
	var out Branches
	route := func(field string, r RouteInput) (Route, error) {
		if r.SequenceKey == nil {
			return Route{}, Errorf(ECodeRequired, field+".sequence_key", "sequence_key is required")
		}
		if !keyPattern.MatchString(*r.SequenceKey) {
			return Route{}, Errorf(ECodeInvalidValue, field+".sequence_key", "sequence_key must be a sequence key")
		}
		rt := Route{SequenceKey: *r.SequenceKey}
		if r.DelaySeconds != nil {
			if *r.DelaySeconds < 0 || *r.DelaySeconds > MaxBranchDelaySeconds {
				return Route{}, Errorf(ECodeOutOfRange, field+".delay_seconds", "delay_seconds must be between 0 and %d", MaxBranchDelaySeconds)
			}
			rt.DelaySeconds = *r.DelaySeconds
		}
		return rt, nil
	}
	if len(in.OnReply) > 0 {
		out.OnReply = map[string]Route{}
		cats := make([]string, 0, len(in.OnReply))
		for c := range in.OnReply {
			cats = append(cats, c)
		}
		sort.Strings(cats)
		for _, c := range cats {
			field := "branches.on_reply." + c
			if !slices.Contains(ReplyCategories, c) {
				return out, Errorf(ECodeInvalidValue, field, "on_reply keys are reply categories (%v)", ReplyCategories)
			}
			r, err := route(field, in.OnReply[c])
			if err != nil {
				return out, err
			}
			out.OnReply[c] = r
		}
	}
	for _, x := range []struct {
		field string
		in    *RouteInput
		out   **Route
	}{{"branches.on_auto_reply", in.OnAutoReply, &out.OnAutoReply}, {"branches.on_completed_without_reply", in.OnCompletedWithoutReply, &out.OnCompletedWithoutReply}} {
		if x.in == nil {
			continue
		}
		r, err := route(x.field, *x.in)
		if err != nil {
			return out, err
		}
		*x.out = &r
	}
	return out, nil
}

// BranchCycleError is the 422 branch_cycle of a version whose routes lead
// back to its own sequence.
func BranchCycleError(field string, path []string) error {
	return &Error{Code: ECodeBranchCycle, Field: field, Message: fmt.Sprintf("the branch leads back to this sequence: %v", path),
		Extra: map[string]any{"path": path}}
}
