package releases

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/releases/permissions"
)

// apiError is the release API's error answer: {"code": N, "message": "..."} with the same HTTP status, and for
// a refused authorisation the missing permissions (also as a JSON string in message, which is where
// Kubeapps' dashboard reads them).
type apiError struct {
	Code      int                      `json:"code"`
	Message   string                   `json:"message"`
	Forbidden []permissions.Permission `json:"forbidden,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func newError(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func forbidden(missing []permissions.Permission) *apiError {
	list, err := json.Marshal(missing)
	if err != nil { // a []Permission always marshals; keep the answer a 403 regardless
		list = []byte("[]")
	}
	return &apiError{Code: http.StatusForbidden, Message: string(list), Forbidden: missing}
}

// clusterError turns an error of a Kubernetes call made as the caller into the API's answer. Forbidden
// reads of a release are answered by the callers of this function as not found (no oracle); here a refusal is
// a 403 and anything else an operation that failed.
func clusterError(what string, err error) *apiError {
	var api *apiError
	switch {
	case errors.As(err, &api):
		return api
	case apierrors.IsForbidden(err):
		return newError(http.StatusForbidden, "%s: %v", what, err)
	case apierrors.IsUnauthorized(err):
		return newError(http.StatusUnauthorized, "%s: %v", what, err)
	default:
		return newError(http.StatusUnprocessableEntity, "%s: %v", what, err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		klog.ErrorS(err, "Encoding release API answer")
		code, body = http.StatusInternalServerError, []byte(`{"code":500,"message":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	var api *apiError
	if !errors.As(err, &api) {
		api = newError(http.StatusInternalServerError, "%v", err)
	}
	writeJSON(w, api.Code, api)
}

func writeData(w http.ResponseWriter, code int, data any) {
	writeJSON(w, code, map[string]any{"data": data})
}
