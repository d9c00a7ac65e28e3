package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServingCertificateIsReloaded: replacing the files behind --tls-cert-file and --tls-private-key-file
// changes the certificate the proxy serves, without a restart.
func TestServingCertificateIsReloaded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const name = "tenant-proxy-reload"
	proxy, err := env.cluster.StartProxy(ctx, filepath.Join(env.cluster.BinDir, "tenant-proxy"), name)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Stop()
	before := servedCertificate(t, proxy.URL)

	certPEM, keyPEM, err := env.cluster.CA.IssueServingCert("127.0.0.1", "reloaded.example")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(env.cluster.Dir, name)
	// Key first, then certificate: the proxy reloads when the pair matches again.
	if err := os.WriteFile(filepath.Join(dir, "serving.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "serving.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for {
		after := servedCertificate(t, proxy.URL)
		if after.SerialNumber.Cmp(before.SerialNumber) != 0 {
			if !strings.Contains(strings.Join(after.DNSNames, ","), "reloaded.example") {
				t.Fatalf("served certificate changed to an unexpected one: %v", after.DNSNames)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the proxy still serves the old certificate")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func servedCertificate(t *testing.T, url string) *x509.Certificate {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(mustRead(env.proxy.CAFile)))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}
