package testbed_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/exec"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

// fakeKubeletForTest starts a FakeKubelet for a Cluster that has a CA and a fake clientset but no processes, and
// returns the config kube-apiserver would use to reach it (a client certificate of the cluster CA).
func fakeKubeletForTest(t *testing.T) (*testbed.FakeKubelet, *rest.Config, *fake.Clientset) {
	t.Helper()
	ca, err := testbed.NewCA("fake-kubelet-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	client := fake.NewClientset()
	c := &testbed.Cluster{CA: ca, AdminClient: client}
	k, err := c.StartFakeKubelet(t.Context(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	certPEM, keyPEM, err := ca.IssueClientCert("kube-apiserver-kubelet-client")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: k.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca.CertPEM, CertData: certPEM, KeyData: keyPEM}}
	return k, cfg, client
}

func TestFakeKubeletRegistersNode(t *testing.T) {
	k, _, client := fakeKubeletForTest(t)

	node, err := client.CoreV1().Nodes().Get(t.Context(), "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: "node-1"}}; !slices.Equal(node.Status.Addresses, want) {
		t.Errorf("addresses = %v, want %v", node.Status.Addresses, want)
	}
	if got := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port); got != k.Port || k.URL != fmt.Sprintf("https://127.0.0.1:%d", k.Port) {
		t.Errorf("kubelet port = %d, FakeKubelet = %d %s", got, k.Port, k.URL)
	}
	if len(node.Status.Conditions) != 1 || node.Status.Conditions[0].Type != corev1.NodeReady || node.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Errorf("conditions = %v, want Ready=True", node.Status.Conditions)
	}
	if !slices.Contains(node.Status.DeclaredFeatures, "ExtendWebSocketsToKubelet") {
		t.Errorf("declared features = %v", node.Status.DeclaredFeatures)
	}

	// The Lease is renewed in the background, starting right away.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		lease, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(t.Context(), "node-1", metav1.GetOptions{})
		if err == nil {
			if lease.Spec.RenewTime == nil || *lease.Spec.HolderIdentity != "node-1" {
				t.Errorf("lease spec = %+v", lease.Spec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

func TestFakeKubeletCreateRunningPod(t *testing.T) {
	client := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "default"}})
	c := &testbed.Cluster{AdminClient: client}

	pod, err := c.CreateRunningPod(t.Context(), "ns", "web", "node-1")
	if err != nil {
		t.Fatal(err)
	}
	pod, err = client.CoreV1().Pods("ns").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.NodeName != "node-1" || len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != "main" || pod.Spec.Containers[0].Image != "fake" {
		t.Errorf("spec = %+v", pod.Spec)
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != 0 {
		t.Errorf("terminationGracePeriodSeconds = %v, want 0", g)
	}
	if pod.Status.Phase != corev1.PodRunning || len(pod.Status.ContainerStatuses) != 1 ||
		pod.Status.ContainerStatuses[0].State.Running == nil || !pod.Status.ContainerStatuses[0].Ready {
		t.Errorf("status = %+v", pod.Status)
	}
}

func TestFakeKubeletRejectsClientsWithoutClusterCertificate(t *testing.T) {
	_, cfg, _ := fakeKubeletForTest(t)
	other, err := testbed.NewCA("other-ca")
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := other.IssueClientCert("intruder")
	if err != nil {
		t.Fatal(err)
	}
	for name, tlsConfig := range map[string]rest.TLSClientConfig{
		"no client certificate":     {CAData: cfg.CAData},
		"certificate of another CA": {CAData: cfg.CAData, CertData: otherCert, KeyData: otherKey},
	} {
		t.Run(name, func(t *testing.T) {
			// With TLS 1.3 the client learns of the rejection only on its first read or write, so the error
			// may be an alert or a broken pipe.
			if _, err := getLogs(t.Context(), &rest.Config{Host: cfg.Host, TLSClientConfig: tlsConfig}, ""); err == nil {
				t.Fatal("request succeeded")
			}
		})
	}
}

// kubeletExecutors are the ways kube-apiserver (or an old client it passes through) speaks exec/attach to a kubelet.
var kubeletExecutors = map[string]func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error){
	"spdy": func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewSPDYExecutor(cfg, "POST", u)
	},
	"websocket v5": func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	},
	// v4 has no way to close stdin, so it only runs commands without input.
	"websocket v4": func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
		return remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u.String(), "v4.channel.k8s.io")
	},
}

func TestFakeKubeletExec(t *testing.T) {
	_, cfg, _ := fakeKubeletForTest(t)
	tests := []struct {
		name       string
		cmd        []string
		stdin      string
		tty        bool
		wantStdout string
		wantStderr string
		wantCode   int
	}{
		{name: "echo", cmd: []string{"echo", "a", "b"}, wantStdout: "a b\n"},
		{name: "sh -c echo", cmd: []string{"sh", "-c", "echo x  y"}, wantStdout: "x y\n"},
		{name: "cat", cmd: []string{"cat"}, stdin: "hello\nworld\n", wantStdout: "hello\nworld\n"},
		{name: "exit", cmd: []string{"exit", "3"}, wantCode: 3},
		{name: "sh -c exit", cmd: []string{"sh", "-c", "exit 3"}, wantCode: 3},
		{name: "unknown command", cmd: []string{"whoami"}, wantStderr: "whoami: command not found\n", wantCode: 127},
		{name: "tty", cmd: []string{"sh"}, stdin: "ls\n", tty: true, wantStdout: "ls\n"},
	}
	for executor, newExecutor := range kubeletExecutors {
		for _, tc := range tests {
			t.Run(executor+"/"+tc.name, func(t *testing.T) {
				if tc.stdin != "" && executor == "websocket v4" {
					t.Skip("no stdin EOF in websocket v4")
				}
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				q := url.Values{"command": tc.cmd, "output": {"1"}}
				if tc.stdin != "" {
					q.Set("input", "1")
				}
				if tc.tty {
					q.Set("tty", "1")
				} else {
					q.Set("error", "1")
				}
				ex, err := newExecutor(cfg, kubeletURL(t, cfg, "/exec/ns/web/main", q))
				if err != nil {
					t.Fatal(err)
				}
				var stdout, stderr bytes.Buffer
				opts := remotecommand.StreamOptions{Stdout: &stdout, Tty: tc.tty}
				if tc.stdin != "" {
					opts.Stdin = strings.NewReader(tc.stdin)
				}
				if tc.tty {
					opts.TerminalSizeQueue = resizes(remotecommand.TerminalSize{Width: 80, Height: 24}, remotecommand.TerminalSize{Width: 120, Height: 40})
				} else {
					opts.Stderr = &stderr
				}
				err = ex.StreamWithContext(ctx, opts)
				assertExitCode(t, err, tc.wantCode)
				if stdout.String() != tc.wantStdout || stderr.String() != tc.wantStderr {
					t.Errorf("stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantStdout, tc.wantStderr)
				}
			})
		}
	}
}

func TestFakeKubeletAttach(t *testing.T) {
	_, cfg, _ := fakeKubeletForTest(t)
	for _, executor := range []string{"spdy", "websocket v5"} {
		t.Run(executor, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			q := url.Values{"input": {"1"}, "output": {"1"}, "error": {"1"}}
			ex, err := kubeletExecutors[executor](cfg, kubeletURL(t, cfg, "/attach/ns/web/main", q))
			if err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("hello\n"), Stdout: &stdout, Stderr: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			if stdout.String() != "hello\n" {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
}

func TestFakeKubeletPortForward(t *testing.T) {
	_, cfg, _ := fakeKubeletForTest(t)
	dialers := map[string]func(u *url.URL) (httpstream.Dialer, error){
		"spdy": func(u *url.URL) (httpstream.Dialer, error) {
			transport, upgrader, err := spdy.RoundTripperFor(cfg)
			if err != nil {
				return nil, err
			}
			return spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u), nil
		},
		"spdy over websocket": func(u *url.URL) (httpstream.Dialer, error) {
			return portforward.NewSPDYOverWebsocketDialer(u, cfg)
		},
	}
	for name, newDialer := range dialers {
		t.Run(name, func(t *testing.T) {
			dialer, err := newDialer(kubeletURL(t, cfg, "/portForward/ns/web", nil))
			if err != nil {
				t.Fatal(err)
			}
			stop, ready := make(chan struct{}), make(chan struct{})
			pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080", "0:5432"}, stop, ready, io.Discard, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- pf.ForwardPorts() }()
			defer func() {
				close(stop)
				if err := <-done; err != nil {
					t.Errorf("ForwardPorts: %v", err)
				}
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("ForwardPorts: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("port-forward not ready")
			}
			ports, err := pf.GetPorts()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ports {
				for i := range 2 { // every connection gets its own stream
					msg := fmt.Sprintf("ping %d to %d\n", i, p.Remote)
					if got := echoVia(t, fmt.Sprintf("127.0.0.1:%d", p.Local), msg); got != msg {
						t.Errorf("port %d echoed %q, want %q", p.Remote, got, msg)
					}
				}
			}
		})
	}
}

func TestFakeKubeletLogs(t *testing.T) {
	_, cfg, _ := fakeKubeletForTest(t)
	for _, tc := range []struct{ query, want string }{
		{"", "line 1\nline 2\nline 3\nline 4\nline 5\n"},
		{"tailLines=2", "line 4\nline 5\n"},
		{"tailLines=0", ""},
		{"tailLines=10", "line 1\nline 2\nline 3\nline 4\nline 5\n"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, err := getLogs(t.Context(), cfg, tc.query)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("logs = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		resp, err := openLogs(ctx, cfg, "follow=true&tailLines=1")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []string
		for s := bufio.NewScanner(resp.Body); len(lines) < 4 && s.Scan(); {
			lines = append(lines, s.Text())
		}
		if want := []string{"line 5", "line 6", "line 7", "line 8"}; !slices.Equal(lines, want) {
			t.Errorf("followed %q, want %q", lines, want)
		}
	})
}

func TestFakeKubeletStop(t *testing.T) {
	k, cfg, _ := fakeKubeletForTest(t)
	k.Stop()
	if _, err := getLogs(t.Context(), cfg, ""); err == nil {
		t.Error("kubelet still answers after Stop")
	}
	k.Stop() // twice is fine, as t.Cleanup will do
}

func kubeletURL(t *testing.T, cfg *rest.Config, path string, q url.Values) *url.URL {
	t.Helper()
	u, err := url.Parse(cfg.Host + path)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery = q.Encode()
	return u
}

// assertExitCode checks err is what a remotecommand client returns for a command that exited with code.
func assertExitCode(t *testing.T, err error, code int) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		return
	}
	var exitErr exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitStatus() != code {
		t.Fatalf("stream error = %v, want exit code %d", err, code)
	}
}

// resizes is a TerminalSizeQueue that sends sizes, then reports the end.
func resizes(sizes ...remotecommand.TerminalSize) remotecommand.TerminalSizeQueue {
	ch := make(sizeQueue, len(sizes))
	for _, s := range sizes {
		ch <- s
	}
	close(ch)
	return ch
}

type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

// echoVia sends msg over a new connection to addr, closes its write side and returns everything read back.
func echoVia(t *testing.T, addr, msg string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(got)
}

// openLogs starts GET containerLogs for ns/web/main.
func openLogs(ctx context.Context, cfg *rest.Config, query string) (*http.Response, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/containerLogs/ns/web/main?"+query, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET containerLogs: %s", resp.Status)
	}
	return resp, nil
}

func getLogs(ctx context.Context, cfg *rest.Config, query string) (string, error) {
	resp, err := openLogs(ctx, cfg, query)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}
