package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fakeReviews answers TokenReviews for one token and counts them.
type fakeReviews struct {
	token string
	user  authenticationv1.UserInfo
	calls int
}

func (f *fakeReviews) Create(_ context.Context, r *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	f.calls++
	r.Status.Authenticated = r.Spec.Token == f.token
	if r.Status.Authenticated {
		r.Status.User = f.user
	}
	return r, nil
}

// The floor must send what tenant-proxy sends for the same caller, or its rows would measure another request.
func TestFloorImpersonatesLikeTenantProxy(t *testing.T) {
	sa := authenticationv1.UserInfo{
		Username: "system:serviceaccount:bench:bencher", UID: "uid-1",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:bench", "system:authenticated"},
		Extra:  map[string]authenticationv1.ExtraValue{"authentication.kubernetes.io/credential-id": {"JTI=1"}},
	}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "bencher", Organization: []string{"bench-group"}}}
	tests := []struct {
		name    string
		tls     *tls.ConnectionState
		auth    string
		want    http.Header // identity headers upstream; nil: refused
		reviews int         // over two requests: an accepted token is reviewed once
	}{
		{
			name: "verified client certificate",
			tls:  &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}, VerifiedChains: [][]*x509.Certificate{{cert}}},
			want: http.Header{"Impersonate-User": {"bencher"}, "Impersonate-Group": {"bench-group", "system:authenticated"}},
		},
		{
			name: "ServiceAccount token: groups left to the API server, extras escaped",
			auth: "Bearer sa-token",
			want: http.Header{
				"Impersonate-User": {sa.Username}, "Impersonate-Uid": {"uid-1"},
				"Impersonate-Extra-Authentication.kubernetes.io%2fcredential-Id": {"JTI=1"},
			},
			reviews: 1,
		},
		{name: "rejected token", auth: "Bearer other", reviews: 2},
		{name: "unverified certificate", tls: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}},
		{name: "no credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reviews := &fakeReviews{token: "sa-token", user: sa}
			var got http.Header
			p := &floor{reviews: reviews}
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				u, err := p.caller(r)
				if err != nil {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				impersonate(r.Header, u)
				got = r.Header
			})
			for range 2 { // the second request must not review the token again
				r := httptest.NewRequest(http.MethodGet, "/api/v1/namespaces/bench/configmaps/target", nil)
				r.TLS = tt.tls
				r.Header.Set("Impersonate-Group", "system:masters") // forged: must never survive
				if tt.auth != "" {
					r.Header.Set("Authorization", tt.auth)
				}
				got = nil
				handler.ServeHTTP(httptest.NewRecorder(), r)
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("upstream identity headers = %v, want %v", got, tt.want)
				}
			}
			if reviews.calls != tt.reviews {
				t.Errorf("token reviews = %d, want %d", reviews.calls, tt.reviews)
			}
		})
	}
}
