package dripdrop

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes are part of the public API: clients switch on them, so they
// never change once released. HTTP status follows from the code.
const (
	ECodeUnauthorized        = "unauthorized"
	ECodeForbidden           = "forbidden"
	ECodeNotFound            = "not_found"
	ECodeMethodNotAllowed    = "method_not_allowed"
	ECodeInvalidJSON         = "invalid_json"
	ECodeInvalidUTF8         = "invalid_utf8"
	ECodeInvalidCharacter    = "invalid_character"
	ECodeUnknownField        = "unknown_field"
	ECodeInvalidType         = "invalid_type"
	ECodeRequired            = "required"
	ECodeInvalidValue        = "invalid_value"
	ECodeOutOfRange          = "out_of_range"
	ECodeTooLong             = "too_long"
	ECodeInvalidEmail        = "invalid_email"
	ECodeInvalidTimezone     = "invalid_timezone"
	ECodeInvalidCursor       = "invalid_cursor"
	ECodeInvalidSpintax      = "invalid_spintax"
	ECodePayloadTooLarge     = "payload_too_large"
	ECodeUnsupportedMedia    = "unsupported_media_type"
	ECodeAlreadyExists       = "already_exists"
	ECodeInUse               = "in_use"
	ECodeVersionImmutable    = "version_immutable"
	ECodeIdempotencyReused   = "idempotency_key_reused"
	ECodeIdempotencyInFlight = "idempotency_key_in_progress"
	ECodeConflict            = "conflict"
	ECodeInvalidState        = "invalid_state"
	ECodeSuppressed          = "suppressed"
	ECodePoolExhausted       = "pool_exhausted"
	ECodeTimeout             = "timeout"
	ECodeUnavailable         = "unavailable"
	ECodeInternal            = "internal"
)

var codeStatus = map[string]int{
	ECodeUnauthorized:        http.StatusUnauthorized,
	ECodeForbidden:           http.StatusForbidden,
	ECodeNotFound:            http.StatusNotFound,
	ECodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	ECodeInvalidJSON:         http.StatusBadRequest,
	ECodeInvalidUTF8:         http.StatusBadRequest,
	ECodeInvalidCursor:       http.StatusBadRequest,
	ECodePayloadTooLarge:     http.StatusRequestEntityTooLarge,
	ECodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	ECodeAlreadyExists:       http.StatusConflict,
	ECodeInUse:               http.StatusConflict,
	ECodeVersionImmutable:    http.StatusConflict,
	ECodeIdempotencyInFlight: http.StatusConflict,
	ECodeConflict:            http.StatusConflict,
	ECodeInvalidState:        http.StatusConflict,
	ECodePoolExhausted:       http.StatusConflict,
	ECodeTimeout:             http.StatusServiceUnavailable,
	ECodeUnavailable:         http.StatusServiceUnavailable,
	ECodeInternal:            http.StatusInternalServerError,
}

// Error is the engine's typed error: a stable code, the offending field when
// there is one, and a human message. Everything else is an internal error.
type Error struct {
	Code    string
	Field   string
	Message string
	// Extra carries structured details (for example evicted_adapter_ids of
	// pool_exhausted); it is rendered into the problem document.
	Extra map[string]any
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Code, e.Message, e.Field)
	}
	return e.Code + ": " + e.Message
}

// Status is the HTTP status of the error's code; validation codes are 422.
func (e *Error) Status() int {
	if s, ok := codeStatus[e.Code]; ok {
		return s
	}
	return http.StatusUnprocessableEntity
}

// Errorf builds an *Error.
func Errorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound is the uniform answer for missing rows and rows of other tenants:
// the engine never confirms that another tenant's id exists.
func NotFound(what string) *Error {
	return &Error{Code: ECodeNotFound, Message: what + " not found"}
}

// ErrorCode returns the code of err if it is an *Error, else ECodeInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ECodeInternal
}

// ErrorCodes lists every stable error code.
func ErrorCodes() []string {
	return []string{
		ECodeUnauthorized, ECodeForbidden, ECodeNotFound, ECodeMethodNotAllowed, ECodeInvalidJSON, ECodeInvalidUTF8,
		ECodeInvalidCharacter, ECodeUnknownField, ECodeInvalidType, ECodeRequired, ECodeInvalidValue, ECodeOutOfRange,
		ECodeTooLong, ECodeInvalidEmail, ECodeInvalidTimezone, ECodeInvalidCursor, ECodeInvalidSpintax,
		ECodePayloadTooLarge, ECodeUnsupportedMedia, ECodeAlreadyExists, ECodeInUse, ECodeVersionImmutable,
		ECodeIdempotencyReused, ECodeIdempotencyInFlight, ECodeConflict, ECodeInvalidState, ECodeSuppressed, ECodePoolExhausted,
		ECodeTimeout, ECodeUnavailable, ECodeInternal,
	}
}

// errorTitles are the RFC 9457 titles of the problem types: a short,
// stable description of the kind of problem (the detail says what exactly).
var errorTitles = map[string]string{
	ECodeUnauthorized:        "Missing or invalid credentials",
	ECodeForbidden:           "Not allowed for these credentials",
	ECodeNotFound:            "Resource not found",
	ECodeMethodNotAllowed:    "Method not allowed on this route",
	ECodeInvalidJSON:         "Malformed JSON body",
	ECodeInvalidUTF8:         "Body is not valid UTF-8",
	ECodeInvalidCharacter:    "Forbidden character in a value",
	ECodeUnknownField:        "Unknown field",
	ECodeInvalidType:         "Field has the wrong JSON type",
	ECodeRequired:            "Required field missing",
	ECodeInvalidValue:        "Invalid field value",
	ECodeOutOfRange:          "Value out of range",
	ECodeTooLong:             "Value too long",
	ECodeInvalidEmail:        "Invalid e-mail address",
	ECodeInvalidTimezone:     "Unknown IANA time zone",
	ECodeInvalidCursor:       "Invalid pagination cursor",
	ECodeInvalidSpintax:      "Malformed spintax template",
	ECodePayloadTooLarge:     "Request body too large",
	ECodeUnsupportedMedia:    "Unsupported Content-Type",
	ECodeAlreadyExists:       "Resource already exists",
	ECodeInUse:               "Resource still in use",
	ECodeVersionImmutable:    "Sequence version is immutable",
	ECodeIdempotencyReused:   "Idempotency-Key reused for a different request",
	ECodeIdempotencyInFlight: "Request with this Idempotency-Key still in progress",
	ECodeConflict:            "Conflicting concurrent change",
	ECodeInvalidState:        "Action not allowed in the current state",
	ECodeSuppressed:          "Recipient is suppressed",
	ECodePoolExhausted:       "No pool member can take the contact",
	ECodeTimeout:             "Request timed out",
	ECodeUnavailable:         "Service temporarily unavailable",
	ECodeInternal:            "Internal error",
}

// ErrorTitle is the title of a problem type: what kind of problem the code
// stands for. Codes without a registered title get their words capitalised.
func ErrorTitle(code string) string {
	if t, ok := errorTitles[code]; ok {
		return t
	}
	if code == "" {
		return "Error"
	}
	t := strings.ReplaceAll(code, "_", " ")
	return strings.ToUpper(t[:1]) + t[1:]
}

// ErrorStatus is the HTTP status of a code.
func ErrorStatus(code string) int { return (&Error{Code: code}).Status() }
