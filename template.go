package dripdrop

import (
	"errors"

	"github.com/dripdrop/dripdrop/spintax"
)

// ValidateTemplate checks a subject or body at authoring time: malformed
// spintax or variable tokens, or a template over 64 KiB, are a 422
// invalid_spintax naming the byte offset and reason. With spin false the
// braces are literal and only {{variable}} tokens are checked.
func ValidateTemplate(field, text string, spin bool) error {
	var err error
	if spin {
		err = spintax.Validate(text)
	} else {
		_, err = spintax.ParseVariablesOnly(text)
	}
	if err == nil {
		return nil
	}
	e := &Error{Code: ECodeInvalidSpintax, Field: field, Message: err.Error()}
	var se *spintax.SyntaxError
	if errors.As(err, &se) {
		e.Extra = map[string]any{"offset": se.Offset, "reason": se.Reason}
	}
	return e
}
