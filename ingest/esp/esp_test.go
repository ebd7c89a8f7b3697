package esp_test

import (
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
	"errors"
	"math/big"
	"strconv"
	"testing"
	"time"

	"github.com/dripdrop/dripdrop/ingest/esp"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func TestStandardWebhook(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	body := []byte(`{"type":"email.bounced"}`)
	sign := func(id, ts string, b []byte) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(b)
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	old := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	for _, c := range []struct {
		name, id, ts, sig string
		body              []byte
		ok                bool
	}{
		{"valid", "msg_1", ts, sign("msg_1", ts, body), body, true},
		{"second of two signatures", "msg_1", ts, "v1,AAAA " + sign("msg_1", ts, body), body, true},
		{"other body", "msg_1", ts, sign("msg_1", ts, body), []byte(`{}`), false},
		{"other id", "msg_2", ts, sign("msg_1", ts, body), body, false},
		{"too old", "msg_1", old, sign("msg_1", old, body), body, false},
		{"missing", "msg_1", ts, "", body, false},
		{"other version", "msg_1", ts, "v2" + sign("msg_1", ts, body)[2:], body, false},
	} {
		err := esp.VerifyStandardWebhook(secret, c.id, c.ts, c.sig, c.body, now)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, esp.ErrSignature)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestMailgun(t *testing.T) {
	key := "key-signing"
	mk := func(ts, token string) esp.MailgunSignature {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(ts + token))
		return esp.MailgunSignature{Timestamp: ts, Token: token, Signature: hex.EncodeToString(m.Sum(nil))}
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	good := mk(ts, "tok")
	tampered := good
	tampered.Token = "other"
	for _, c := range []struct {
		name string
		s    esp.MailgunSignature
		key  string
		ok   bool
	}{
		{"valid", good, key, true},
		{"wrong key", good, "other", false},
		{"tampered token", tampered, key, false},
		{"old", mk(strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10), "tok"), key, false},
		{"future", mk(strconv.FormatInt(now.Add(10*time.Minute).Unix(), 10), "tok"), key, false},
	} {
		if err := esp.VerifyMailgun(c.key, c.s, now); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	_, ev, err := esp.ParseMailgun([]byte(`{"signature":{},"event-data":{"id":"E1","event":"failed","severity":"permanent","recipient":"a@x.example",
		"delivery-status":{"code":550,"message":"5.1.1 no such user"},"message":{"headers":{"message-id":"<m1@us>"}}}}`))
	if err != nil || ev.Kind != esp.KindBounce || !ev.Permanent || ev.MessageID != "m1@us" || ev.ID != "E1" || ev.Diagnostic != "550 5.1.1 no such user" {
		t.Fatalf("mailgun: %+v %v", ev, err)
	}
}

func TestBasicAuth(t *testing.T) {
	for _, c := range []struct {
		u, p string
		ok   bool
		want bool
	}{{"pm", "pw", true, true}, {"pm", "no", true, false}, {"no", "pw", true, false}, {"", "", false, false}} {
		if err := esp.VerifyBasicAuth("pm", "pw", c.u, c.p, c.ok); (err == nil) != c.want {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestSendGrid(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := base64.StdEncoding.EncodeToString(der)
	body := []byte(`[{"email":"a@x.example","event":"bounce","type":"blocked","status":"5.7.1","reason":"blocked by policy","sg_event_id":"ev1","smtp-id":"<m1@us>","sg_message_id":"abc.filter01"}]`)
	sign := func(ts string, b []byte) string {
		h := sha256.Sum256(append([]byte(ts), b...))
		s, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
		return base64.StdEncoding.EncodeToString(s)
	}
	if err := esp.VerifySendGrid(pub, sign("1700000000", body), "1700000000", body); err != nil {
		t.Fatal(err)
	}
	if err := esp.VerifySendGrid(pub, sign("1700000000", body), "1700000001", body); err == nil {
		t.Fatal("other timestamp verified")
	}
	if err := esp.VerifySendGrid(pub, sign("1700000000", body), "1700000000", append(body, ' ')); err == nil {
		t.Fatal("other body verified")
	}
	evs, err := esp.ParseSendGrid(body)
	if err != nil || len(evs) != 1 || !evs[0].SenderSide || evs[0].ProviderMessageID != "abc" || evs[0].MessageID != "m1@us" {
		t.Fatalf("%+v %v", evs, err)
	}
}

func TestParseKinds(t *testing.T) {
	sg, _ := esp.ParseSendGrid([]byte(`[{"event":"dropped","reason":"Bounced Address","sg_event_id":"1"},{"event":"dropped","reason":"Unsubscribed Address","sg_event_id":"2"},
		{"event":"spamreport","sg_event_id":"3"},{"event":"group_unsubscribe","sg_event_id":"4"},{"event":"delivered","sg_event_id":"5"},{"event":"bounce","type":"bounce","status":"5.1.1","sg_event_id":"6"}]`))
	want := []esp.Kind{esp.KindBounce, esp.KindUnsubscribe, esp.KindComplaint, esp.KindUnsubscribe, esp.KindIgnored, esp.KindBounce}
	for i, ev := range sg {
		if ev.Kind != want[i] {
			t.Errorf("sendgrid %d: %s, want %s", i, ev.Kind, want[i])
		}
	}
	if !sg[0].Permanent || !sg[5].Permanent {
		t.Errorf("sendgrid permanence: %+v", sg)
	}
	for _, c := range []struct {
		body              string
		kind              esp.Kind
		permanent, sender bool
	}{
		{`{"RecordType":"Bounce","ID":42,"Type":"HardBounce","Email":"a@x"}`, esp.KindBounce, true, false},
		{`{"RecordType":"Bounce","ID":43,"Type":"SoftBounce","Email":"a@x"}`, esp.KindBounce, false, false},
		{`{"RecordType":"Bounce","ID":44,"Type":"Blocked","Email":"a@x"}`, esp.KindBounce, false, true},
		{`{"RecordType":"Bounce","ID":45,"Type":"DMARCPolicy","Email":"a@x"}`, esp.KindBounce, false, true},
		{`{"RecordType":"SpamComplaint","ID":46,"Email":"a@x"}`, esp.KindComplaint, false, false},
		{`{"RecordType":"Bounce","ID":47,"Type":"SpamComplaint","Email":"a@x"}`, esp.KindComplaint, false, false},
		{`{"RecordType":"Bounce","ID":48,"Type":"Unsubscribe","Email":"a@x"}`, esp.KindUnsubscribe, false, false},
		{`{"RecordType":"Bounce","ID":49,"Type":"ChallengeVerification","Email":"a@x"}`, esp.KindIgnored, false, false},
		{`{"RecordType":"SubscriptionChange","MessageID":"m","Recipient":"a@x","SuppressSending":true,"ChangedAt":"2026-12-06T10:00:00Z"}`, esp.KindUnsubscribe, false, false},
		{`{"RecordType":"Delivery","MessageID":"m"}`, esp.KindIgnored, false, false},
	} {
		ev, err := esp.ParsePostmark([]byte(c.body))
		if err != nil || ev.Kind != c.kind || ev.Permanent != c.permanent || ev.SenderSide != c.sender || (ev.Kind != esp.KindIgnored && ev.ID == "") {
			t.Errorf("postmark %s: %+v %v", c.body, ev, err)
		}
	}
	for _, c := range []struct {
		body              string
		kind              esp.Kind
		permanent, sender bool
	}{
		{`{"type":"email.bounced","data":{"to":["a@x"],"bounce":{"type":"Permanent","message":"550 5.1.1"}}}`, esp.KindBounce, true, false},
		{`{"type":"email.bounced","data":{"to":["a@x"],"bounce":{"type":"Transient"}}}`, esp.KindBounce, false, false},
		{`{"type":"email.complained","data":{"to":["a@x"]}}`, esp.KindComplaint, false, false},
		{`{"type":"email.delivered","data":{"to":["a@x"]}}`, esp.KindIgnored, false, false},
	} {
		ev, err := esp.ParseResend("msg_1", []byte(c.body))
		if err != nil || ev.Kind != c.kind || ev.Permanent != c.permanent || ev.SenderSide != c.sender {
			t.Errorf("resend %s: %+v %v", c.body, ev, err)
		}
	}
	for _, c := range []struct {
		msg               string
		kind              esp.Kind
		permanent, sender bool
	}{
		{`{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General","bouncedRecipients":[{"emailAddress":"a@x","status":"5.1.1"}]},"mail":{"commonHeaders":{"messageId":"<m@us>"}}}`, esp.KindBounce, true, false},
		{`{"notificationType":"Bounce","bounce":{"bounceType":"Transient","bounceSubType":"MailboxFull"}}`, esp.KindBounce, false, false},
		{`{"notificationType":"Bounce","bounce":{"bounceType":"Undetermined"}}`, esp.KindBounce, false, true},
		{`{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"a@x"}]}}`, esp.KindComplaint, false, false},
		{`{"eventType":"Delivery"}`, esp.KindIgnored, false, false},
	} {
		ev, err := esp.ParseSES("sns-1", c.msg)
		if err != nil || ev.Kind != c.kind || ev.Permanent != c.permanent || ev.SenderSide != c.sender {
			t.Errorf("ses %s: %+v %v", c.msg, ev, err)
		}
	}
}

func TestSNS(t *testing.T) {
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	cert, _ := x509.ParseCertificate(der)
	sign := func(m esp.SNSMessage) esp.SNSMessage {
		text, err := m.StringToSign()
		if err != nil {
			t.Fatal(err)
		}
		var sig []byte
		if m.SignatureVersion == "1" {
			h := sha1.Sum([]byte(text)) //nolint:gosec // SNS SignatureVersion 1
			sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA1, h[:])
		} else {
			h := sha256.Sum256([]byte(text))
			sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		}
		m.Signature = base64.StdEncoding.EncodeToString(sig)
		return m
	}
	n := esp.SNSMessage{Type: esp.SNSNotification, MessageID: "id", TopicARN: "arn:aws:sns:eu-west-1:123:ses", Message: "{}", Timestamp: "2026-12-06T12:00:00.000Z"}
	conf := esp.SNSMessage{Type: esp.SNSSubscriptionConfirmation, MessageID: "id2", TopicARN: n.TopicARN, Message: "confirm", Token: "tok", SubscribeURL: "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription", Timestamp: n.Timestamp}
	for _, v := range []string{"1", "2"} {
		for _, m := range []esp.SNSMessage{n, conf} {
			m.SignatureVersion = v
			s := sign(m)
			if err := esp.VerifySNS(s, cert); err != nil {
				t.Errorf("v%s %s: %v", v, m.Type, err)
			}
			s.TopicARN += "x"
			if err := esp.VerifySNS(s, cert); err == nil {
				t.Errorf("v%s %s: tampered verified", v, m.Type)
			}
		}
	}
	withSubject := n
	withSubject.Subject, withSubject.SignatureVersion = "Hi", "2"
	s := sign(withSubject)
	s.Subject = ""
	if esp.VerifySNS(s, cert) == nil {
		t.Error("dropped subject verified")
	}
	for u, ok := range map[string]bool{
		"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem": true,
		"https://sns.cn-north-1.amazonaws.com.cn/x.pem":                         true,
		"http://sns.us-east-1.amazonaws.com/x.pem":                              false,
		"https://sns.us-east-1.amazonaws.com.evil.example/x.pem":                false,
		"https://evil.example/sns.us-east-1.amazonaws.com/x.pem":                false,
		"https://sns.us-east-1.amazonaws.com:8443/x.pem":                        false,
		"https://user@sns.us-east-1.amazonaws.com/x.pem":                        false,
		"https://sns.us-east-1.amazonaws.com/x.txt":                             false,
	} {
		if err := esp.CheckSNSURL(u, true); (err == nil) != ok {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	for _, c := range []struct {
		p  string
		c  esp.Config
		ok bool
	}{
		{"ses", esp.Config{TopicARNs: []string{"arn:aws:sns:eu-west-1:123:ses"}}, true},
		{"ses", esp.Config{TopicARNs: []string{"nope"}}, false},
		{"ses", esp.Config{Secret: "whsec_AAAA"}, false},
		{"sendgrid", esp.Config{PublicKey: base64.StdEncoding.EncodeToString(der)}, true},
		{"sendgrid", esp.Config{PublicKey: "bm90IGEga2V5"}, false},
		{"postmark", esp.Config{Username: "u", Password: "p"}, true},
		{"postmark", esp.Config{Username: "u"}, false},
		{"mailgun", esp.Config{SigningKey: "k"}, true},
		{"resend", esp.Config{Secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("k"))}, true},
		{"resend", esp.Config{Secret: "whsec_!!"}, false},
		{"other", esp.Config{}, false},
	} {
		if err := c.c.Validate(c.p); (err == nil) != c.ok {
			t.Errorf("%s %+v: %v", c.p, c.c, err)
		}
	}
}
