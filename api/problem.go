package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/db"
)

// Body limits (docs/security.md#availability).
const (
	maxBody      = 1 << 20  // 1 MiB for ordinary requests
	maxBatchBody = 32 << 20 // batch imports
)

// databaseRetryAfter is the Retry-After (seconds) of database_unavailable.
const databaseRetryAfter = 5

// problem is an RFC 9457 problem document with dripdrop's stable code and
// the offending field.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var e *dripdrop.Error
	if !errors.As(err, &e) {
		if db.Unavailable(err) {
			// An outage is not the client's fault and not a bug: tell the
			// client when to come back: 503 with Retry-After, never 500
			// (docs/security.md#availability).
			e = dripdrop.Errorf(dripdrop.ECodeDatabaseUnavailable, "", "the database is unavailable; retry shortly")
		} else if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
			e = dripdrop.Errorf(dripdrop.ECodeTimeout, "", "the request took too long")
		} else {
			if log != nil {
				log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			e = dripdrop.Errorf(dripdrop.ECodeInternal, "", "internal error")
		}
	}
	status := problemStatus(e.Code)
	doc := map[string]any{}
	for k, v := range e.Extra {
		doc[k] = v
	}
	p := problem{Type: problemTypeBase + e.Code, Title: dripdrop.ErrorTitle(e.Code), Status: status, Code: e.Code, Detail: e.Message, Field: e.Field}
	b, _ := json.Marshal(p)
	if len(doc) > 0 {
		_ = json.Unmarshal(b, &doc)
		b, _ = json.Marshal(doc)
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if e.Code == dripdrop.ECodeDatabaseUnavailable {
		h.Set("Retry-After", strconv.Itoa(databaseRetryAfter))
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="dripdrop"`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// readBody reads at most limit bytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &dripdrop.Error{Code: dripdrop.ECodePayloadTooLarge, Field: "body", Message: "request body larger than " + strconv.FormatInt(limit, 10) + " bytes"}
		}
		return nil, &dripdrop.Error{Code: dripdrop.ECodeInvalidJSON, Field: "body", Message: "cannot read request body"}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// decodeJSON reads a JSON object into dst, rejecting unknown fields, invalid
// UTF-8, NUL characters, wrong types and trailing data with a precise field.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return unsupportedMedia(ct, "application/json")
		}
	}
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return err
	}
	return decodeBytes(body, dst)
}

// unsupportedMedia is the 415 answer: it names the header to send.
func unsupportedMedia(got string, want ...string) error {
	if got == "" {
		got = "none"
	}
	return dripdrop.Errorf(dripdrop.ECodeUnsupportedMedia, "Content-Type",
		"send the header Content-Type: %s (got %q)", strings.Join(want, " or Content-Type: "), got)
}

func decodeBytes(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return dripdrop.Errorf(dripdrop.ECodeInvalidJSON, "body", "the request body is empty; a JSON object is expected")
	}
	if err := checkJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, body)
	}
	if dec.More() {
		return dripdrop.Errorf(dripdrop.ECodeInvalidJSON, "body", "unexpected data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return dripdrop.Errorf(dripdrop.ECodeInvalidJSON, "body", "unexpected data after the JSON value")
	}
	return nil
}

func jsonError(err error, body []byte) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var de *dripdrop.Error
	switch {
	case errors.As(err, &de):
		return de
	case errors.As(err, &se):
		return dripdrop.Errorf(dripdrop.ECodeInvalidJSON, fieldAtOffset(body, se.Offset), "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = fieldAtOffset(body, te.Offset)
		}
		if field == "" {
			field = "body"
		}
		return dripdrop.Errorf(dripdrop.ECodeInvalidType, field, "%s must be %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return dripdrop.Errorf(dripdrop.ECodeInvalidJSON, "body", "the JSON document ends early")
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return dripdrop.Errorf(dripdrop.ECodeUnknownField, name, "unknown field %q", name)
	}
	// Errors from field types' own decoders (for example time.Time).
	return dripdrop.Errorf(dripdrop.ECodeInvalidValue, "body", "%s", strings.TrimPrefix(msg, "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}

// checkJSONText rejects invalid UTF-8 and NUL characters (raw or escaped),
// which PostgreSQL text cannot store and mail headers must not carry; the
// error names the JSON field that holds them.
func checkJSONText(body []byte) error {
	if !utf8.Valid(body) {
		off := 0
		for off < len(body) {
			r, size := utf8.DecodeRune(body[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return dripdrop.Errorf(dripdrop.ECodeInvalidUTF8, fieldAtOffset(body, int64(off)), "invalid UTF-8 at byte %d", off)
	}
	if i := bytes.IndexByte(body, 0); i >= 0 {
		return dripdrop.Errorf(dripdrop.ECodeInvalidCharacter, fieldAtOffset(body, int64(i)), "NUL character at byte %d", i)
	}
	lower := bytes.ToLower(body)
	for from := 0; ; {
		i := bytes.Index(lower[from:], []byte(`\u0000`))
		if i < 0 {
			break
		}
		i += from
		// Skip an escaped backslash followed by "u0000" literally.
		bs := 0
		for j := i - 1; j >= 0 && body[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return dripdrop.Errorf(dripdrop.ECodeInvalidCharacter, fieldAtOffset(body, int64(i)), "NUL character (\\u0000) at byte %d", i)
		}
		from = i + 1
	}
	return nil
}

// fieldAtOffset returns the dotted path of the JSON value that contains the
// byte at off ("steps[1].subject"), or "body" when it cannot tell.
func fieldAtOffset(body []byte, off int64) string {
	type frame struct {
		array bool
		index int
		key   string
		// expectKey is true in an object before each key.
		expectKey bool
	}
	var stack []frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.array {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			} else if f.key != "" {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	// Scan with invalid bytes replaced one for one, so offsets still match.
	dec := json.NewDecoder(bytes.NewReader(body))
	if !utf8.Valid(body) {
		fixed := make([]byte, len(body))
		copy(fixed, body)
		for i := 0; i < len(fixed); {
			r, size := utf8.DecodeRune(fixed[i:])
			if r == utf8.RuneError && size <= 1 {
				fixed[i] = '?'
				size = 1
			}
			i += size
		}
		dec = json.NewDecoder(bytes.NewReader(fixed))
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return path()
		}
		end := dec.InputOffset()
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				if end > off {
					return path()
				}
				stack = append(stack, frame{expectKey: true})
				continue
			case '[':
				if end > off {
					return path()
				}
				stack = append(stack, frame{array: true, index: 0})
				continue
			case '}', ']':
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
				if end > off {
					return path()
				}
			}
		default:
			if len(stack) > 0 && !stack[len(stack)-1].array && stack[len(stack)-1].expectKey {
				if s, ok := v.(string); ok {
					stack[len(stack)-1].key = s
					stack[len(stack)-1].expectKey = false
					if end > off {
						return path()
					}
					continue
				}
			}
			if end > off {
				return path()
			}
		}
		// A value finished: advance the enclosing container.
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.array {
				top.index++
			} else {
				top.expectKey = true
			}
		}
	}
}
