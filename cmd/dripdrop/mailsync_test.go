package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDevDemoReplyStopsASequence: in `dripdrop dev` each demo adapter has a
// mailbox on the local in-memory IMAP server; the demo prospect's reply
// lands there and mailbox sync stops her sequence, which a newcomer sees
// without doing anything. The sync's metrics are on /metrics.
func TestDevDemoReplyStopsASequence(t *testing.T) {
	t.Parallel()
	d := startDev(t, t.TempDir(), "mailsync-admin")
	state := func() (string, string) {
		req, _ := http.NewRequest("GET", d.base+"/v1/enrollments?email="+demoReplier, nil)
		req.Header.Set("Authorization", "Bearer "+d.key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Data []struct {
				State      string  `json:"state"`
				StopReason *string `json:"stop_reason"`
			} `json:"data"`
		}
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil || len(body.Data) != 1 {
			t.Fatalf("enrollments of %s: %v %+v", demoReplier, err, body)
		}
		r := ""
		if body.Data[0].StopReason != nil {
			r = *body.Data[0].StopReason
		}
		return body.Data[0].State, r
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, r := state()
		if s == "stopped" {
			if r != "replied" {
				t.Fatalf("stopped with reason %q, want replied", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo reply did not stop %s's sequence within 60 s (state %s)", demoReplier, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, text := scrape(t, d.base)
	for _, want := range []string{`dripdrop_mailbox_messages_total{result="applied"} 1`, `dripdrop_mailbox_owned 2`, `dripdrop_mailbox_connections 2`,
		`dripdrop_mailbox_syncs_total{outcome="error"} 0`, `dripdrop_mailbox_sync_duration_seconds_count`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `dripdrop_mailbox_syncs_total{outcome="ok"} 0`) {
		t.Error("no successful sync counted")
	}
}
