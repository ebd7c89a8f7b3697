package dripdrop

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestStepVariantsValidation(t *testing.T) {
	t.Parallel()
	pool := uuid.New()
	s := func(v string) *string { return &v }
	n := func(v int) *int { return &v }
	f := func(v float64) *float64 { return &v }
	two := func() []VariantInput {
		return []VariantInput{{Subject: s("Quick question")}, {Subject: s("{An idea|A thought} for {{company}}")}}
	}
	for _, c := range []struct {
		name  string
		step  StepInput
		code  string // "" = accepted
		field string
	}{
		{"two subject variants", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two()}, "", ""},
		{"one variant is too few", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two()[:1]}, ECodeOutOfRange, "steps[0].variants"},
		{"six are too many", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: append(append(two(), two()...), two()...)}, ECodeOutOfRange, "steps[0].variants"},
		{"an empty array is none", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{}}, "", ""},
		{"weight zero", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Subject: s("a"), Weight: n(0)}, {Subject: s("b")}}}, ECodeOutOfRange, "steps[0].variants[0].weight"},
		{"negative weight", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Subject: s("a")}, {Subject: s("b"), Weight: n(-2)}}}, ECodeOutOfRange, "steps[0].variants[1].weight"},
		{"weight above the cap", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Subject: s("a")}, {Subject: s("b"), Weight: n(1001)}}}, ECodeOutOfRange, "steps[0].variants[1].weight"},
		{"an empty variant", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Subject: s("a")}, {Weight: n(2)}}}, ECodeRequired, "steps[0].variants[1]"},
		{"unbalanced spintax in a variant body", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{BodyText: s("{Hello|Hi")}, {BodyText: s("ok")}}}, ECodeInvalidSpintax, "steps[0].variants[0].body_text"},
		{"spintax off: braces literal", StepInput{Subject: s("Hi"), BodyText: s("b"), Spintax: new(bool), Variants: []VariantInput{{BodyText: s("{Hello|Hi")}, {BodyText: s("ok")}}}, "", ""},
		{"a bad variable in a variant subject", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Subject: s("{{first name}}")}, {Subject: s("ok")}}}, ECodeInvalidSpintax, "steps[0].variants[0].subject"},
		{"duplicate keys", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Key: s("x"), Subject: s("a")}, {Key: s("x"), Subject: s("b")}}}, ECodeAlreadyExists, "steps[0].variants[1].key"},
		{"a subject with a line break", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: []VariantInput{{Subject: s("a\r\nBcc: x@y")}, {Subject: s("b")}}}, ECodeInvalidCharacter, "steps[0].variants[0].subject"},
		{"bodies only in the variants", StepInput{Subject: s("Hi"), Variants: []VariantInput{{BodyText: s("one")}, {BodyText: s("two")}}}, "", ""},
		{"a body missing on the step and in a variant", StepInput{Subject: s("Hi"), Variants: []VariantInput{{BodyText: s("one")}, {Subject: s("two")}}}, ECodeRequired, "steps[0].body_text"},
		{"subjects only in the variants (first step)", StepInput{BodyText: s("b"), Variants: two()}, "", ""},
		{"first step without any subject", StepInput{BodyText: s("b"), Variants: []VariantInput{{BodyText: s("one")}, {Subject: s("two")}}}, ECodeRequired, "steps[0].subject"},
		{"auto_winner defaults", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two(), AutoWinner: &AutoWinnerInput{}}, "", ""},
		{"auto_winner without variants", StepInput{Subject: s("Hi"), BodyText: s("b"), AutoWinner: &AutoWinnerInput{}}, ECodeInvalidValue, "steps[0].auto_winner"},
		{"auto_winner on opens", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two(), AutoWinner: &AutoWinnerInput{Metric: s("open_rate")}}, ECodeInvalidValue, "steps[0].auto_winner.metric"},
		{"auto_winner min_sent 0", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two(), AutoWinner: &AutoWinnerInput{MinSent: n(0)}}, ECodeOutOfRange, "steps[0].auto_winner.min_sent"},
		{"auto_winner confidence 1", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two(), AutoWinner: &AutoWinnerInput{Confidence: f(1)}}, ECodeOutOfRange, "steps[0].auto_winner.confidence"},
		{"auto_winner positive", StepInput{Subject: s("Hi"), BodyText: s("b"), Variants: two(), AutoWinner: &AutoWinnerInput{Metric: s("positive_reply_rate"), MinSent: n(50), Confidence: f(0.9)}}, "", ""},
	} {
		_, err := VersionInput{PoolID: &pool, Steps: []StepInput{c.step}}.Apply(nil)
		if c.code == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		var de *Error
		if !errors.As(err, &de) || de.Code != c.code || de.Field != c.field {
			t.Errorf("%s: err %v, want %s on %s", c.name, err, c.code, c.field)
		}
	}
}

func TestStepVariantsDefaults(t *testing.T) {
	t.Parallel()
	pool := uuid.New()
	s := func(v string) *string { return &v }
	w := 3
	v, err := VersionInput{PoolID: &pool, Steps: []StepInput{{Subject: s("Hi"), BodyText: s("b"),
		Variants:   []VariantInput{{Subject: s("a"), Weight: &w}, {Key: s("short"), BodyText: s("b2")}, {BodyHTML: s("<p>x</p>")}},
		AutoWinner: &AutoWinnerInput{}}}}.Apply(nil)
	if err != nil {
		t.Fatal(err)
	}
	st := v.Steps[0]
	var keys []string
	for _, x := range st.Variants {
		keys = append(keys, x.Key)
	}
	if strings.Join(keys, ",") != "A,short,C" || st.Weights()[0] != 3 || st.Weights()[1] != 1 {
		t.Fatalf("keys %v weights %v", keys, st.Weights())
	}
	if st.Variants[0].BodyText != nil || st.Variants[1].Subject != nil {
		t.Fatal("a variant took a field it does not set")
	}
	if aw := st.AutoWinner; aw == nil || aw.Metric != MetricReplyRate || aw.MinSent != 100 || aw.Confidence != 0.95 {
		t.Fatalf("auto_winner defaults: %+v", st.AutoWinner)
	}
	if st.VariantIndex("short") != 1 || st.VariantIndex("Z") != -1 {
		t.Fatal("VariantIndex")
	}
}
