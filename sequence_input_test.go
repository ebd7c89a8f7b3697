package dripdrop

import (
	"errors"
	"testing"

	"github.com/google/uuid"
)

func TestVersionInputListUnsubscribe(t *testing.T) {
	t.Parallel()
	pool := uuid.New()
	subject, body := "s", "b"
	steps := []StepInput{{Subject: &subject, BodyText: &body}}
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		name string
		in   *string
		cur  string // the current version's setting ("" = create)
		want string // "" = refused
	}{
		{"absent on create", nil, "", "one_click"},
		{"one_click", str("one_click"), "", "one_click"},
		{"mailto", str("mailto"), "", "mailto"},
		{"off", str("off"), "", "off"},
		{"absent on update keeps", nil, "off", "off"},
		{"update changes", str("mailto"), "off", "mailto"},
		{"hyphenated", str("one-click"), "", ""},
		{"upper case", str("OFF"), "", ""},
		{"empty", str(""), "", ""},
		{"unknown on update", str("never"), "mailto", ""},
	} {
		in := VersionInput{ListUnsubscribe: c.in}
		var cur *SequenceVersion
		if c.cur == "" {
			in.PoolID, in.Steps = &pool, steps
		} else {
			cur = &SequenceVersion{Mode: "outbound", PoolID: pool, SendWindow: DefaultSendWindow(), ListUnsubscribe: c.cur}
		}
		v, err := in.Apply(cur)
		if c.want == "" {
			var de *Error
			if !errors.As(err, &de) || de.Code != ECodeInvalidValue || de.Field != "list_unsubscribe" {
				t.Errorf("%s: err %v, want invalid_value on list_unsubscribe", c.name, err)
			}
			continue
		}
		if err != nil || v.ListUnsubscribe != c.want {
			t.Errorf("%s: %q, %v; want %q", c.name, v.ListUnsubscribe, err, c.want)
		}
	}
}
