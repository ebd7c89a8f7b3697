package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
	"github.com/dripdrop/dripdrop/vault"
)

// hookReceiver holds every request until released (so the engine is killed
// with deliveries in flight), then answers 200 to those whose signature an
// independent HMAC check accepts.
type hookReceiver struct {
	secret   string
	release  chan struct{}
	mu       sync.Mutex
	arrivals map[string]int // webhook-id → requests
	ok       map[string]int // webhook-id → 200 answers
	bad      int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.secret, "whsec_"))
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, r.Header.Get("webhook-timestamp"), body)
	sig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	h.mu.Lock()
	h.arrivals[id]++
	if r.Header.Get("webhook-signature") != sig || !strings.Contains(string(body), `"id":`+id+",") {
		h.bad++
	}
	h.mu.Unlock()
	select {
	case <-h.release:
	case <-r.Context().Done(): // the engine died with this request in flight
		return
	}
	h.mu.Lock()
	h.ok[id]++
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) counts() (arrived, delivered int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.arrivals), len(h.ok)
}

// TestWebhookWorkerKilledMidFanOut: the engine is killed with SIGKILL while
// webhook deliveries are in flight; a fresh engine delivers every event,
// and the ones cut off are retried under the same webhook-id.
func TestWebhookWorkerKilledMidFanOut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	w := newEngineWorld(t)
	box, _ := vault.ParseKey(w.key)
	store, err := db.Open(context.Background(), w.url, db.Options{Vault: box, AllowPrivateTargets: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	recv := &hookReceiver{release: make(chan struct{}), arrivals: map[string]int{}, ok: map[string]int{}}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	defer func() {
		select {
		case <-recv.release:
		default:
			close(recv.release)
		}
	}()
	events := []string{"dripdrop.dispatch.adapter_pinned"}
	sub, err := store.CreateSubscription(ctx, "acme", db.SubscriptionInput{URL: &hs.URL, Events: &events})
	if err != nil {
		t.Fatal(err)
	}
	recv.secret = sub.Secret

	// 40 enrollments: 40 adapter_pinned events in the outbox (their first
	// step is an hour away, so the engine sends no mail meanwhile).
	name, prov, from := "hooks", "sink", "hooks@acme.example.com"
	a, err := store.CreateAdapter(ctx, "acme", dripdrop.AdapterInput{Name: &name, Provider: &prov, FromAddress: &from,
		Credentials: &dripdrop.SMTPCredentials{Host: "127.0.0.1", Port: w.sink.Port(), TLS: "none"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.CreatePool(ctx, "acme", dripdrop.PoolInput{Name: &name, Members: []dripdrop.MemberInput{{AdapterID: &a.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	subject, body, delay := "Hello", "Hi", int64(3600)
	if _, err := store.CreateSequence(ctx, "acme", dripdrop.SequenceInput{Key: &name, Name: &name, VersionInput: dripdrop.VersionInput{
		PoolID: &p.ID, Steps: []dripdrop.StepInput{{Subject: &subject, BodyText: &body, DelaySeconds: &delay}},
	}}); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var contacts []dripdrop.ContactInput
	for i := 0; i < n; i++ {
		email := fmt.Sprintf("c%d@hooks.example.com", i)
		contacts = append(contacts, dripdrop.ContactInput{Email: &email})
	}
	if _, err := store.EnrollBatch(ctx, "acme", name, contacts); err != nil {
		t.Fatal(err)
	}
	if got := w.count("SELECT count(*) FROM telemetry_outbox WHERE name = 'dripdrop.dispatch.adapter_pinned'"); got != n {
		t.Fatalf("%d events in the outbox, want %d", got, n)
	}

	e := w.start("-allow-private-targets=true", "-webhook-lease", "2s")
	w.waitFor("deliveries in flight", 30*time.Second, func() bool { arrived, _ := recv.counts(); return arrived >= 8 })
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
	cutOff, _ := recv.counts()
	close(recv.release)

	e = w.start("-allow-private-targets=true", "-webhook-lease", "2s")
	w.waitFor("every event delivered", 60*time.Second, func() bool { _, delivered := recv.counts(); return delivered == n })
	e.stop(t)

	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.bad != 0 {
		t.Errorf("%d requests failed signature verification", recv.bad)
	}
	retried := 0
	for id, c := range recv.arrivals {
		if recv.ok[id] == 0 {
			t.Errorf("event %s was never acknowledged", id)
		}
		if c > 1 {
			retried++
		}
	}
	if len(recv.arrivals) != n || retried < cutOff {
		t.Fatalf("%d distinct webhook-ids (want %d); %d cut off by the kill, %d retried under their webhook-id", len(recv.arrivals), n, cutOff, retried)
	}
	if left := w.count("SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"); left != 0 {
		t.Fatalf("%d deliveries not delivered", left)
	}
	t.Logf("%d events; %d in flight at the kill, all retried with their webhook-id", n, cutOff)
}
