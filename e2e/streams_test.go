package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var streamPodOnce struct {
	sync.Once
	err error
}

// streamPod registers a node served by a fake kubelet (the kubelet's own streaming libraries) and a running
// pod on it in the robot's namespace.
func streamPod(t *testing.T) (namespace, pod string) {
	t.Helper()
	namespace, pod = env.users["robot"].namespace, "streamer"
	streamPodOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := env.cluster.StartFakeKubelet(ctx, "node-streams"); err != nil {
			streamPodOnce.err = err
			return
		}
		_, streamPodOnce.err = env.cluster.CreateRunningPod(ctx, namespace, pod, "node-streams")
	})
	if streamPodOnce.err != nil {
		t.Fatalf("stream pod: %v", streamPodOnce.err)
	}
	return namespace, pod
}

// kubectlCommand prepares the real kubectl as id through the proxy; transport picks WebSocket or SPDY.
func kubectlCommand(ctx context.Context, id *identity, transport string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(env.cluster.BinDir, "kubectl"), append([]string{"--kubeconfig", id.proxyKubeconfig}, args...)...)
	websockets := "true"
	if transport == "spdy" {
		websockets = "false"
	}
	cmd.Env = append(os.Environ(), "KUBECTL_REMOTE_COMMAND_WEBSOCKETS="+websockets, "KUBECTL_PORT_FORWARD_WEBSOCKETS="+websockets)
	return cmd
}

var transports = []string{"websocket", "spdy"}

func TestExecThroughProxy(t *testing.T) {
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) { testExecThroughProxy(t) })
}

func testExecThroughProxy(t *testing.T) {
	ns, pod := streamPod(t)
	id := env.users["robot"]
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			tests := []struct {
				name     string
				args     []string
				stdin    string
				want     string
				wantExit int
			}{
				{"output", []string{"exec", pod, "--", "echo", "hello", "world"}, "", "hello world\n", 0},
				{"stdin", []string{"exec", "-i", pod, "--", "cat"}, "from stdin\n", "from stdin\n", 0},
				{"exit code", []string{"exec", pod, "--", "exit", "3"}, "", "", 3},
				{"attach", []string{"attach", "-i", "-q", pod}, "attached\n", "attached\n", 0},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					cmd := kubectlCommand(ctx, id, transport, append([]string{"-n", ns}, tt.args...)...)
					cmd.Stdin = strings.NewReader(tt.stdin)
					var stderr strings.Builder
					cmd.Stderr = &stderr
					out, err := cmd.Output()
					exitCode := 0
					var exitErr *exec.ExitError
					if errors.As(err, &exitErr) {
						exitCode = exitErr.ExitCode()
					} else if err != nil {
						t.Fatal(err)
					}
					if string(out) != tt.want || exitCode != tt.wantExit {
						t.Fatalf("kubectl %v = %q exit %d (stderr %q); want %q exit %d", tt.args, out, exitCode, stderr.String(), tt.want, tt.wantExit)
					}
				})
			}
		})
	}
}

func TestPortForwardThroughProxy(t *testing.T) {
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) { testPortForwardThroughProxy(t) })
}

func testPortForwardThroughProxy(t *testing.T) {
	ns, pod := streamPod(t)
	id := env.users["robot"]
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := kubectlCommand(ctx, id, transport, "-n", ns, "port-forward", "pod/"+pod, ":8080")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			local := waitForLine(t, stdout, regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`))
			conn, err := net.DialTimeout("tcp", "127.0.0.1:"+local, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			msg := "ping through the proxy\n"
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
				t.Fatalf("echo through port-forward = %q, %v", got, err)
			}
		})
	}
}

func TestLogsFollowThroughProxy(t *testing.T) {
	forEachUpstreamMode(t, func(t *testing.T, _ upstreamMode) { testLogsFollowThroughProxy(t) })
}

func testLogsFollowThroughProxy(t *testing.T) {
	ns, pod := streamPod(t)
	id := env.users["robot"]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := kubectlCommand(ctx, id, "websocket", "-n", ns, "logs", "-f", pod)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	start := time.Now()
	// Lines 6 and 7 are written after the request started: seeing them proves the stream is flushed live.
	waitForLine(t, stdout, regexp.MustCompile(`^line (7)$`))
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("followed log lines took %s", d)
	}
}

// waitForLine reads lines until one matches re and returns its first group.
func waitForLine(t *testing.T, r io.Reader, re *regexp.Regexp) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(r)
		for scanner.Scan() {
			if m := re.FindStringSubmatch(scanner.Text()); m != nil {
				found <- m[1]
				return
			}
		}
		close(found)
	}()
	select {
	case v, ok := <-found:
		if !ok {
			t.Fatalf("output ended before a line matching %s", re)
		}
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("no line matching %s", re)
	}
	return ""
}

// TestWebSocketBearerSubprotocol: a browser authenticates a WebSocket with its token in
// Sec-WebSocket-Protocol; the proxy accepts it, removes it, and the API server sees the caller.
func TestWebSocketBearerSubprotocol(t *testing.T) {
	forEachUpstreamMode(t, testWebSocketBearerSubprotocol)
}

func testWebSocketBearerSubprotocol(t *testing.T, m upstreamMode) {
	ns, pod := streamPod(t)
	robot := env.users["robot"]
	encoded := base64.RawURLEncoding.EncodeToString([]byte(robot.proxyConfig.BearerToken))
	header := http.Header{
		"Connection":             {"Upgrade"},
		"Upgrade":                {"websocket"},
		"Sec-Websocket-Version":  {"13"},
		"Sec-Websocket-Key":      {"dGhlIHNhbXBsZSBub25jZQ=="},
		"Sec-Websocket-Protocol": {"base64url.bearer.authorization.k8s.io." + encoded + ", v5.channel.k8s.io"},
	}
	noCert := &identity{proxyConfig: robot.proxyConfig}
	path := "/api/v1/namespaces/" + ns + "/pods/" + pod + "/exec?command=echo&command=" + m.name + "&stdout=true" // one path per mode
	req, err := http.NewRequest(http.MethodGet, env.proxy.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := rawClient(t, noCert).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-Websocket-Protocol") != "v5.channel.k8s.io" {
		t.Fatalf("WebSocket exec with a bearer sub-protocol = %d, protocol %q", resp.StatusCode, resp.Header.Get("Sec-Websocket-Protocol"))
	}
	resp.Body.Close() // ends the stream, so the API server completes its audit event
	var events []auditEvent
	for deadline := time.Now().Add(5 * time.Second); len(events) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		events = readAuditEvents(t, func(e auditEvent) bool { return e.RequestURI == path })
	}
	if len(events) == 0 {
		t.Fatalf("the API server has no audit event for %s", path)
	}
	for _, e := range events {
		m.upstreamUser(t, e, robot.name)
	}
}

// TestOversizedHeadersAreRefused: a request with more header bytes than the server accepts is refused
// before anything is authenticated or forwarded.
func TestOversizedHeadersAreRefused(t *testing.T) {
	alice := env.users["alice"]
	header := http.Header{"X-Padding": {strings.Repeat("a", 2<<20)}}
	req, _ := http.NewRequest(http.MethodGet, env.proxy.URL+"/api/v1/namespaces/team-a/configmaps", nil)
	req.Header = header
	resp, err := rawClient(t, alice).Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("2 MiB of headers = %d, want 431", resp.StatusCode)
		}
	}
	// Either a 431 or a closed connection is a refusal; make sure the proxy still serves afterwards.
	if status, _, body := do(t, rawClient(t, alice), http.MethodGet, "/api/v1/namespaces/team-a/configmaps", nil, ""); status != http.StatusOK {
		t.Fatalf("after the oversized request: %d %s", status, body)
	}
}
