package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of this API.
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(OpenAPI)
	return err
}
