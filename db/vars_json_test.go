package db

import (
	"encoding/json"
	"maps"
	"testing"
	"unicode/utf8"
)

// TestAppendVarsJSON: a batch's vars go to PostgreSQL as JSON text written
// without encoding/json; the text must be valid JSON that decodes to the
// same object json.Marshal's would (the stored jsonb is then the same).
func TestAppendVarsJSON(t *testing.T) {
	t.Parallel()
	for _, vars := range []map[string]string{
		nil,
		{},
		{"plan": "pro"},
		{"b": "2", "a": "1", "c": ""},
		{"q": `say "hi" \ back\slash`, "ctl": "tab\tnew\nline\rnul\x00bell\x07esc\x1f"},
		{"html": "<a href='x'>&amp;</a>", "uni": "Zoë — 東京 🚀", "sep": "\u2028\u2029"},
		{"bad": "ok\xffbad\xc3(", "del": "\x7f"},
	} {
		got := appendVarsJSON(nil, vars)
		if !json.Valid(got) {
			t.Fatalf("%q: not valid JSON: %s", vars, got)
		}
		want, _ := json.Marshal(vars)
		if len(vars) == 0 {
			want = []byte("{}")
		}
		var a, b map[string]string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(want, &b)
		if !maps.Equal(a, b) {
			t.Fatalf("%q: decodes to %q, json.Marshal's to %q", vars, a, b)
		}
	}
}

// FuzzAppendVarsJSON: for any key and value, the text is valid JSON and
// decodes as json.Marshal's does.
func FuzzAppendVarsJSON(f *testing.F) {
	f.Add("plan", "pro")
	f.Add("q", "\"\\\x00\x1f\u2028")
	f.Add("k", "\xff\xfe")
	f.Fuzz(func(t *testing.T, k, v string) {
		vars := map[string]string{k: v, "z": v + k}
		got := appendVarsJSON(nil, vars)
		if !json.Valid(got) {
			t.Fatalf("not valid JSON: %q", got)
		}
		want, _ := json.Marshal(vars)
		var a, b map[string]string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(want, &b)
		if !maps.Equal(a, b) {
			t.Fatalf("decodes to %q, json.Marshal's to %q", a, b)
		}
		if utf8.ValidString(k) && utf8.ValidString(v) && a[k] != v {
			t.Fatalf("value %q came back as %q", v, a[k])
		}
	})
}
