package webserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/filters/impersonation"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// staticHeaders is an API server front-proxy configuration.
type staticHeaders struct{ user, uid, group, extra []string }

func (s staticHeaders) UsernameHeaders() []string     { return s.user }
func (s staticHeaders) UIDHeaders() []string          { return s.uid }
func (s staticHeaders) GroupHeaders() []string        { return s.group }
func (s staticHeaders) ExtraHeaderPrefixes() []string { return s.extra }

var (
	defaultHeaders = staticHeaders{user: []string{"X-Remote-User"}, uid: []string{"X-Remote-Uid"}, group: []string{"X-Remote-Group"}, extra: []string{"X-Remote-Extra-"}}
	customHeaders  = staticHeaders{user: []string{"X-Custom-User", "X-Remote-User"}, uid: []string{"X-Custom-Uid"}, group: []string{"X-Custom-Group", "X-Remote-Group"}, extra: []string{"X-Custom-Extra-", "X-Remote-Extra-"}}
)

// Users whose identity must reach the API server unchanged, with the extra keys that need encoding.
var identityCases = []struct {
	name string
	user *user.DefaultInfo
}{
	{"name only", &user.DefaultInfo{Name: "alice"}},
	{"groups", &user.DefaultInfo{Name: "alice", Groups: []string{"dev", "system:authenticated", "a,b", "with space"}}},
	{"service account with uid and extras", &user.DefaultInfo{
		Name: "system:serviceaccount:apps:robot", UID: "8f0c6c5e-0000-4000-8000-000000000001",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:apps"},
		Extra: map[string][]string{
			"authentication.kubernetes.io/credential-id": {"JTI=abc"},
			"authentication.kubernetes.io/pod-name":      {"robot-0"},
		},
	}},
	{"extra keys that are not header tokens", &user.DefaultInfo{
		Name: "bob",
		Extra: map[string][]string{
			"scopes":          {"a", "b"},
			"100%-sure":       {"yes"},
			"key with spaces": {"v"},
			"ünïcode":         {"v"},
			"colon:equals=":   {"v"},
		},
	}},
}

// TestFrontProxyIdentityReadsBackExactly: what setFrontProxyIdentity writes, the API server's own
// request-header authenticator reads back as the same user, whatever the client sent before.
func TestFrontProxyIdentityReadsBackExactly(t *testing.T) {
	for _, names := range []staticHeaders{defaultHeaders, customHeaders} {
		for _, tt := range identityCases {
			t.Run(names.user[0]+"/"+tt.name, func(t *testing.T) {
				h := http.Header{
					"Accept":                {"application/json"},
					"X-Remote-User":         {"admin"},
					"x-custom-user":         {"admin"},
					"X-Custom-Group":        {"system:masters"},
					"X-Remote-Extra-Foo":    {"forged"},
					"x-custom-extra-scopes": {"forged"},
					"X-Custom-Uid":          {"0"},
				}
				if err := setFrontProxyIdentity(h, names, tt.user); err != nil {
					t.Fatal(err)
				}
				authn, err := headerrequest.New(names.user, names.uid, names.group, names.extra)
				if err != nil {
					t.Fatal(err)
				}
				resp, ok, err := authn.AuthenticateRequest(&http.Request{Header: h})
				if err != nil || !ok {
					t.Fatalf("API server's authenticator: ok=%v err=%v", ok, err)
				}
				got := resp.User
				if got.GetName() != tt.user.Name || got.GetUID() != tt.user.UID || !reflect.DeepEqual(nonNil(got.GetGroups()), nonNil(tt.user.Groups)) {
					t.Fatalf("API server reads %+v, want %+v", got, tt.user)
				}
				wantExtra := tt.user.Extra
				if wantExtra == nil {
					wantExtra = map[string][]string{}
				}
				if !reflect.DeepEqual(got.GetExtra(), wantExtra) {
					t.Fatalf("API server reads extras %v, want %v", got.GetExtra(), wantExtra)
				}
				if h.Get("Accept") != "application/json" {
					t.Fatalf("other headers were touched: %v", h)
				}
			})
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestImpersonationHeadersReadBackExactly: what setImpersonation writes, the API server's impersonation
// filters (legacy, and constrained, which kube-apiserver runs since 1.36) turn back into the same user, with
// system:authenticated added as for any impersonated user. The request is handled, so nothing was refused.
func TestImpersonationHeadersReadBackExactly(t *testing.T) {
	allowAll := authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionAllow, "", nil
	})
	filters := map[string]func(http.Handler) http.Handler{
		"legacy": func(h http.Handler) http.Handler { return impersonation.WithImpersonation(h, allowAll, codecs) },
		"constrained": func(h http.Handler) http.Handler {
			return impersonation.WithConstrainedImpersonation(h, allowAll, codecs)
		},
	}
	for name, filter := range filters {
		for _, tt := range identityCases {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				var got user.Info
				h := filter(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got, _ = apirequest.UserFrom(r.Context()) }))
				r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/apps/configmaps", nil)
				r = r.WithContext(apirequest.WithRequestInfo(apirequest.WithUser(r.Context(), &user.DefaultInfo{Name: "system:serviceaccount:tenant-proxy-system:tenant-proxy"}),
					&apirequest.RequestInfo{IsResourceRequest: true, Verb: "list", APIVersion: "v1", Namespace: "apps", Resource: "configmaps"}))
				SetImpersonation(r.Header, tt.user)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if got == nil {
					t.Fatalf("impersonation refused: %d %s", rec.Code, rec.Body)
				}
				want := &user.DefaultInfo{Name: tt.user.Name, UID: tt.user.UID, Groups: tt.user.Groups, Extra: tt.user.Extra}
				if !slices.Contains(want.Groups, user.AllAuthenticated) {
					want.Groups = append(slices.Clip(want.Groups), user.AllAuthenticated)
				}
				if got.GetName() != want.Name || got.GetUID() != want.UID || !slices.Equal(got.GetGroups(), want.Groups) || !equalExtra(got.GetExtra(), want.Extra) {
					t.Fatalf("API server read %+v, want %+v", got, want)
				}
			})
		}
	}
}

func equalExtra(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestServiceAccountGroupsLeftToTheAPIServer: only the exact groups the API server derives for a
// ServiceAccount are left out of Impersonate-Group; any other set is sent as it is.
func TestServiceAccountGroupsLeftToTheAPIServer(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		groups []string
		sent   bool
	}{
		{"derived, with system:authenticated", "system:serviceaccount:apps:robot", []string{"system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated"}, false},
		{"derived, without system:authenticated", "system:serviceaccount:apps:robot", []string{"system:serviceaccounts", "system:serviceaccounts:apps"}, false},
		{"another namespace's group", "system:serviceaccount:apps:robot", []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}, true},
		{"an extra group", "system:serviceaccount:apps:robot", []string{"system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated", "system:masters"}, true},
		{"a group missing", "system:serviceaccount:apps:robot", []string{"system:serviceaccounts", "system:authenticated"}, true},
		{"another order", "system:serviceaccount:apps:robot", []string{"system:serviceaccounts:apps", "system:serviceaccounts", "system:authenticated"}, true},
		{"not a ServiceAccount", "alice", []string{"system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated"}, true},
		{"malformed ServiceAccount name", "system:serviceaccount:apps", []string{"system:serviceaccounts", "system:serviceaccounts:apps"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetImpersonation(h, &user.DefaultInfo{Name: tt.user, Groups: tt.groups})
			got, sent := h[transport.ImpersonateGroupHeader]
			if sent != tt.sent || (sent && !slices.Equal(got, tt.groups)) {
				t.Fatalf("Impersonate-Group = %v (sent %v), want sent %v", got, sent, tt.sent)
			}
		})
	}
}

// TestCanCarry: front-proxy headers are used only when the API server's configuration can express the
// whole identity; otherwise the request is impersonated.
func TestCanCarry(t *testing.T) {
	withUID := &user.DefaultInfo{Name: "robot", UID: "1"}
	withExtra := &user.DefaultInfo{Name: "robot", Extra: map[string][]string{"k": {"v"}}}
	tests := []struct {
		name  string
		names staticHeaders
		user  user.Info
		want  bool
	}{
		{"default names, uid", defaultHeaders, withUID, true},
		{"no uid header, user without uid", staticHeaders{user: defaultHeaders.user, group: defaultHeaders.group}, &user.DefaultInfo{Name: "alice"}, true},
		{"no uid header, user with uid", staticHeaders{user: defaultHeaders.user, group: defaultHeaders.group}, withUID, false},
		{"no extra prefix, user with extras", staticHeaders{user: defaultHeaders.user, group: defaultHeaders.group}, withExtra, false},
		{"front proxy not configured", staticHeaders{}, &user.DefaultInfo{Name: "alice"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canCarry(tt.names, tt.user); got != tt.want {
				t.Fatalf("canCarry = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIdentityRoundTripperSendsOnlyItsOwnIdentity: in both modes, no client identity header survives and
// the other mode's headers are never present.
func TestIdentityRoundTripperSendsOnlyItsOwnIdentity(t *testing.T) {
	caller := &user.DefaultInfo{Name: "alice", Groups: []string{"dev"}}
	forged := http.Header{
		"Impersonate-User": {"admin"}, "Impersonate-Group": {"system:masters"}, "Impersonate-Extra-Scopes": {"all"},
		"X-Remote-User": {"admin"}, "X-Remote-Group": {"system:masters"}, "X-Custom-User": {"admin"},
		"Authorization": {"Bearer stolen"}, "Audit-Id": {"forged"}, "X-Forwarded-For": {"10.0.0.1"},
		"Accept": {"application/json"},
	}
	tests := []struct {
		name       string
		frontProxy frontProxyHeaders
		want       http.Header
	}{
		{"impersonation", nil, http.Header{
			"Impersonate-User": {"alice"}, "Impersonate-Group": {"dev"}, "Audit-Id": {"id-1"}, "Accept": {"application/json"},
			// Means nothing to an API server that is not reached with a front-proxy certificate (and the
			// allow-list in Forwarder.ServeHTTP drops it before this layer).
			"X-Custom-User": {"admin"},
		}},
		{"front proxy", customHeaders, http.Header{
			"X-Custom-User": {"alice"}, "X-Custom-Group": {"dev"}, "Audit-Id": {"id-1"}, "Accept": {"application/json"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent http.Header
			rt := &identityRoundTripper{frontProxy: tt.frontProxy, delegate: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = r.Header
				return &http.Response{StatusCode: http.StatusOK}, nil
			})}
			ctx := apirequest.WithUser(withAccountingContext(context.Background(), &accounting{auditID: "id-1"}), caller)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://api/api/v1/namespaces", nil)
			req.Header = forged.Clone()
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sent, tt.want) {
				t.Fatalf("sent %v, want %v", sent, tt.want)
			}
			if !reflect.DeepEqual(req.Header, forged) {
				t.Fatalf("the incoming request was modified: %v", req.Header)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLegForPicksConnections: callers with many identity values get the connections without HPACK
// indexing, of their own mode, and those connections are not the ordinary ones.
func TestLegForPicksConnections(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:6443", BearerToken: "t", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	f, err := NewForwarder(cfg, nil, newMetrics().upstreamErrors)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := NewForwarder(cfg, nil, newMetrics().upstreamErrors)
	if err != nil {
		t.Fatal(err)
	}
	f.frontProxy, f.headers = &fp.impersonating, staticHeaders{user: defaultHeaders.user, group: defaultHeaders.group}
	many := make([]string, wideIdentity)
	for i := range many {
		many[i] = fmt.Sprintf("g%d", i)
	}
	tests := []struct {
		name string
		user user.Info
		want *upstreamLeg
	}{
		{"few groups, front proxy", &user.DefaultInfo{Name: "a", Groups: []string{"g"}}, fp.impersonating.ordinary},
		{"many groups, front proxy", &user.DefaultInfo{Name: "a", Groups: many}, fp.impersonating.wide},
		{"uid the API server cannot take: impersonated", &user.DefaultInfo{Name: "a", UID: "1"}, f.impersonating.ordinary},
		{"many extras and a uid: impersonated", &user.DefaultInfo{Name: "a", UID: "1", Extra: map[string][]string{"k": many}}, f.impersonating.wide},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api", nil)
			r = r.WithContext(apirequest.WithUser(r.Context(), tt.user))
			if got := f.legFor(r); got != tt.want {
				t.Fatalf("legFor picked another leg")
			}
		})
	}
	ordinary, wide := httpTransportOf(t, f.impersonating.ordinary), httpTransportOf(t, f.impersonating.wide)
	if ordinary == wide || ordinary.HTTP2 != nil || wide.HTTP2 == nil || wide.HTTP2.MaxEncoderHeaderTableSize != 1 {
		t.Fatalf("ordinary %p (%+v) and wide %p (%+v) connections", ordinary, ordinary.HTTP2, wide, wide.HTTP2)
	}
}

func httpTransportOf(t *testing.T, leg *upstreamLeg) *http.Transport {
	t.Helper()
	rt := leg.transport
	for {
		switch tr := rt.(type) {
		case *http.Transport:
			return tr
		case interface{ WrappedRoundTripper() http.RoundTripper }:
			rt = tr.WrappedRoundTripper()
		default:
			t.Fatalf("%T wraps no *http.Transport", rt)
		}
	}
}

// TestEscapeExtraKey pins the encoding client-go's headerKeyEscape uses, which the API server's
// url.PathUnescape reverses (the round trip itself is TestFrontProxyIdentityReadsBackExactly's).
func TestEscapeExtraKey(t *testing.T) {
	for _, c := range []struct{ key, want string }{
		{"scopes", "scopes"},
		{"authentication.kubernetes.io/credential-id", "authentication.kubernetes.io%2Fcredential-id"},
		{"100%-sure", "100%25-sure"},
		{"key with spaces", "key%20with%20spaces"},
		{"ü", "%C3%BC"},
		{"colon:equals=", "colon%3Aequals%3D"},
		{"", ""},
	} {
		if got := escapeExtraKey(c.key); got != c.want {
			t.Errorf("escapeExtraKey(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}
