package api_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop/api"
	"github.com/dripdrop/dripdrop/db/dbtest"
	"github.com/dripdrop/dripdrop/ingest/esp"
)

// espCase drives one provider through the shared scenario: send builds a
// signed request for an event of a kind ("hard", "sender", "complaint",
// "unsubscribe") about our message msgID sent to rcpt.
type espCase struct {
	provider string
	config   map[string]any
	kinds    []string
	send     func(w *inboundWorld, kind, eventID, rcpt, msgID string, valid bool) resp
}

func (w *inboundWorld) espPost(provider string, body []byte, headers ...string) resp {
	w.t.Helper()
	return w.do("POST", "/v1/inbound/events/"+provider+"?tenant=acme", "", body, headers...)
}

func inboundCount(t *testing.T, w *inboundWorld) int64 {
	return dbtest.RowCounts(t, w.dbURL)["inbound_messages"]
}

// runESP: per kind, a bad signature (401, no row written), the event
// (200, its effect), the same event again (200, duplicate, nothing more).
func runESP(t *testing.T, w *inboundWorld, c espCase) {
	t.Helper()
	w.must(200, "PUT", "/v1/inbound/providers/"+c.provider, w.keyA, c.config)
	type target struct {
		kind, addr string
		id         uuid.UUID
	}
	var targets []target
	for _, k := range c.kinds {
		addr := k + "-" + c.provider + "@client.example"
		targets = append(targets, target{k, addr, w.enroll(addr).ID})
	}
	w.run()
	for i, tg := range targets {
		msgID := w.sentTo(tg.addr)[0].Header().Get("Message-Id")
		eventID := fmt.Sprintf("%s-event-%d", c.provider, i)

		before := dbtest.RowCounts(t, w.dbURL)
		r := c.send(w, tg.kind, eventID, tg.addr, msgID, false)
		assertProblem(t, r, 401, "unauthorized", "")
		if after := dbtest.RowCounts(t, w.dbURL); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("%s %s: a bad signature changed rows:\n%v\n%v", c.provider, tg.kind, before, after)
		}

		r = c.send(w, tg.kind, eventID, tg.addr, msgID, true)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", c.provider, tg.kind, r.status, r.body)
		}
		ev := r.json(t)["events"].([]any)[0].(map[string]any)
		res := ev["result"].(map[string]any)
		if res["enrollment_id"] != tg.id.String() || res["duplicate"] != false || res["message_id"] != ev["event_id"] || (c.provider != "postmark" && ev["event_id"] != eventID) || res["provider"] != c.provider {
			t.Fatalf("%s %s: %s", c.provider, tg.kind, r.body)
		}
		e := w.get(tg.id)
		sup, _ := w.store.IsSuppressed(context.Background(), "acme", tg.addr)
		state := string(e.State)
		if e.StopReason != nil {
			state += "/" + *e.StopReason
		}
		if e.PauseReason != nil {
			state += "/" + *e.PauseReason
		}
		// The sender's failure keeps the prospect: not suppressed, not
		// stopped; the enrollment waits for the sender (sender_rejected).
		want, wantSup := map[string]string{"hard": "stopped/bounced", "sender": "paused/sender_rejected", "complaint": "stopped/complained", "unsubscribe": "stopped/unsubscribed"}[tg.kind], tg.kind != "sender"
		if state != want || sup != wantSup {
			t.Fatalf("%s %s: enrollment %s suppressed=%v, want %s suppressed=%v\n%s", c.provider, tg.kind, state, sup, want, wantSup, r.body)
		}
		if tg.kind == "sender" && (res["bounce_type"] != "soft" || ev["fault"] != "sender") {
			t.Fatalf("%s sender-side: %s", c.provider, r.body)
		}
		if tg.kind == "hard" && (res["bounce_type"] != "hard" || ev["fault"] != "recipient") {
			t.Fatalf("%s hard: %s", c.provider, r.body)
		}

		n := inboundCount(t, w)
		r = c.send(w, tg.kind, eventID, tg.addr, msgID, true)
		if r.status != 200 || r.json(t)["events"].([]any)[0].(map[string]any)["result"].(map[string]any)["duplicate"] != true {
			t.Fatalf("%s %s repeat: %d %s", c.provider, tg.kind, r.status, r.body)
		}
		if inboundCount(t, w) != n || string(w.get(tg.id).State) != string(e.State) {
			t.Fatalf("%s %s: the repeat changed something", c.provider, tg.kind)
		}
	}
	if got := len(w.events.Named("dripdrop.ingest.inbound_message")); got < len(targets) {
		t.Fatalf("%s: %d inbound_message events, want at least %d", c.provider, got, len(targets))
	}
	// An unknown tenant or one without the provider configured: 401 too.
	r := w.do("POST", "/v1/inbound/events/"+c.provider+"?tenant=beta", "", []byte(`{}`))
	assertProblem(t, r, 401, "unauthorized", "")
}

func TestESPResend(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	key := []byte("resend-signing-key-0123456789abcdef")
	runESP(t, w, espCase{provider: "resend", config: map[string]any{"secret": "whsec_" + base64.StdEncoding.EncodeToString(key)},
		kinds: []string{"hard", "sender", "complaint"},
		send: func(w *inboundWorld, kind, eventID, rcpt, msgID string, valid bool) resp {
			typ, bounce := "email.bounced", map[string]any{"type": "Permanent", "subType": "General", "message": "550 5.1.1 The email account that you tried to reach does not exist"}
			switch kind {
			case "sender":
				bounce = map[string]any{"type": "Undetermined", "subType": "Undetermined", "message": "Amazon SES was unable to determine a specific bounce reason"}
			case "complaint":
				typ = "email.complained"
			}
			body, _ := json.Marshal(map[string]any{"type": typ, "created_at": "2026-12-06T10:00:00.000Z", "data": map[string]any{
				"email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c", "from": "Ada <ada@acme.example.com>", "to": []string{rcpt}, "subject": "Quick question",
				"headers": []map[string]string{{"name": "Message-ID", "value": msgID}}, "bounce": bounce}})
			ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(eventID + "." + ts + "."))
			mac.Write(body)
			sig := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if !valid {
				sig = "v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))
			}
			return w.espPost("resend", body, "webhook-id", eventID, "webhook-timestamp", ts, "webhook-signature", sig)
		}})
	// A stale timestamp is refused even with a valid signature.
	body := []byte(`{"type":"email.delivered","data":{}}`)
	ts := strconv.FormatInt(w.clock.Now().Add(-6*time.Minute).Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("msg_old." + ts + "."))
	mac.Write(body)
	r := w.espPost("resend", body, "webhook-id", "msg_old", "webhook-timestamp", ts, "webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	assertProblem(t, r, 401, "unauthorized", "")
	// A delivery is acknowledged and ignored.
	ts = strconv.FormatInt(w.clock.Now().Unix(), 10)
	mac = hmac.New(sha256.New, key)
	mac.Write([]byte("msg_ok." + ts + "."))
	mac.Write(body)
	r = w.espPost("resend", body, "webhook-id", "msg_ok", "webhook-timestamp", ts, "webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	if r.status != 200 || r.json(t)["events"].([]any)[0].(map[string]any)["ignored"] != true {
		t.Fatalf("delivered: %d %s", r.status, r.body)
	}
}

func TestESPMailgun(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	key := "mailgun-webhook-signing-key"
	runESP(t, w, espCase{provider: "mailgun", config: map[string]any{"signing_key": key},
		kinds: []string{"hard", "sender", "complaint", "unsubscribe"},
		send: func(w *inboundWorld, kind, eventID, rcpt, msgID string, valid bool) resp {
			ed := map[string]any{"id": eventID, "timestamp": float64(w.clock.Now().Unix()) + 0.25, "recipient": rcpt,
				"message": map[string]any{"headers": map[string]any{"message-id": msgID, "to": rcpt}}}
			switch kind {
			case "hard":
				ed["event"], ed["severity"], ed["reason"] = "failed", "permanent", "bounce"
				ed["delivery-status"] = map[string]any{"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist.", "attempt-no": 1}
			case "sender":
				ed["event"], ed["severity"], ed["reason"] = "failed", "permanent", "bounce"
				ed["delivery-status"] = map[string]any{"code": 550, "message": "5.7.1 Message rejected due to DMARC policy of the sending domain", "attempt-no": 1}
			case "complaint":
				ed["event"] = "complained"
			case "unsubscribe":
				ed["event"] = "unsubscribed"
			}
			ts, token := strconv.FormatInt(w.clock.Now().Unix(), 10), "token-"+eventID
			mac := hmac.New(sha256.New, []byte(key))
			mac.Write([]byte(ts + token))
			sig := hex.EncodeToString(mac.Sum(nil))
			if !valid {
				sig = hex.EncodeToString(make([]byte, 32))
			}
			body, _ := json.Marshal(map[string]any{"signature": map[string]any{"timestamp": ts, "token": token, "signature": sig}, "event-data": ed})
			return w.espPost("mailgun", body)
		}})

	// Tenant isolation: beta's own key verifies only beta's events, and a
	// beta event naming acme's Message-ID changes nothing of acme's.
	w.must(200, "PUT", "/v1/inbound/providers/mailgun", w.keyB, map[string]any{"signing_key": "beta-key"})
	victim := w.enroll("victim@client.example")
	w.clock.Add(2 * time.Minute) // past the adapter's backoff after the sender's failure above
	w.run()
	msgID := w.sentTo("victim@client.example")[0].Header().Get("Message-Id")
	event := func(signKey, id string) []byte {
		ts, token := strconv.FormatInt(w.clock.Now().Unix(), 10), "tok-"+id
		mac := hmac.New(sha256.New, []byte(signKey))
		mac.Write([]byte(ts + token))
		b, _ := json.Marshal(map[string]any{"signature": map[string]any{"timestamp": ts, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
			"event-data": map[string]any{"id": id, "event": "complained", "recipient": "victim@client.example", "message": map[string]any{"headers": map[string]any{"message-id": msgID}}}})
		return b
	}
	assertProblem(t, w.do("POST", "/v1/inbound/events/mailgun?tenant=beta", "", event(key, "x-1")), 401, "unauthorized", "")
	r := w.do("POST", "/v1/inbound/events/mailgun?tenant=beta", "", event("beta-key", "x-2"))
	if r.status != 200 || r.json(t)["events"].([]any)[0].(map[string]any)["result"].(map[string]any)["correlation"] != "unmatched" {
		t.Fatalf("beta event: %d %s", r.status, r.body)
	}
	if e := w.get(victim.ID); e.State != "active" {
		t.Fatalf("beta's event changed acme's enrollment: %s", e.State)
	}
	if sup, _ := w.store.IsSuppressed(context.Background(), "acme", "victim@client.example"); sup {
		t.Fatal("beta's event suppressed in acme")
	}
}

func TestESPPostmark(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	runESP(t, w, espCase{provider: "postmark", config: map[string]any{"username": "postmark", "password": "s3cret-hook"},
		kinds: []string{"hard", "sender", "complaint", "unsubscribe"},
		send: func(w *inboundWorld, kind, eventID, rcpt, msgID string, valid bool) resp {
			id := 4323372036854775000 + int64(len(eventID)) + int64(eventID[len(eventID)-1])
			var p map[string]any
			switch kind {
			case "hard":
				p = map[string]any{"RecordType": "Bounce", "ID": id, "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce", "MessageID": msgID,
					"Email": rcpt, "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
					"Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.", "BouncedAt": "2026-12-06T10:00:00Z", "Inactive": true}
			case "sender":
				p = map[string]any{"RecordType": "Bounce", "ID": id, "Type": "Blocked", "TypeCode": 100006, "MessageID": msgID, "Email": rcpt,
					"Details": "smtp;554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org", "BouncedAt": "2026-12-06T10:00:00Z"}
			case "complaint":
				p = map[string]any{"RecordType": "SpamComplaint", "ID": id, "Type": "SpamComplaint", "MessageID": msgID, "Email": rcpt, "BouncedAt": "2026-12-06T10:00:00Z"}
			case "unsubscribe":
				p = map[string]any{"RecordType": "SubscriptionChange", "MessageID": msgID, "Recipient": rcpt, "ChangedAt": "2026-12-06T10:00:00Z",
					"SuppressSending": true, "SuppressionReason": "ManualSuppression"}
			}
			body, _ := json.Marshal(p)
			pass := "s3cret-hook"
			if !valid {
				pass = "guess"
			}
			req := "Basic " + base64.StdEncoding.EncodeToString([]byte("postmark:"+pass))
			return w.espPost("postmark", body, "Authorization", req)
		}})
}

func TestESPSendGrid(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	runESP(t, w, espCase{provider: "sendgrid", config: map[string]any{"public_key": base64.StdEncoding.EncodeToString(der)},
		kinds: []string{"hard", "sender", "complaint", "unsubscribe"},
		send: func(w *inboundWorld, kind, eventID, rcpt, msgID string, valid bool) resp {
			e := map[string]any{"email": rcpt, "timestamp": w.clock.Now().Unix(), "smtp-id": msgID, "sg_event_id": eventID,
				"sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"}
			switch kind {
			case "hard":
				e["event"], e["type"], e["status"], e["reason"] = "bounce", "bounce", "5.1.1", "550 5.1.1 The email account that you tried to reach does not exist."
			case "sender":
				e["event"], e["type"], e["status"], e["reason"] = "bounce", "blocked", "5.0.0", "550 Blocked: sending IP listed"
			case "complaint":
				e["event"] = "spamreport"
			case "unsubscribe":
				e["event"] = "group_unsubscribe"
			}
			body, _ := json.Marshal([]any{map[string]any{"email": rcpt, "event": "processed", "sg_event_id": "p-" + eventID}, e})
			ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
			h := sha256.Sum256(append([]byte(ts), body...))
			signer := k
			if !valid {
				signer = other
			}
			sig, _ := ecdsa.SignASN1(rand.Reader, signer, h[:])
			r := w.espPost("sendgrid", body, "X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig), "X-Twilio-Email-Event-Webhook-Timestamp", ts)
			if r.status == 200 { // the processed event is ignored; the scenario reads the second
				var m map[string]any
				_ = json.Unmarshal(r.body, &m)
				evs := m["events"].([]any)
				if evs[0].(map[string]any)["ignored"] != true {
					w.t.Fatalf("processed not ignored: %s", r.body)
				}
				m["events"] = evs[1:]
				r.body, _ = json.Marshal(m)
			}
			return r
		}})
}

// snsServer serves a signing certificate and a subscription confirmation
// over TLS; the client maps every host to it, as if it were SNS.
type snsServer struct {
	key       *rsa.PrivateKey
	srv       *httptest.Server
	fetches   atomic.Int32
	confirmed atomic.Int32
}

func newSNSServer(t *testing.T) (*snsServer, api.SNSClient) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "sns.amazonaws.com"}, NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s := &snsServer{key: k}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/SimpleNotificationService-test.pem":
			s.fetches.Add(1)
			_, _ = w.Write(pemCert)
		case "/confirm":
			if r.URL.Query().Get("Token") == "tok-1" {
				s.confirmed.Add(1)
			}
			_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	tr := s.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "example.com" // the test server's certificate name
	addr := s.srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return s, &api.HTTPSNSClient{Client: &http.Client{Transport: tr}}
}

const snsTopic = "arn:aws:sns:eu-west-1:123456789012:ses-events"

func (s *snsServer) sign(t *testing.T, m esp.SNSMessage) []byte {
	text, err := m.StringToSign()
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	if m.SignatureVersion == "1" {
		h := sha1.Sum([]byte(text)) //nolint:gosec // SNS SignatureVersion 1
		sig, _ = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, h[:])
	} else {
		h := sha256.Sum256([]byte(text))
		sig, _ = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, h[:])
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
	b, _ := json.Marshal(m)
	return b
}

func TestESPSES(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	sns, client := newSNSServer(t)
	srv := api.New(api.Config{Store: w.store, AdminToken: adminToken, SNS: client})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	w.server, w.http = srv, hs

	certURL := "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
	version := 0
	runESP(t, w, espCase{provider: "ses", config: map[string]any{"topic_arns": []string{snsTopic}},
		kinds: []string{"hard", "sender", "complaint"},
		send: func(w *inboundWorld, kind, eventID, rcpt, msgID string, valid bool) resp {
			mail := map[string]any{"timestamp": "2026-12-06T10:00:00.000Z", "messageId": "0100018c-ses-" + eventID, "source": "ada@acme.example.com",
				"destination": []string{rcpt}, "headersTruncated": false, "commonHeaders": map[string]any{"messageId": msgID, "to": []string{rcpt}}}
			var n map[string]any
			switch kind {
			case "hard":
				n = map[string]any{"notificationType": "Bounce", "mail": mail, "bounce": map[string]any{"bounceType": "Permanent", "bounceSubType": "General",
					"timestamp": "2026-12-06T10:00:01.000Z", "feedbackId": "fb-" + eventID,
					"bouncedRecipients": []any{map[string]any{"emailAddress": rcpt, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}}}}
			case "sender":
				n = map[string]any{"notificationType": "Bounce", "mail": mail, "bounce": map[string]any{"bounceType": "Transient", "bounceSubType": "General",
					"timestamp": "2026-12-06T10:00:01.000Z", "feedbackId": "fb-" + eventID,
					"bouncedRecipients": []any{map[string]any{"emailAddress": rcpt, "action": "failed", "status": "5.7.1", "diagnosticCode": "smtp; 550 5.7.1 Message rejected: sending IP is on a blocklist"}}}}
			case "complaint":
				n = map[string]any{"notificationType": "Complaint", "mail": mail, "complaint": map[string]any{"timestamp": "2026-12-06T10:00:01.000Z",
					"feedbackId": "fb-" + eventID, "complaintFeedbackType": "abuse", "complainedRecipients": []any{map[string]any{"emailAddress": rcpt}}}}
			}
			inner, _ := json.Marshal(n)
			version = version%2 + 1 // alternate SignatureVersion 1 and 2
			m := esp.SNSMessage{Type: "Notification", MessageID: eventID, TopicARN: snsTopic, Message: string(inner), Timestamp: "2026-12-06T10:00:02.000Z",
				SignatureVersion: strconv.Itoa(version), SigningCertURL: certURL, UnsubscribeURL: "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"}
			if kind == "complaint" {
				m.Subject = "Amazon SES Complaint"
			}
			b := sns.sign(t, m)
			if !valid {
				m.Message = string(inner) + " "
				var tampered map[string]any
				_ = json.Unmarshal(b, &tampered)
				tampered["Message"] = m.Message
				b, _ = json.Marshal(tampered)
			}
			return w.espPost("ses", b, "Content-Type", "text/plain; charset=UTF-8", "x-amz-sns-message-type", "Notification")
		}})
	if sns.fetches.Load() != 1 {
		t.Fatalf("certificate fetched %d times, want once (cached)", sns.fetches.Load())
	}

	// A certificate on another host is refused before anything is fetched.
	m := esp.SNSMessage{Type: "Notification", MessageID: "evil-1", TopicARN: snsTopic, Message: `{"notificationType":"Bounce"}`, Timestamp: "2026-12-06T10:00:02.000Z",
		SignatureVersion: "2", SigningCertURL: "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-test.pem"}
	before := dbtest.RowCounts(t, w.dbURL)
	assertProblem(t, w.espPost("ses", sns.sign(t, m)), 401, "unauthorized", "")
	// A topic the tenant did not allow is refused too.
	m.SigningCertURL, m.TopicARN = certURL, "arn:aws:sns:eu-west-1:999999999999:other"
	assertProblem(t, w.espPost("ses", sns.sign(t, m)), 401, "unauthorized", "")
	if after := dbtest.RowCounts(t, w.dbURL); fmt.Sprint(after) != fmt.Sprint(before) || sns.fetches.Load() != 1 {
		t.Fatalf("refused messages changed rows or fetched: %d", sns.fetches.Load())
	}

	// Subscription confirmation (version 1 and 2): the SubscribeURL is visited.
	for i, v := range []string{"1", "2"} {
		c := esp.SNSMessage{Type: "SubscriptionConfirmation", MessageID: "sub-" + v, Token: "tok-1", TopicARN: snsTopic,
			Message: "You have chosen to subscribe to the topic " + snsTopic, SubscribeURL: "https://sns.eu-west-1.amazonaws.com/confirm?Action=ConfirmSubscription&Token=tok-1",
			Timestamp: "2026-12-06T09:00:00.000Z", SignatureVersion: v, SigningCertURL: certURL}
		r := w.espPost("ses", sns.sign(t, c))
		if r.status != 200 || r.json(t)["confirmed"] != true || sns.confirmed.Load() != int32(i+1) {
			t.Fatalf("confirmation v%s: %d %s (confirmed %d)", v, r.status, r.body, sns.confirmed.Load())
		}
	}
	// A confirmation whose SubscribeURL is not SNS's is refused, not visited.
	c := esp.SNSMessage{Type: "SubscriptionConfirmation", MessageID: "sub-evil", Token: "tok-1", TopicARN: snsTopic, Message: "x",
		SubscribeURL: "https://127.0.0.1/confirm?Token=tok-1", Timestamp: "2026-12-06T09:00:00.000Z", SignatureVersion: "2", SigningCertURL: certURL}
	assertProblem(t, w.espPost("ses", sns.sign(t, c)), 401, "unauthorized", "")
	if sns.confirmed.Load() != 2 {
		t.Fatal("a foreign SubscribeURL was visited")
	}
	// A Delivery notification is acknowledged and stores nothing.
	before = dbtest.RowCounts(t, w.dbURL)
	d := esp.SNSMessage{Type: "Notification", MessageID: "delivery-1", TopicARN: snsTopic, Message: `{"notificationType":"Delivery","mail":{"messageId":"m"},"delivery":{"recipients":["a@client.example"]}}`,
		Timestamp: "2026-12-06T10:00:02.000Z", SignatureVersion: "1", SigningCertURL: certURL}
	r := w.espPost("ses", sns.sign(t, d))
	if r.status != 200 || r.json(t)["events"].([]any)[0].(map[string]any)["ignored"] != true {
		t.Fatalf("delivery: %d %s", r.status, r.body)
	}
	if after := dbtest.RowCounts(t, w.dbURL); after["inbound_messages"] != before["inbound_messages"] {
		t.Fatal("a delivery was stored")
	}
}

func TestESPProviderConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.tenant("cfg")
	r := e.do("PUT", "/v1/inbound/providers/postmark", key, map[string]any{"username": "u", "password": "p"})
	if r.status != 200 || strings.Contains(string(r.body), "password") || strings.Contains(string(r.body), `"p"`) {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	assertProblem(t, e.do("PUT", "/v1/inbound/providers/postmark", key, map[string]any{"username": "u"}), 422, "required", "password")
	assertProblem(t, e.do("PUT", "/v1/inbound/providers/mailgun", key, map[string]any{"signing_key": "k", "secret": "whsec_AA=="}), 422, "invalid_value", "secret")
	assertProblem(t, e.do("PUT", "/v1/inbound/providers/mailgun", key, map[string]any{"signing_key": "k", "extra": 1}), 422, "unknown_field", "extra")
	assertProblem(t, e.do("PUT", "/v1/inbound/providers/other", key, map[string]any{"secret": "x"}), 422, "invalid_value", "provider")
	assertProblem(t, e.do("PUT", "/v1/inbound/providers/mailgun", "", map[string]any{"signing_key": "k"}), 401, "unauthorized", "*")
	assertProblem(t, e.do("POST", "/v1/inbound/events/other?tenant=cfg", "", []byte(`{}`)), 404, "not_found", "provider")
	assertProblem(t, e.do("POST", "/v1/inbound/events/postmark", "", []byte(`{}`)), 422, "required", "tenant")
}

// TestESPBadInput: unreadable payloads and oversized bodies are 4xx
// problems and change nothing.
func TestESPBadInput(t *testing.T) {
	t.Parallel()
	w := newInboundWorld(t)
	w.must(200, "PUT", "/v1/inbound/providers/mailgun", w.keyA, map[string]any{"signing_key": "k"})
	before := dbtest.RowCounts(t, w.dbURL)
	assertProblem(t, w.espPost("mailgun", []byte(`{"signature":`)), 400, "invalid_json", "body")
	assertProblem(t, w.espPost("mailgun", []byte(`[1,2]`)), 400, "invalid_json", "body")
	assertProblem(t, w.espPost("mailgun", []byte(`{"signature":{}}`)), 401, "unauthorized", "")
	assertProblem(t, w.espPost("mailgun", []byte(`{"x":"`+strings.Repeat("x", 2<<20)+`"}`)), 413, "payload_too_large", "body")
	if after := dbtest.RowCounts(t, w.dbURL); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("bad input changed rows:\n%v\n%v", before, after)
	}
}
