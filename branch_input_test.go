package dripdrop

import (
	"errors"
	"testing"

	"github.com/google/uuid"
)

func TestBranchesValidation(t *testing.T) {
	t.Parallel()
	pool := uuid.New()
	s := func(v string) *string { return &v }
	d := func(v int64) *int64 { return &v }
	steps := []StepInput{{Subject: s("Hi"), BodyText: s("b")}}
	for _, c := range []struct {
		name  string
		in    BranchesInput
		code  string
		field string
	}{
		{"reply categories", BranchesInput{OnReply: map[string]RouteInput{"not_now": {SequenceKey: s("nurture"), DelaySeconds: d(2592000)}, "referral": {SequenceKey: s("refs")}}}, "", ""},
		{"every trigger", BranchesInput{OnAutoReply: &RouteInput{SequenceKey: s("x")}, OnCompletedWithoutReply: &RouteInput{SequenceKey: s("y"), DelaySeconds: d(0)}}, "", ""},
		{"unknown category", BranchesInput{OnReply: map[string]RouteInput{"angry": {SequenceKey: s("x")}}}, ECodeInvalidValue, "branches.on_reply.angry"},
		{"missing target", BranchesInput{OnReply: map[string]RouteInput{"not_now": {}}}, ECodeRequired, "branches.on_reply.not_now.sequence_key"},
		{"bad key", BranchesInput{OnAutoReply: &RouteInput{SequenceKey: s("no spaces")}}, ECodeInvalidValue, "branches.on_auto_reply.sequence_key"},
		{"negative delay", BranchesInput{OnCompletedWithoutReply: &RouteInput{SequenceKey: s("x"), DelaySeconds: d(-1)}}, ECodeOutOfRange, "branches.on_completed_without_reply.delay_seconds"},
		{"delay over a year", BranchesInput{OnReply: map[string]RouteInput{"question": {SequenceKey: s("x"), DelaySeconds: d(MaxBranchDelaySeconds + 1)}}}, ECodeOutOfRange, "branches.on_reply.question.delay_seconds"},
		{"a year exactly", BranchesInput{OnReply: map[string]RouteInput{"question": {SequenceKey: s("x"), DelaySeconds: d(MaxBranchDelaySeconds)}}}, "", ""},
	} {
		in := c.in
		v, err := VersionInput{PoolID: &pool, Steps: steps, Branches: &in}.Apply(nil)
		if c.code == "" {
			if err != nil || v.Branches.Empty() {
				t.Errorf("%s: %v %+v", c.name, err, v.Branches)
			}
			continue
		}
		var de *Error
		if !errors.As(err, &de) || de.Code != c.code || de.Field != c.field {
			t.Errorf("%s: err %v, want %s on %s", c.name, err, c.code, c.field)
		}
	}
	// Refs lists the routes in a fixed order with their fields.
	b, _ := BranchesInput{OnReply: map[string]RouteInput{"referral": {SequenceKey: s("r")}, "not_now": {SequenceKey: s("n")}},
		OnAutoReply: &RouteInput{SequenceKey: s("a")}}.apply()
	refs := b.Refs()
	if len(refs) != 3 || refs[0].Field != "branches.on_reply.not_now" || refs[1].Field != "branches.on_reply.referral" || refs[2].Trigger != TriggerOnAutoReply {
		t.Fatalf("refs %+v", refs)
	}
	// Absent branches keep the current ones; {} removes them.
	cur := SequenceVersion{Mode: "outbound", PoolID: pool, SendWindow: DefaultSendWindow(), Branches: b}
	if v, _ := (VersionInput{}).Apply(&cur); v.Branches.Empty() {
		t.Fatal("absent branches dropped the current ones")
	}
	if v, _ := (VersionInput{Branches: &BranchesInput{}}).Apply(&cur); !v.Branches.Empty() {
		t.Fatal("{} kept the branches")
	}
}
