package db

import (
	"errors"
	"fmt"

	"github.com/dripdrop/dripdrop"
)

// Errors leaving the package say which operation failed: every exported
// function or method wraps its error once, at its exit, as "op: cause" with
// %w, so errors.Is and errors.As still reach the cause (pgx.ErrNoRows,
// context.Canceled, the *pgconn.PgError that Unavailable looks at).
// Internal helpers return their errors bare (docs/architecture.md).
//
// Domain errors (*dripdrop.Error) are returned as they are: their message is
// the detail of the API's problem document, shown to users, and must not
// carry internal operation names.

// wrap returns err prefixed with op, nil for nil, and a domain error
// unchanged.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *dripdrop.Error
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}

// wrapErr is wrap for a deferred call on a named result:
//
//	func (s *Store) Enroll(...) (_ dripdrop.Enrollment, _ bool, err error) {
//		defer wrapErr(&err, "enroll")
func wrapErr(errp *error, op string) {
	*errp = wrap(op, *errp)
}
