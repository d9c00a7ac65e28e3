package request

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
)

// infoFactory parses requests exactly as kube-apiserver does, so the proxy routes on the API server's own
// reading of the URL it forwards.
var infoFactory = &apirequest.RequestInfoFactory{
	APIPrefixes:          sets.NewString("api", "apis"),
	GrouplessAPIPrefixes: sets.NewString("api"),
}

// Parse validates that the request path is canonical and returns the API server's parse of it. The caller
// must forward exactly r.URL.Path (re-encoded) and r.URL.RawQuery: that is what was parsed.
func Parse(r *http.Request) (*apirequest.RequestInfo, error) {
	if err := CanonicalPath(r); err != nil {
		return nil, err
	}
	info, err := infoFactory.NewRequestInfo(r)
	if err != nil {
		return nil, fmt.Errorf("parsing request: %w", err)
	}
	return info, nil
}

// CanonicalPath rejects paths that different parsers could read differently: dot segments, empty segments,
// trailing slashes and percent-encoded slashes. Refusing is safer than guessing which reading the API
// server will take.
func CanonicalPath(r *http.Request) error {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return fmt.Errorf("request path %q must be absolute", p)
	}
	if raw := r.URL.RawPath; raw != "" && strings.Contains(strings.ToLower(raw), "%2f") {
		return fmt.Errorf("request path %q contains an encoded slash", raw)
	}
	if p != "/" && path.Clean(p) != p {
		return fmt.Errorf("request path %q is not canonical", p)
	}
	if strings.ContainsAny(p, "\x00\\") {
		return fmt.Errorf("request path %q contains a forbidden character", p)
	}
	return nil
}
