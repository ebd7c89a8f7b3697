package dispatch_test

import (
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
)

// A provider cap holds sends to that provider at the cap for the adapter's
// day, lets other providers through, and a temporary failure gives its
// place back.
func TestProviderCapThroughTheDispatcher(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{ProviderCaps: map[string]int{"microsoft": 1}}, step("only", "Hi", "Body", 0))
	w.sink.SetFaults(func(rcpt string, attempt int) smtpsink.Fault {
		if rcpt == "ann@outlook.com" && attempt == 1 {
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 451, Enhanced: [3]int{4, 7, 1}, Text: "greylisted"}
		}
		return smtpsink.Fault{}
	})
	usage := func() int32 {
		rows := dbtest.Query(t, w.url, `SELECT coalesce(sum(sent), 0)::int FROM adapter_provider_usage WHERE tenant_key = $1 AND provider = 'microsoft'`, w.tenant)
		return rows[0][0].(int32)
	}
	ann := w.enroll("ann@outlook.com", nil)
	w.run()
	if x := w.enrollment(ann.ID).Executions[0]; x.State != "scheduled" || x.Attempt != 1 || usage() != 0 {
		t.Fatalf("after a 451: %+v, microsoft usage %d (want the place given back)", x, usage())
	}
	w.clock.Add(31 * time.Second)
	bob := w.enroll("bob@outlook.com", nil)
	gail := w.enroll("gail@gmail.com", nil)
	w.run()
	sentTo := map[string]bool{}
	for _, m := range w.sink.Messages() {
		sentTo[m.To[0]] = true
	}
	if !sentTo["ann@outlook.com"] || sentTo["bob@outlook.com"] || !sentTo["gail@gmail.com"] || usage() != 1 {
		t.Fatalf("sent to %v, microsoft usage %d: want ann and gail, bob held by the cap", sentTo, usage())
	}
	x := w.enrollment(bob.ID).Executions[0]
	if x.State != "scheduled" || x.DeferReason == nil || *x.DeferReason != "provider_cap" {
		t.Fatalf("bob: %+v", x)
	}
	if w.enrollment(gail.ID).Executions[0].State != "sent" {
		t.Fatal("gail was not sent")
	}
}
