package dispatch_test

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
	"github.com/dripdrop/dripdrop/internal/syncbuf"
)

var addressInLog = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+`)

// An adapter error is logged at WARN with ids, reason and codes; the
// server's reply, which names addresses, only with them redacted.
func TestAdapterErrorLogCarriesNoAddress(t *testing.T) {
	t.Parallel()
	w := newWorld(t, dripdrop.AdapterInput{})
	w.enroll("bob@example.com", nil)
	w.sink.SetFaults(func(string, int) smtpsink.Fault {
		return smtpsink.Fault{Kind: smtpsink.Reject, Code: 550, Enhanced: [3]int{5, 7, 26},
			Text: "Unauthenticated email from ada@acme.example.com to bob@example.com is not accepted due to the DMARC policy of acme.example.com"}
	})
	logs := &syncbuf.Buffer{}
	d, err := dispatch.New(dispatch.Config{Store: w.store, Transport: sinkTransport(), Workers: 1, Lease: time.Minute, SendTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.disp = d
	w.run()
	out := logs.String()
	var warn string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "adapter error") {
			warn = line
		}
	}
	if warn == "" {
		t.Fatalf("no adapter-error WARN line; logs:\n%s", out)
	}
	for _, want := range []string{"reason=policy", "smtp_code=550", "enhanced=5.7.26", "adapter=" + w.adapter.ID.String(), "DMARC policy"} {
		if !strings.Contains(warn, want) {
			t.Errorf("the WARN line lacks %q: %s", want, warn)
		}
	}
	if a := addressInLog.FindAllString(out, -1); len(a) > 0 {
		t.Fatalf("the logs carry addresses %q:\n%s", a, out)
	}
}
