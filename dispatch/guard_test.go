package dispatch

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/dripdrop/dripdrop/internal/netguard"
)

// loopbackTransport is a transport that may reach the test sink on loopback.
func loopbackTransport() *SMTPTransport {
	tr := NewSMTPTransport()
	tr.Guard.AllowPrivate = true
	return tr
}

// The transport refuses private destinations at dial time unless allowed,
// including a name that resolves to loopback (the DNS-rebinding case): a
// refused dial never reaches the sink.
func TestSMTPTransportRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	s := startSink(t)
	tr := NewSMTPTransport()
	defer tr.Close()
	for _, host := range []string{"127.0.0.1", "localhost", "::ffff:127.0.0.1"} {
		d := delivery(s, "bob@example.com")
		d.Credentials.Host = host
		_, err := tr.Send(context.Background(), d)
		var se *SendError
		if !errors.As(err, &se) || !strings.Contains(se.Message, netguard.ErrForbiddenTarget.Error()) {
			t.Errorf("send to %s: %v, want a forbidden-target failure", host, err)
		}
	}
	if n := len(s.Messages()); n != 0 {
		t.Fatalf("sink got %d messages through the guard", n)
	}
	if _, err := loopbackTransport().Send(context.Background(), delivery(s, "bob@example.com")); err != nil {
		t.Fatalf("AllowPrivate: %v", err)
	}
}

// Verify, given the guard's dialer as serve wires it, refuses the same
// destinations at the connect stage.
func TestVerifyRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	s := startSink(t)
	d := delivery(s, "bob@example.com")
	d.Credentials.Host = "localhost"
	res := Verify(context.Background(), d.Credentials, d.From, netguard.Guard{}.Dialer(net.Dialer{}), nil)
	if res.FailedStage != "connect" || len(res.Stages) != 1 || !strings.Contains(res.Stages[0].Error, netguard.ErrForbiddenTarget.Error()) {
		t.Fatalf("verify of a loopback target: %+v", res)
	}
	if res := Verify(context.Background(), d.Credentials, d.From, netguard.Guard{AllowPrivate: true}.Dialer(net.Dialer{}), nil); res.FailedStage != "" {
		t.Fatalf("verify with AllowPrivate: %+v", res)
	}
}
