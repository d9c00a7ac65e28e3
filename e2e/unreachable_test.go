package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tenant-proxy/tenant-proxy/internal/webserver"
)

// TestUnreachableAPIServerIsAClearError: with the API server gone, requests get a 503 Status quickly, not a
// hang, and /readyz fails.
func TestUnreachableAPIServerIsAClearError(t *testing.T) {
	dir := t.TempDir()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()

	certPEM, keyPEM, err := env.cluster.CA.IssueServingCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	opts := webserver.NewOptions()
	opts.Serving.BindAddress = net.ParseIP("127.0.0.1")
	opts.Serving.BindPort = port
	opts.Serving.ServerCert.CertKey.CertFile, opts.Serving.ServerCert.CertKey.KeyFile = certFile, keyFile
	opts.ClientCAFile = env.cluster.CAFile
	opts.MetricsBindAddress = "0"
	upstream := &rest.Config{Host: "https://" + deadAddr, BearerToken: "unused", TLSClientConfig: rest.TLSClientConfig{CAFile: env.cluster.CAFile}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server, err := webserver.New(ctx, opts, upstream)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx) }()
	defer func() { cancel(); <-done }()

	alice := env.users["alice"]
	cfg := rest.CopyConfig(alice.proxyConfig)
	cfg.Host = "https://127.0.0.1:" + strconv.Itoa(port)
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err = client.Get(cfg.Host + "/api/v1/namespaces")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the listener starts in the background
	}
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"kind":"Status"`) {
		t.Fatalf("request with the API server down = %d %s, want a 503 Status", resp.StatusCode, body)
	}
	start := time.Now()
	resp, err = client.Get(cfg.Host + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(resp); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the API server down = %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("/readyz took %s", d)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
