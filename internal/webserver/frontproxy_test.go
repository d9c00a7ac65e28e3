package webserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// TestUpstreamFrontProxyCheck: the proxy is ready in front-proxy mode only when the API server's published
// configuration (kube-system/extension-apiserver-authentication, read by the API server's own controllers)
// would accept its certificate and reads front-proxy headers at all.
func TestUpstreamFrontProxyCheck(t *testing.T) {
	frontProxyCA, err := testbed.NewCA("front-proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := testbed.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeCert := func(name string, ca *testbed.CA, cn string) (string, string) {
		certPEM, keyPEM, err := ca.IssueClientCert(cn)
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	published := map[string]string{
		"requestheader-client-ca-file":       string(frontProxyCA.CertPEM),
		"requestheader-allowed-names":        `["front-proxy-client"]`,
		"requestheader-username-headers":     `["X-Remote-User"]`,
		"requestheader-uid-headers":          `["X-Remote-Uid"]`,
		"requestheader-group-headers":        `["X-Remote-Group"]`,
		"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
	}
	without := func(key string) map[string]string {
		m := map[string]string{}
		for k, v := range published {
			if k != key {
				m[k] = v
			}
		}
		return m
	}
	tests := []struct {
		name    string
		ca      *testbed.CA
		cn      string
		data    map[string]string
		wantErr string
	}{
		{"accepted", frontProxyCA, "front-proxy-client", published, ""},
		{"a name the API server does not allow", frontProxyCA, "intruder", published, "not in the API server's --requestheader-allowed-names"},
		{"signed by another CA", otherCA, "front-proxy-client", published, "does not accept the front-proxy certificate"},
		{"no front-proxy configuration", frontProxyCA, "front-proxy-client", map[string]string{}, "no --requestheader-username-headers"},
		{"no requestheader CA", frontProxyCA, "front-proxy-client", without("requestheader-client-ca-file"), "no --requestheader-client-ca-file"},
		{"any name allowed", frontProxyCA, "anyone", without("requestheader-allowed-names"), ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, key := writeCert(strings.Repeat("c", i+1), tt.ca, tt.cn)
			client := fake.NewSimpleClientset(&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Namespace: authenticationConfigMapNamespace, Name: authenticationConfigMapName},
				Data:       tt.data,
			})
			fp, err := newUpstreamFrontProxy(client, cert, key)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go fp.run(ctx)
			// The controllers load the ConfigMap asynchronously: poll until the answer settles.
			matches := func(err error) bool {
				if tt.wantErr == "" {
					return err == nil
				}
				return err != nil && strings.Contains(err.Error(), tt.wantErr)
			}
			err = fp.check()
			for deadline := time.Now().Add(5 * time.Second); !matches(err) && time.Now().Before(deadline); err = fp.check() {
				time.Sleep(20 * time.Millisecond)
			}
			if !matches(err) {
				t.Fatalf("check() = %v, want error containing %q (empty: ready)", err, tt.wantErr)
			}
		})
	}
}
