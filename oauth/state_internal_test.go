package oauth

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/vault"
)

// FuzzOpenState: only a state this engine sealed opens, and it opens to
// exactly what was sealed; anything else (truncated, altered, another
// key's) is refused.
func FuzzOpenState(f *testing.F) {
	box, _ := vault.ParseKey(vault.GenerateKey())
	other, _ := vault.ParseKey(vault.GenerateKey())
	s := &Source{cfg: Config{Box: box}}
	claims := stateClaims{Tenant: "acme", Adapter: uuid.MustParse("01a2f000-0000-7000-8000-000000000001"), ID: uuid.MustParse("01a2f000-0000-7000-8000-000000000002"),
		Expires: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).Unix()}
	valid := s.sealState(claims)
	foreign := (&Source{cfg: Config{Box: other}}).sealState(claims)
	for _, seed := range []string{valid, foreign, "", "AAAA", valid[:len(valid)-1], valid + "A", "x" + valid[1:], "%%%"} {
		f.Add(seed)
	}
	if _, ok := s.openState(foreign); ok {
		f.Fatal("a state sealed under another key opened")
	}
	f.Fuzz(func(t *testing.T, state string) {
		got, ok := s.openState(state)
		if ok && got != claims {
			t.Fatalf("state %q opened to %+v, not what was sealed", state, got)
		}
	})
}
