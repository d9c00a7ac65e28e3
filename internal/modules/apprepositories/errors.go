package apprepositories

import (
	"encoding/json"
	"net/http"
)

// apiError is the documented error body: {"code": N, "message": "..."}, N being the HTTP status.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// writeJSON answers v with code and returns code (for the metrics).
func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return code
}

func writeError(w http.ResponseWriter, code int, message string) int {
	return writeJSON(w, code, apiError{Code: code, Message: message})
}

// writeAPIError answers with the API server's verdict (403, 404, 409...) on what the caller asked. An
// invalid object (422) is the caller's bad request (400); anything else is the proxy's failure (500).
func writeAPIError(w http.ResponseWriter, doing string, err error) int {
	code, message := apiStatus(err)
	switch {
	case code == http.StatusUnprocessableEntity:
		code = http.StatusBadRequest
	case code < 400 || code > 599:
		code, message = http.StatusInternalServerError, err.Error()
	}
	return writeError(w, code, doing+": "+message)
}
