package api

import (
	"errors"
	"net/http"

	"github.com/dripdrop/dripdrop"
	"github.com/dripdrop/dripdrop/spintax"
)

type previewRequest struct {
	Template *string           `json:"template"`
	N        *int              `json:"n"`
	Vars     map[string]string `json:"vars"`
}

type previewError struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Offset  *int   `json:"offset,omitempty"`
	Message string `json:"message"`
}

type previewResponse struct {
	Renderings []string          `json:"renderings"`
	Distinct   int               `json:"distinct"`
	Variants   int64             `json:"variants"`
	Warnings   []spintax.Warning `json:"warnings"`
	Errors     []previewError    `json:"errors"`
}

// spintaxPreview renders a template n times (seeds of attempt windows
// 0..n-1) and reports distinct outputs, the number of variants, warnings
// and errors. Malformed templates are reported in errors, not rejected.
func (s *Server) spintaxPreview(w http.ResponseWriter, r *http.Request) error {
	var in previewRequest
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Template == nil {
		return dripdrop.Errorf(dripdrop.ECodeRequired, "template", "template is required")
	}
	if len(*in.Template) > spintax.MaxSize {
		return dripdrop.Errorf(dripdrop.ECodeTooLong, "template", "template is longer than %d bytes", spintax.MaxSize)
	}
	n := 10
	if in.N != nil {
		if *in.N < 1 || *in.N > 100 {
			return dripdrop.Errorf(dripdrop.ECodeOutOfRange, "n", "n must be between 1 and 100")
		}
		n = *in.N
	}
	resp := previewResponse{Renderings: []string{}, Warnings: []spintax.Warning{}, Errors: []previewError{}}
	res, err := spintax.Preview(*in.Template, n, spintax.MapVars(in.Vars))
	var se *spintax.SyntaxError
	var mv *spintax.MissingVariableError
	switch {
	case errors.As(err, &se):
		off := se.Offset
		resp.Errors = append(resp.Errors, previewError{Code: dripdrop.ECodeInvalidSpintax, Reason: se.Reason, Offset: &off, Message: se.Error()})
	case errors.As(err, &mv):
		resp.Errors = append(resp.Errors, previewError{Code: "missing_variable", Reason: mv.Name, Message: mv.Error()})
	case err != nil:
		return err
	}
	if res.Renderings != nil {
		resp.Renderings = res.Renderings
	}
	if res.Warnings != nil {
		resp.Warnings = res.Warnings
	}
	resp.Distinct, resp.Variants = res.Distinct, res.Variants
	return writeJSON(w, http.StatusOK, resp)
}
