package api

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) error {
	var in dripdrop.EnrollInput
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	e, created, err := s.store.Enroll(r.Context(), tenantOf(r), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, e)
}

type batchRequest struct {
	SequenceKey *string                 `json:"sequence_key"`
	Contacts    []dripdrop.ContactInput `json:"contacts"`
}

type batchResponse struct {
	Created  int              `json:"created"`
	Existing int              `json:"existing"`
	Errors   int              `json:"errors"`
	Results  []db.BatchResult `json:"results"`
}

// enrollBatch imports up to 10 000 contacts as JSON
// ({"sequence_key", "contacts": [...]}) or CSV (text/csv with
// ?sequence_key=; a header row names the columns; unknown columns become vars).
func (s *Server) enrollBatch(w http.ResponseWriter, r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := readBody(w, r, maxBatchBody)
	if err != nil {
		return err
	}
	var seqKey string
	var contacts []dripdrop.ContactInput
	switch mt {
	case "text/csv":
		seqKey = r.URL.Query().Get("sequence_key")
		if contacts, err = parseContactsCSV(body); err != nil {
			return err
		}
	case "", "application/json":
		in, ok := decodeBatchJSON(body)
		if !ok {
			if err := decodeBytes(body, &in); err != nil {
				return err
			}
		}
		if in.SequenceKey != nil {
			seqKey = *in.SequenceKey
		}
		contacts = in.Contacts
	default:
		return unsupportedMedia(r.Header.Get("Content-Type"), "application/json", "text/csv")
	}
	results, err := s.store.EnrollBatch(r.Context(), tenantOf(r), seqKey, contacts)
	if err != nil {
		return err
	}
	resp := batchResponse{Results: results}
	for _, res := range results {
		switch res.Status {
		case "created":
			resp.Created++
		case "existing":
			resp.Existing++
		default:
			resp.Errors++
		}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// parseContactsCSV reads a header row and one contact per line.
func parseContactsCSV(body []byte) ([]dripdrop.ContactInput, error) {
	if err := checkCSVText(body); err != nil {
		return nil, err
	}
	cr := csv.NewReader(bytes.NewReader(body))
	cr.Comma = csvDelimiter(body)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "body", "the CSV needs a header row")
	}
	hasEmail := false
	for i := range header {
		header[i] = csvColumn(header[i])
		hasEmail = hasEmail || header[i] == "email"
	}
	if !hasEmail {
		return nil, dripdrop.Errorf(dripdrop.ECodeRequired, "email", "the CSV header must have an email column (email, e-mail, email address, …)")
	}
	var out []dripdrop.ContactInput
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "body", "CSV line %d: %v", pe.Line, pe.Err)
			}
			return nil, dripdrop.Errorf(dripdrop.ECodeInvalidValue, "body", "malformed CSV")
		}
		if len(out) >= db.MaxBatch {
			return nil, dripdrop.Errorf(dripdrop.ECodeOutOfRange, "contacts", "at most %d contacts per batch", db.MaxBatch)
		}
		var c dripdrop.ContactInput
		for i, v := range rec {
			if i >= len(header) || header[i] == "" {
				continue
			}
			v := v
			switch header[i] {
			case "email":
				c.Email = &v
			case "first_name":
				c.FirstName = &v
			case "last_name":
				c.LastName = &v
			case "company":
				c.Company = &v
			case "timezone":
				c.Timezone = &v
			default:
				if v == "" {
					continue
				}
				if c.Vars == nil {
					c.Vars = map[string]any{}
				}
				c.Vars[header[i]] = v
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// csvAliases map normalised header names to contact fields.
var csvAliases = map[string]string{
	"email": "email", "e_mail": "email", "email_address": "email", "e_mail_address": "email", "mail": "email",
	"first_name": "first_name", "firstname": "first_name", "first": "first_name", "given_name": "first_name", "forename": "first_name",
	"last_name": "last_name", "lastname": "last_name", "last": "last_name", "surname": "last_name", "family_name": "last_name",
	"company": "company", "company_name": "company", "organization": "company", "organisation": "company",
	"timezone": "timezone", "time_zone": "timezone", "tz": "timezone",
}

// csvColumn normalises a header cell ("First Name", "E-mail", "first.name"
// → first_name, email, first_name): lowercase, runs of anything but letters
// and digits become "_"; aliases then name the contact fields, and other
// columns become vars under the normalised name.
func csvColumn(h string) string {
	h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
	var b strings.Builder
	sep := false
	for _, r := range h {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if sep && b.Len() > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
			sep = false
		} else {
			sep = true
		}
	}
	n := b.String()
	if f, ok := csvAliases[n]; ok {
		return f
	}
	return n
}

// csvDelimiter picks the delimiter of the header line: ';' (spreadsheets in
// many locales), tab, or ',' (the default), whichever occurs most outside
// quotes.
func csvDelimiter(body []byte) rune {
	counts := map[rune]int{}
	quoted := false
	for _, r := range string(body) {
		if r == '"' {
			quoted = !quoted
			continue
		}
		if !quoted && (r == '\n' || r == '\r') {
			break
		}
		if !quoted && (r == ',' || r == ';' || r == '\t') {
			counts[r]++
		}
	}
	best := ','
	for _, d := range []rune{';', '\t'} {
		if counts[d] > counts[best] {
			best = d
		}
	}
	return best
}

func checkCSVText(body []byte) error {
	if err := checkJSONText(body); err != nil {
		var e *dripdrop.Error
		if errors.As(err, &e) {
			c := *e
			c.Field = "body"
			return &c
		}
		return err
	}
	return nil
}
