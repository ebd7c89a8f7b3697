package esp

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
)

// SNSMessage is an Amazon SNS HTTP(S) delivery.
type SNSMessage struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token"`
	TopicARN         string `json:"TopicArn"`
	Subject          string `json:"Subject"`
	Message          string `json:"Message"`
	SubscribeURL     string `json:"SubscribeURL"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	UnsubscribeURL   string `json:"UnsubscribeURL"`
}

// SNS message types.
const (
	SNSNotification             = "Notification"
	SNSSubscriptionConfirmation = "SubscriptionConfirmation"
	SNSUnsubscribeConfirmation  = "UnsubscribeConfirmation"
)

// ParseSNS reads an SNS delivery.
func ParseSNS(body []byte) (SNSMessage, error) {
	var m SNSMessage
	err := json.Unmarshal(body, &m)
	return m, err
}

// StringToSign is the canonical text SNS signs: "Name\nvalue\n" for, in
// this order, Message, MessageId, Subject (when present), Timestamp,
// TopicArn and Type of a notification, and Message, MessageId,
// SubscribeURL, Timestamp, Token, TopicArn and Type of a
// (un)subscription confirmation.
func (m SNSMessage) StringToSign() (string, error) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	switch m.Type {
	case SNSNotification:
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		if m.Subject != "" {
			add("Subject", m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicARN)
		add("Type", m.Type)
	case SNSSubscriptionConfirmation, SNSUnsubscribeConfirmation:
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicARN)
		add("Type", m.Type)
	default:
		return "", sigErr("unknown SNS message type")
	}
	return b.String(), nil
}

var snsHost = regexp.MustCompile(`^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$`)

// CheckSNSURL accepts only https URLs on an SNS regional host
// (sns.<region>.amazonaws.com) with no user info or port; a certificate
// URL must also end in .pem.
func CheckSNSURL(raw string, cert bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || !snsHost.MatchString(u.Hostname()) {
		return sigErr("the URL is not on an SNS host")
	}
	if cert && !strings.HasSuffix(u.Path, ".pem") {
		return sigErr("the signing certificate URL does not name a .pem file")
	}
	return nil
}

// VerifySNS checks m's signature with the signing certificate (PEM or
// DER already parsed by the caller): SignatureVersion 1 is SHA1withRSA,
// 2 SHA256withRSA over StringToSign.
func VerifySNS(m SNSMessage, cert *x509.Certificate) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return sigErr("the signing certificate has no RSA key")
	}
	text, err := m.StringToSign()
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return sigErr("the signature is not base64")
	}
	var h crypto.Hash
	var sum []byte
	switch m.SignatureVersion {
	case "1":
		s := sha1.Sum([]byte(text)) //nolint:gosec // the algorithm SNS signs version 1 with
		h, sum = crypto.SHA1, s[:]
	case "2":
		s := sha256.Sum256([]byte(text))
		h, sum = crypto.SHA256, s[:]
	default:
		return sigErr("unknown SignatureVersion")
	}
	if err := rsa.VerifyPKCS1v15(pub, h, sum, sig); err != nil {
		return sigErr("the signature does not match")
	}
	return nil
}

type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		Timestamp         string `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint struct {
		Timestamp             string                          `json:"timestamp"`
		ComplainedRecipients  []struct{ EmailAddress string } `json:"complainedRecipients"`
		ComplaintFeedbackType string                          `json:"complaintFeedbackType"`
		ComplaintSubType      string                          `json:"complaintSubType"`
	} `json:"complaint"`
	Mail struct {
		MessageID     string   `json:"messageId"`
		Destination   []string `json:"destination"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
		Headers []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"headers"`
	} `json:"mail"`
}

// ParseSES reads the SES notification inside an SNS Notification; id is
// the SNS MessageId, the event id. Bounce: bounceType Permanent is the
// recipient's permanent failure (unless its status says the sender's),
// Transient soft, Undetermined the sender's side (SES could not tell);
// Complaint a complaint (complaintSubType OnAccountSuppressionList is
// SES refusing to send: ignored); Delivery and the rest ignored.
func ParseSES(id, message string) (Event, error) {
	var n sesNotification
	if err := json.Unmarshal([]byte(message), &n); err != nil {
		return Event{}, err
	}
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	ev := Event{ID: id, Type: typ, ProviderMessageID: n.Mail.MessageID, MessageID: normID(n.Mail.CommonHeaders.MessageID), Kind: KindIgnored}
	for _, h := range n.Mail.Headers {
		if ev.MessageID == "" && strings.EqualFold(h.Name, "Message-ID") {
			ev.MessageID = normID(h.Value)
		}
	}
	if len(n.Mail.Destination) > 0 {
		ev.Recipient = n.Mail.Destination[0]
	}
	switch typ {
	case "Bounce":
		b := n.Bounce
		ev.Kind, ev.Type, ev.Time = KindBounce, "Bounce/"+b.BounceType+"/"+b.BounceSubType, parseTime(b.Timestamp)
		ev.Permanent = b.BounceType == "Permanent"
		ev.SenderSide = b.BounceType == "Undetermined"
		if len(b.BouncedRecipients) > 0 {
			r := b.BouncedRecipients[0]
			ev.Recipient, ev.Status, ev.Diagnostic = r.EmailAddress, r.Status, r.DiagnosticCode
		}
	case "Complaint":
		c := n.Complaint
		ev.Time = parseTime(c.Timestamp)
		if c.ComplaintSubType == "" {
			ev.Kind = KindComplaint
		}
		if len(c.ComplainedRecipients) > 0 {
			ev.Recipient = c.ComplainedRecipients[0].EmailAddress
		}
	}
	return ev, nil
}
