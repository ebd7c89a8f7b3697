package dispatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/dispatch/smtpsink"
)

func startSink(t *testing.T) *smtpsink.Sink {
	t.Helper()
	s, err := smtpsink.Start("127.0.0.1:0", smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func delivery(s *smtpsink.Sink, to string) Delivery {
	m := baseMessage()
	m.To = to
	raw, _ := m.Build()
	return Delivery{AdapterID: uuid.New(), Credentials: dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: s.Port(), Username: "u", Password: "p"},
		From: "ada@acme.example.com", To: to, Data: raw}
}

func TestSMTPTransportDeliversAndPools(t *testing.T) {
	t.Parallel()
	s := startSink(t)
	tr := loopbackTransport()
	defer tr.Close()
	d := delivery(s, "bob@example.com")
	for i := 0; i < 3; i++ {
		if _, err := tr.Send(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 3 || msgs[0].To[0] != "bob@example.com" || msgs[0].MessageID == "" {
		t.Fatalf("sink got %d messages: %+v", len(msgs), msgs)
	}
	if n := len(tr.idle[d.AdapterID]); n != 1 {
		t.Fatalf("%d pooled connections, want 1 reused", n)
	}
}

// Idle connections are closed after IdleTimeout: an adapter that stopped
// sending holds no socket.
func TestSMTPTransportReapsIdleConnections(t *testing.T) {
	// Not parallel: its 20 ms idle timeout must not pass between the last send and the check that something is pooled, which a loaded machine cannot promise.
	s := startSink(t)
	tr := loopbackTransport()
	tr.IdleTimeout = 20 * time.Millisecond
	defer tr.Close()
	for i := 0; i < 3; i++ {
		d := delivery(s, "bob@example.com") // a new adapter each time
		if _, err := tr.Send(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.Idle(); n == 0 {
		t.Fatal("nothing pooled after sending")
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.Idle() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections never reaped", tr.Idle())
		}
		time.Sleep(5 * time.Millisecond) // polling for the reaper's effect
	}
}

// A fleet of adapters each sending now and then keeps at most
// MaxIdleTotal idle sockets, however many adapters there are.
func TestSMTPTransportCapsIdleConnections(t *testing.T) {
	t.Parallel()
	s := startSink(t)
	tr := loopbackTransport()
	tr.MaxIdleTotal = 3
	defer tr.Close()
	for i := 0; i < 10; i++ {
		d := delivery(s, "bob@example.com") // a new adapter each time
		if _, err := tr.Send(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.Idle(); n != 3 {
		t.Fatalf("%d idle connections after 10 adapters sent, want the cap of 3", n)
	}
	if got := len(s.Messages()); got != 10 {
		t.Fatalf("sink got %d messages, want 10", got)
	}
}

func TestSMTPTransportClassifiesReplies(t *testing.T) {
	t.Parallel()
	s := startSink(t)
	tr := loopbackTransport()
	defer tr.Close()
	s.SetFaults(func(rcpt string, attempt int) smtpsink.Fault {
		switch rcpt {
		case "temp@example.com":
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 451, Enhanced: [3]int{4, 3, 0}, Text: "try later"}
		case "gone@example.com":
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 550, Enhanced: [3]int{5, 1, 1}, Text: "no such user"}
		case "policy@example.com":
			return smtpsink.Fault{Kind: smtpsink.Reject, Code: 554, Enhanced: [3]int{5, 7, 1}, Text: "rejected"}
		case "drop@example.com":
			return smtpsink.Fault{Kind: smtpsink.Drop}
		case "stall@example.com":
			return smtpsink.Fault{Kind: smtpsink.Stall, Delay: 2 * time.Second}
		}
		return smtpsink.Fault{}
	})
	cases := []struct {
		to        string
		temporary bool
		bounce    bool
	}{
		{"temp@example.com", true, false},
		{"gone@example.com", false, true},
		{"policy@example.com", false, false},
		{"drop@example.com", true, false},
		{"stall@example.com", true, false},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := tr.Send(ctx, delivery(s, c.to))
		cancel()
		var se *SendError
		if !errors.As(err, &se) {
			t.Fatalf("%s: err = %v, want *SendError", c.to, err)
		}
		if se.Temporary != c.temporary || se.Bounce() != c.bounce {
			t.Errorf("%s: temporary=%v bounce=%v (%v)", c.to, se.Temporary, se.Bounce(), se)
		}
	}
	// After faults the transport still delivers.
	if _, err := tr.Send(context.Background(), delivery(s, "ok@example.com")); err != nil {
		t.Fatal(err)
	}
}

// An adapter with more sends at once than MaxIdle keeps a connection for
// each of them: five rounds of 8 concurrent sends dial (and authenticate)
// 8 connections, not 8 and then 4 more every round.
func TestSMTPTransportKeepsAConnectionPerConcurrentSend(t *testing.T) {
	t.Parallel()
	s := startSink(t)
	tr := loopbackTransport()
	defer tr.Close()
	d := delivery(s, "bob@example.com")
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := tr.Send(context.Background(), d); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	if got := len(s.Messages()); got != 40 {
		t.Fatalf("sink got %d messages, want 40", got)
	}
	if n := s.AuthAttempts(); n > 8 {
		t.Fatalf("%d connections authenticated for 5 rounds of 8 concurrent sends, want at most 8", n)
	}
	if n := tr.Idle(); n != 8 {
		t.Fatalf("%d idle connections after the rounds, want 8", n)
	}
}
