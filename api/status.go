package api

import (
	"net/http"

	"github.com/dripdrop/dripdrop"
)

// codeStatus is the one mapping from a domain error code (dripdrop.ECode…)
// to the HTTP status of the problem document that carries it. The domain
// package owns the codes; the HTTP meaning of each lives only here. Every
// code has a row (a test checks it against the codes in errors.go), and the
// statuses openapi.yaml documents for a code agree with this table.
var codeStatus = map[string]int{
	dripdrop.ECodeUnauthorized:     http.StatusUnauthorized,
	dripdrop.ECodeForbidden:        http.StatusForbidden,
	dripdrop.ECodeNotFound:         http.StatusNotFound,
	dripdrop.ECodeMethodNotAllowed: http.StatusMethodNotAllowed,

	// Bodies that are not JSON at all, and cursors the client cannot have
	// been given by the engine.
	dripdrop.ECodeInvalidJSON:   http.StatusBadRequest,
	dripdrop.ECodeInvalidUTF8:   http.StatusBadRequest,
	dripdrop.ECodeInvalidCursor: http.StatusBadRequest,

	// Well-formed requests whose values fail validation.
	dripdrop.ECodeInvalidCharacter:    http.StatusUnprocessableEntity,
	dripdrop.ECodeUnknownField:        http.StatusUnprocessableEntity,
	dripdrop.ECodeInvalidType:         http.StatusUnprocessableEntity,
	dripdrop.ECodeRequired:            http.StatusUnprocessableEntity,
	dripdrop.ECodeInvalidValue:        http.StatusUnprocessableEntity,
	dripdrop.ECodeOutOfRange:          http.StatusUnprocessableEntity,
	dripdrop.ECodeTooLong:             http.StatusUnprocessableEntity,
	dripdrop.ECodeInvalidEmail:        http.StatusUnprocessableEntity,
	dripdrop.ECodeInvalidTimezone:     http.StatusUnprocessableEntity,
	dripdrop.ECodeInvalidSpintax:      http.StatusUnprocessableEntity,
	dripdrop.ECodeIdempotencyReused:   http.StatusUnprocessableEntity,
	dripdrop.ECodeSuppressed:          http.StatusUnprocessableEntity,
	dripdrop.ECodeRoleAddress:         http.StatusUnprocessableEntity,
	dripdrop.ECodeDisposableDomain:    http.StatusUnprocessableEntity,
	dripdrop.ECodeUndeliverableDomain: http.StatusUnprocessableEntity,
	dripdrop.ECodeForbiddenTarget:     http.StatusUnprocessableEntity,
	dripdrop.ECodeBranchCycle:         http.StatusUnprocessableEntity,

	dripdrop.ECodePayloadTooLarge:  http.StatusRequestEntityTooLarge,
	dripdrop.ECodeUnsupportedMedia: http.StatusUnsupportedMediaType,

	// The request is valid but collides with the stored state.
	dripdrop.ECodeAlreadyExists:       http.StatusConflict,
	dripdrop.ECodeInUse:               http.StatusConflict,
	dripdrop.ECodeVersionImmutable:    http.StatusConflict,
	dripdrop.ECodeIdempotencyInFlight: http.StatusConflict,
	dripdrop.ECodeConflict:            http.StatusConflict,
	dripdrop.ECodeInvalidState:        http.StatusConflict,
	dripdrop.ECodePoolExhausted:       http.StatusConflict,

	dripdrop.ECodeTooManyAuthFailures: http.StatusTooManyRequests,

	// Not the client's fault: retry later.
	dripdrop.ECodeTimeout:             http.StatusServiceUnavailable,
	dripdrop.ECodeDatabaseUnavailable: http.StatusServiceUnavailable,
	dripdrop.ECodeUnavailable:         http.StatusServiceUnavailable,
	dripdrop.ECodeInternal:            http.StatusInternalServerError,
}

// problemStatus is the HTTP status of a domain error code. A code without
// a row is a bug in the engine, answered as 500.
func problemStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
