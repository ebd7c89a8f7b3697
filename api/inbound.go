package api

import (
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/ingest"
)

// inbound serves POST /v1/inbound: a normalized JSON message
// (docs/ingest.md#json-fields-post-v1inbound).
// 201 with what it did; a duplicate answers 200 with the original result.
func (s *Server) inbound(w http.ResponseWriter, r *http.Request) error {
	var in ingest.JSONInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	p, err := in.Parse()
	if err != nil {
		return err
	}
	res, err := s.store.Ingest(r.Context(), tenantOf(r), ingest.InboundInput{
		Provider: p.Provider, AdapterID: p.AdapterID, Message: p.Message, Intent: p.Intent, ReturnAt: p.ReturnAt,
	})
	if err != nil {
		return err
	}
	return writeInboundResult(w, res)
}

// inboundRaw serves POST /v1/inbound/raw: one message/rfc822 message of at
// most 10 MiB, with an optional ?adapter_id= and ?provider=.
func (s *Server) inboundRaw(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "message/rfc822" {
		return dripdrop.Errorf(dripdrop.ECodeUnsupportedMedia, "Content-Type", "send the raw message as message/rfc822")
	}
	in := ingest.InboundInput{Provider: r.URL.Query().Get("provider")}
	if len(in.Provider) > 64 {
		return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "provider", "provider must be 1-64 characters")
	}
	if v := r.URL.Query().Get("adapter_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "adapter_id", "adapter_id must be a uuid")
		}
		in.AdapterID = &id
	}
	raw, err := readBody(w, r, ingest.MaxRawSize)
	if err != nil {
		return err
	}
	in.Message, err = parseRaw(raw, s.store.Now())
	if err != nil {
		return err
	}
	res, err := s.store.Ingest(r.Context(), tenantOf(r), in)
	if err != nil {
		return err
	}
	return writeInboundResult(w, res)
}

// parseRaw maps raw parsing errors to problems.
func parseRaw(raw []byte, now time.Time) (*ingest.Message, error) {
	m, err := ingest.ParseRaw(raw, now)
	if errors.Is(err, ingest.ErrTooLarge) {
		return nil, &dripdrop.Error{Code: dripdrop.ECodePayloadTooLarge, Field: "body", Message: "messages are limited to 10 MiB"}
	}
	if err != nil {
		return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "body", "the body is not a readable RFC 5322 message")
	}
	return m, nil
}

func writeInboundResult(w http.ResponseWriter, res ingest.InboundResult) error {
	status := http.StatusCreated
	if res.Duplicate {
		status = http.StatusOK
	}
	return writeJSON(w, status, res)
}
