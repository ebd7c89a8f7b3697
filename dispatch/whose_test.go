package dispatch

import "testing"

func TestWhose(t *testing.T) {
	cases := []struct {
		stage    string
		code     int
		enhanced [3]int
		timedOut bool
		reason   string // "" = the recipient's
	}{
		{StageConnect, 0, [3]int{}, false, "connection"},
		{StageConnect, 0, [3]int{}, true, "connection"},
		{StageTLS, 454, [3]int{4, 7, 0}, false, "tls"},
		{StageHello, 554, [3]int{5, 7, 1}, false, "connection"},
		{StageAuth, 535, [3]int{5, 7, 8}, false, "auth"},
		{StageAuth, 530, [3]int{5, 7, 0}, false, "auth"},
		{StageAuth, 534, [3]int{5, 7, 9}, false, "auth"},
		{StageMail, 421, [3]int{4, 7, 0}, false, "server_unavailable"},
		{StageMail, 550, [3]int{5, 7, 1}, false, "policy"},
		{StageMail, 451, [3]int{4, 7, 1}, false, "policy"},
		{StageMail, 553, [3]int{5, 1, 8}, false, "sender_rejected"},
		{StageMail, 0, [3]int{}, true, "stalled"},
		{StageMail, 0, [3]int{}, false, "connection"},
		{StageRcpt, 550, [3]int{5, 1, 1}, false, ""},
		{StageRcpt, 550, [3]int{5, 2, 1}, false, ""},
		{StageRcpt, 452, [3]int{4, 2, 2}, false, ""},
		{StageRcpt, 550, [3]int{5, 7, 1}, false, ""},
		{StageRcpt, 421, [3]int{4, 4, 2}, false, "server_unavailable"},
		{StageRcpt, 0, [3]int{}, true, "stalled"},
		{StageData, 554, [3]int{5, 6, 0}, false, ""},
		{StageAfterData, 550, [3]int{5, 1, 1}, false, ""},
		{StageAfterData, 0, [3]int{}, true, ""}, // may have arrived: a normal retry, same Message-ID
		{StageAfterData, 421, [3]int{4, 3, 0}, false, "server_unavailable"},
	}
	for _, c := range cases {
		reason, adapter := Whose(c.stage, c.code, c.enhanced, c.timedOut)
		if reason != c.reason || adapter != (c.reason != "") {
			t.Errorf("Whose(%s, %d, %v, %v) = %q %v, want %q", c.stage, c.code, c.enhanced, c.timedOut, reason, adapter, c.reason)
		}
	}
}
