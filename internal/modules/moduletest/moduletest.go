// Package moduletest holds what the modules' unit tests share: an HTTP server that does what the proxy's
// chain does before a module (parse, authenticate, intercept), and clients for it. Tests only.
package moduletest

import (
	"io"
	"net/http"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// ForwardedStatus marks a response the module did not take (the proxy would have forwarded it).
const ForwardedStatus = http.StatusTeapot

// UserHeader names the test caller; ProxyLike looks it up in its callers.
const UserHeader = "X-Test-User"

// ProxyLike parses the URL exactly as kube-apiserver (request.Parse), authenticates the caller named in
// UserHeader, then lets m answer or answers ForwardedStatus.
func ProxyLike(m modules.Module, callers map[string]user.Info) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, err := request.Parse(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		caller, ok := callers[r.Header.Get(UserHeader)]
		if !ok {
			http.Error(w, "unknown test user", http.StatusUnauthorized)
			return
		}
		r = r.WithContext(apirequest.WithUser(apirequest.WithRequestInfo(r.Context(), info), caller))
		h := m.Intercept(modules.Request{User: caller, Info: info, HTTP: r})
		if h == nil {
			w.WriteHeader(ForwardedStatus)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Client is a real client-go clientset for caller against serverURL, in JSON or protobuf.
func Client(t *testing.T, serverURL, caller string, protobuf bool) kubernetes.Interface {
	t.Helper()
	cfg := &rest.Config{Host: serverURL, WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set(UserHeader, caller)
			return rt.RoundTrip(r)
		})
	}}
	if protobuf {
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Do sends one request as caller and returns status, content type and body.
func Do(t *testing.T, serverURL, method, caller, path, accept string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, serverURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(UserHeader, caller)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// Eventually polls cond for up to 10 s.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
