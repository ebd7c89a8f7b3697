package api

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/ingest"
	"github.com/dripdrop/dripdrop/ingest/esp"
	"github.com/dripdrop/dripdrop/internal/netguard"
	"github.com/dripdrop/dripdrop/smtpreply"
)

// SNSClient is the I/O an SES (SNS) event webhook needs: fetching the
// signing certificate a message names and confirming a subscription. The
// handler checks both URLs first (https on sns.<region>.amazonaws.com).
type SNSClient interface {
	Certificate(ctx context.Context, url string) (*x509.Certificate, error)
	Confirm(ctx context.Context, subscribeURL string) error
}

// HTTPSNSClient fetches with Client and caches certificates by URL.
type HTTPSNSClient struct {
	Client *http.Client
	mu     sync.Mutex
	certs  map[string]*x509.Certificate
}

// NewSNSClient returns an HTTPSNSClient whose connections obey the
// outbound-destination guard (docs/security.md#the-operators-network).
func NewSNSClient(guard netguard.Guard) *HTTPSNSClient {
	dialer := guard.Dialer(net.Dialer{Timeout: 10 * time.Second})
	return &HTTPSNSClient{Client: &http.Client{
		Timeout:       15 * time.Second,
		Transport:     &http.Transport{Proxy: nil, DialContext: dialer.DialContext, TLSHandshakeTimeout: 10 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *HTTPSNSClient) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	return io.ReadAll(io.LimitReader(res.Body, limit))
}

// Certificate fetches and parses a PEM signing certificate.
func (c *HTTPSNSClient) Certificate(ctx context.Context, url string) (*x509.Certificate, error) {
	c.mu.Lock()
	cert := c.certs[url]
	c.mu.Unlock()
	if cert != nil {
		return cert, nil
	}
	b, err := c.get(ctx, url, 64<<10)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("the signing certificate is not PEM")
	}
	if cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.certs == nil || len(c.certs) > 100 {
		c.certs = map[string]*x509.Certificate{}
	}
	c.certs[url] = cert
	c.mu.Unlock()
	return cert, nil
}

// Confirm visits the SubscribeURL of a subscription confirmation.
func (c *HTTPSNSClient) Confirm(ctx context.Context, subscribeURL string) error {
	_, err := c.get(ctx, subscribeURL, 64<<10)
	return err
}

// putInboundProvider serves PUT /v1/inbound/providers/{provider}.
func (s *Server) putInboundProvider(w http.ResponseWriter, r *http.Request) error {
	var in esp.Config
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	p, err := s.store.PutInboundProvider(r.Context(), tenantOf(r), r.PathValue("provider"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// espEventResult is what one provider event did.
type espEventResult struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	Ignored bool   `json:"ignored"`
	// Fault is "sender" when the failure was the sender's (recorded as a
	// soft bounce, never suppressed), "recipient" for a recipient failure.
	Fault  string                `json:"fault,omitempty"`
	Result *ingest.InboundResult `json:"result,omitempty"`
}

type espResponse struct {
	Provider  string           `json:"provider"`
	Confirmed bool             `json:"confirmed,omitempty"`
	Events    []espEventResult `json:"events"`
}

func unauthorizedSig(err error) error {
	return dripdrop.Errorf(dripdrop.ECodeUnauthorized, "", "the provider's signature could not be verified: %v", err)
}

// providerEvents serves POST /v1/inbound/events/{provider}?tenant=: a
// provider's event webhook, authenticated by the provider's signature
// with the tenant's configured material (docs/ingest.md#esp-event-webhooks).
// Nothing is stored unless the signature verifies. Provider payloads may
// carry fields we do not read: they are not refused.
func (s *Server) providerEvents(w http.ResponseWriter, r *http.Request) error {
	provider := r.PathValue("provider")
	if !esp.Known(provider) {
		return dripdrop.Errorf(dripdrop.ECodeNotFound, "provider", "provider must be one of %s", strings.Join(esp.Providers, ", "))
	}
	tenant := r.URL.Query().Get("tenant")
	if tenant == "" {
		return dripdrop.Errorf(dripdrop.ECodeRequired, "tenant", "the tenant query parameter names the tenant")
	}
	body, err := readBody(w, r, 1<<20)
	if err != nil {
		return err
	}
	cfg, err := s.store.InboundProviderConfig(r.Context(), tenant, provider)
	if dripdrop.ErrorCode(err) == dripdrop.ECodeNotFound {
		return dripdrop.Errorf(dripdrop.ECodeUnauthorized, "", "no %s webhook is configured for this tenant", provider)
	}
	if err != nil {
		return err
	}
	now := s.store.Now()
	out := espResponse{Provider: provider, Events: []espEventResult{}}
	var events []esp.Event
	bad := func() error {
		return dripdrop.Errorf(dripdrop.ECodeInvalidJSON, "body", "the body is not a %s event payload", provider)
	}
	switch provider {
	case esp.Resend:
		h := r.Header
		if err := esp.VerifyStandardWebhook(cfg.Secret, h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature"), body, now); err != nil {
			return unauthorizedSig(err)
		}
		ev, err := esp.ParseResend(h.Get("webhook-id"), body)
		if err != nil {
			return bad()
		}
		events = []esp.Event{ev}
	case esp.Mailgun:
		sig, ev, err := esp.ParseMailgun(body)
		if err != nil {
			return bad()
		}
		if err := esp.VerifyMailgun(cfg.SigningKey, sig, now); err != nil {
			return unauthorizedSig(err)
		}
		events = []esp.Event{ev}
	case esp.Postmark:
		user, pass, ok := r.BasicAuth()
		if err := esp.VerifyBasicAuth(cfg.Username, cfg.Password, user, pass, ok); err != nil {
			return unauthorizedSig(err)
		}
		ev, err := esp.ParsePostmark(body)
		if err != nil {
			return bad()
		}
		events = []esp.Event{ev}
	case esp.SendGrid:
		h := r.Header
		if err := esp.VerifySendGrid(cfg.PublicKey, h.Get("X-Twilio-Email-Event-Webhook-Signature"), h.Get("X-Twilio-Email-Event-Webhook-Timestamp"), body); err != nil {
			return unauthorizedSig(err)
		}
		if events, err = esp.ParseSendGrid(body); err != nil {
			return bad()
		}
	case esp.SES:
		m, err := esp.ParseSNS(body)
		if err != nil {
			return bad()
		}
		if err := s.verifySNS(r.Context(), cfg, m); err != nil {
			return err
		}
		switch m.Type {
		case esp.SNSSubscriptionConfirmation:
			if err := esp.CheckSNSURL(m.SubscribeURL, false); err != nil {
				return unauthorizedSig(err)
			}
			if err := s.sns.Confirm(r.Context(), m.SubscribeURL); err != nil {
				return dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "confirming the SNS subscription failed: %v", err)
			}
			out.Confirmed = true
			return writeJSON(w, http.StatusOK, out)
		case esp.SNSNotification:
			ev, err := esp.ParseSES(m.MessageID, m.Message)
			if err != nil {
				return bad()
			}
			events = []esp.Event{ev}
		}
	}
	for _, ev := range events {
		res := espEventResult{EventID: ev.ID, Type: ev.Type, Ignored: ev.Kind == esp.KindIgnored}
		if !res.Ignored {
			if ev.ID == "" {
				return dripdrop.Errorf(dripdrop.ECodeRequired, "body", "a %s event has no event id", provider)
			}
			m, intent, fault := espMessage(provider, ev, now)
			res.Fault = string(fault)
			ir, err := s.store.Ingest(r.Context(), tenant, ingest.InboundInput{Provider: provider, Message: m, Intent: intent, Fault: string(fault)})
			if err != nil {
				return err
			}
			res.Result = &ir
		}
		out.Events = append(out.Events, res)
	}
	return writeJSON(w, http.StatusOK, out)
}

// verifySNS checks an SNS message: its topic is one the tenant allowed,
// its certificate URL is on an SNS host and its signature verifies.
func (s *Server) verifySNS(ctx context.Context, cfg esp.Config, m esp.SNSMessage) error {
	if !slices.Contains(cfg.TopicARNs, m.TopicARN) {
		return unauthorizedSig(errors.New("the topic is not one this tenant allowed"))
	}
	if err := esp.CheckSNSURL(m.SigningCertURL, true); err != nil {
		return unauthorizedSig(err)
	}
	if s.sns == nil {
		return dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "SNS certificates cannot be fetched")
	}
	cert, err := s.sns.Certificate(ctx, m.SigningCertURL)
	if err != nil {
		return dripdrop.Errorf(dripdrop.ECodeUnavailable, "", "fetching the SNS signing certificate failed: %v", err)
	}
	if now := s.store.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return unauthorizedSig(errors.New("the signing certificate is not valid now"))
	}
	if err := esp.VerifySNS(m, cert); err != nil {
		return unauthorizedSig(err)
	}
	return nil
}

// espMessage maps a provider event to the inbound message and intent
// POST /v1/inbound would take (docs/ingest.md#esp-event-webhooks): the
// event id is the message id (the duplicate key), our Message-ID the
// report's original message (or In-Reply-To of an unsubscribe), the
// provider's message id X-Provider-Message-ID. A bounce is a
// delivery-status report whose status decides hard or soft: a failure
// the provider or smtpreply.ClassifyStatus names the sender's is handed
// over as soft (class 4, its subject and detail kept) so it never
// suppresses the prospect; so is a temporary one. Hard bounces carry a
// 5.x.x status (5.0.0 when the provider gave none).
func espMessage(provider string, ev esp.Event, now time.Time) (*ingest.Message, ingest.Intent, smtpreply.Fault) {
	at := ev.Time
	if at.IsZero() || at.After(now) {
		at = now
	}
	m := &ingest.Message{MessageID: ev.ID, ProviderMessageID: ev.ProviderMessageID, From: ev.Recipient,
		Subject: provider + " " + ev.Type, ReceivedAt: at, Headers: map[string][]string{"X-Esp-Event-Type": {ev.Type}}}
	m.BodyText = fmt.Sprintf("%s event %s for %s", provider, ev.Type, ev.Recipient)
	switch ev.Kind {
	case esp.KindComplaint:
		m.Report = &ingest.Report{Type: "feedback-report", FeedbackType: "abuse", OriginalRecipient: ev.Recipient, OriginalMessageID: ev.MessageID}
		return m, ingest.Complaint, ""
	case esp.KindUnsubscribe:
		m.InReplyTo = ev.MessageID
		return m, ingest.Unsubscribe, ""
	}
	enh, ok := smtpreply.EnhancedInText(ev.Status)
	if !ok {
		enh, _ = smtpreply.EnhancedInText(ev.Diagnostic)
	}
	st := smtpreply.ClassifyStatus(enh, ev.Diagnostic)
	fault := smtpreply.FaultRecipient
	if ev.SenderSide || st.Fault == smtpreply.FaultSender {
		fault = smtpreply.FaultSender
	}
	hard := ev.Permanent && fault == smtpreply.FaultRecipient && st.Severity != smtpreply.Soft
	status, action := fmt.Sprintf("4.%d.%d", enh[1], enh[2]), "delayed"
	if hard {
		status, action = fmt.Sprintf("5.%d.%d", enh[1], enh[2]), "failed"
	}
	m.Report = &ingest.Report{Type: "delivery-status", OriginalMessageID: ev.MessageID,
		Recipients: []ingest.RecipientStatus{{Recipient: ev.Recipient, Action: action, Status: status, DiagnosticCode: ingest.Truncate(ev.Diagnostic, 1000)}}}
	if ev.Status != "" || ev.Diagnostic != "" {
		m.BodyText += fmt.Sprintf("\nprovider status %s: %s", ev.Status, ev.Diagnostic)
	}
	return m, ingest.Bounce, fault
}
