package dispatch

import "testing"

// Whose is smtpreply.Whose (whose table tests are there): the reply's text
// is what moves a rejection at RCPT from the recipient to the adapter.
func TestWhose(t *testing.T) {
	t.Parallel()
	cases := []struct {
		stage    string
		code     int
		enhanced [3]int
		text     string
		timedOut bool
		reason   string // "" = the recipient's
	}{
		{"connect", 0, [3]int{}, "", false, "connection"},
		{"tls", 0, [3]int{}, "x509: certificate signed by unknown authority", false, "tls"},
		{"mail", 553, [3]int{5, 1, 8}, "", false, "sender_rejected"},
		{"rcpt", 550, [3]int{5, 1, 1}, "<gone@example.com>: Recipient address rejected: User unknown", false, ""},
		{"rcpt", 553, [3]int{5, 7, 1}, "<other@example.com>: Sender address rejected: not owned by user bob", false, "sender_rejected"},
		{"rcpt", 554, [3]int{5, 7, 1}, "<bob@elsewhere.example>: Relay access denied", false, "policy"},
		{"rcpt", 550, [3]int{5, 7, 1}, "<bob@example.com>: Recipient address rejected: Access denied", false, ""},
		{"rcpt", 0, [3]int{}, "", true, "stalled"},
		{"after_data", 0, [3]int{}, "", true, ""},
	}
	for _, c := range cases {
		reason, adapter := Whose(Stage(c.stage), c.code, c.enhanced, c.text, c.timedOut)
		if reason != c.reason || adapter != (c.reason != "") {
			t.Errorf("Whose(%s, %d, %v, %q, %v) = %q %v, want %q", c.stage, c.code, c.enhanced, c.text, c.timedOut, reason, adapter, c.reason)
		}
	}
}
