package dripdrop

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes are part of the public API: clients switch on them, so they
// never change once released. This package holds codes only; the HTTP
// status each one is answered with is the API's business (package api,
// status.go).
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
	// Recipient checks at enrollment (docs/preflight.md#recipients).
	ECodeRoleAddress         = "role_address"
	ECodeDisposableDomain    = "disposable_domain"
	ECodeUndeliverableDomain = "undeliverable_domain"
	ECodePoolExhausted       = "pool_exhausted"
	ECodeBranchCycle         = "branch_cycle"
	ECodeForbiddenTarget     = "forbidden_target"
	ECodeTooManyAuthFailures = "too_many_auth_failures"
	ECodeTimeout             = "timeout"
	ECodeDatabaseUnavailable = "database_unavailable"
	ECodeUnavailable         = "unavailable"
	ECodeInternal            = "internal"
)

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
		ECodeIdempotencyReused, ECodeIdempotencyInFlight, ECodeConflict, ECodeInvalidState, ECodeSuppressed, ECodePoolExhausted, ECodeBranchCycle,
		ECodeRoleAddress, ECodeDisposableDomain, ECodeUndeliverableDomain,
		ECodeForbiddenTarget, ECodeTooManyAuthFailures, ECodeTimeout, ECodeDatabaseUnavailable, ECodeUnavailable, ECodeInternal,
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
	ECodeRoleAddress:         "Recipient is a role address",
	ECodeDisposableDomain:    "Recipient uses a disposable-mailbox service",
	ECodeUndeliverableDomain: "Recipient domain accepts no mail",
	ECodePoolExhausted:       "No pool member can take the contact",
	ECodeBranchCycle:         "Sequence branches would form a cycle",
	ECodeForbiddenTarget:     "Destination not allowed (internal address or port)",
	ECodeTooManyAuthFailures: "Too many failed authentications from this address",
	ECodeTimeout:             "Request timed out",
	ECodeDatabaseUnavailable: "Database temporarily unavailable",
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
