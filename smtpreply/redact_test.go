package smtpreply

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"<other@example.com>: Sender address rejected: not owned by user bob", "<<address>>: Sender address rejected: not owned by user bob"},
		{"SendAsDenied; ada@acme.example not allowed to send as o.ther+tag@acme.example", "SendAsDenied; <address> not allowed to send as <address>"},
		{"Verification failed for <ada@acme.example>\nSender verify failed", "Verification failed for <<address>>\nSender verify failed"},
		{"no address here", "no address here"},
		{"a lone @ stays", "a lone @ stays"},
		{"user@", "<address>"},
		{"@domain.example", "<address>"},
		{"bob@[192.0.2.7] literal", "<address> literal"},
		{"", ""},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("x", 301)
	if got := Redact(long); len(got) != 300+len("…") {
		t.Errorf("a 301-byte text is redacted to %d bytes, want capped at 300 and an ellipsis", len(got))
	}
	if got := Redact(strings.Repeat("x", 300)); len(got) != 300 {
		t.Errorf("a 300-byte text is cut to %d bytes", len(got))
	}
}
