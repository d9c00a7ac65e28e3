package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/wait"
	translator "k8s.io/apiserver/pkg/util/proxy"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
	"k8s.io/utils/ptr"
)

const (
	fakeFieldManager = "fake-kubelet"
	// Defaults of the real kubelet (streamingConnectionIdleTimeout, nodeLeaseRenewInterval).
	streamIdleTimeout  = 4 * time.Hour
	leaseDuration      = 40 * time.Second
	leaseRenewInterval = 10 * time.Second
	// Lines every container has logged before anyone asks; followers then get one more per logInterval.
	logLines    = 5
	logInterval = 200 * time.Millisecond
)

// FakeKubelet serves the kubelet's streaming endpoints for one Node, built on the kubelet's own streaming libraries.
//
// Like a real node it has two servers: the kubelet API (https on 127.0.0.1:Port, client certificates of the
// cluster CA) that kube-apiserver calls, and a plain-http "container runtime" streaming server on loopback where
// k8s.io/cri-streaming does the SPDY/WebSocket work. The kubelet API proxies exec, attach and portForward to the
// runtime the way pkg/kubelet/server does, translating WebSocket v5 (exec, attach) and SPDY-over-WebSocket tunnels
// (port-forward) on the way, so both kube-apiserver paths work: proxying WebSockets to the kubelet (the Node
// declares ExtendWebSocketsToKubelet) and translating them to SPDY itself.
//
// Every pod behaves the same, whatever its spec:
//   - exec: `echo ARGS` prints ARGS; `cat` (and `sh` without -c) copies stdin to stdout until EOF;
//     `exit N` ends with exit code N; `sh -c 'SCRIPT'` runs SCRIPT (one of these commands, split on spaces);
//     anything else prints "CMD: command not found" to stderr and exits 127. TTY resizes are accepted and ignored.
//   - attach: copies stdin to stdout until EOF; without stdin it ends at once.
//   - port-forward: every port is an echo service: bytes written come back until the client closes its side.
//   - containerLogs: "line 1\n" ... "line 5\n" (tailLines honoured); with follow=true one more line every 200ms
//     until the client goes away.
type FakeKubelet struct {
	NodeName string
	Port     int    // kubelet API port on 127.0.0.1
	URL      string // https://127.0.0.1:<Port>

	api, runtime    *http.Server
	stopHeartbeat   context.CancelFunc
	heartbeatExited chan struct{}
}

// StartFakeKubelet creates or updates Node nodeName (InternalIP 127.0.0.1, kubelet port, Ready) and serves its
// kubelet API with a serving certificate from c.CA, accepting only client certificates signed by c.CA (what
// kube-apiserver presents). It renews the Node's Lease until Stop so kube-controller-manager keeps the Node Ready.
// ctx bounds the start only.
func (c *Cluster) StartFakeKubelet(ctx context.Context, nodeName string) (*FakeKubelet, error) {
	certPEM, keyPEM, err := c.CA.IssueServingCert("127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("issue kubelet serving certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load kubelet serving certificate: %w", err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(c.CA.Cert)
	k, err := startFakeKubelet(nodeName, &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		return nil, err
	}
	if err := registerNode(ctx, c.AdminClient, nodeName, k.Port); err != nil {
		k.Stop()
		return nil, err
	}
	k.heartbeat(ctx, c.AdminClient)
	return k, nil
}

// startFakeKubelet starts the runtime and the kubelet API servers without touching any cluster.
func startFakeKubelet(nodeName string, tlsConfig *tls.Config) (*FakeKubelet, error) {
	runtimeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the fake container runtime: %w", err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		runtimeLn.Close()
		return nil, fmt.Errorf("listen for the fake kubelet: %w", err)
	}
	runtimeURL := &url.URL{Scheme: "http", Host: runtimeLn.Addr().String()}
	k := &FakeKubelet{
		NodeName: nodeName,
		Port:     apiLn.Addr().(*net.TCPAddr).Port,
		URL:      "https://" + apiLn.Addr().String(),
		runtime:  &http.Server{Handler: runtimeHandler(), ReadHeaderTimeout: 10 * time.Second},
		api:      &http.Server{Handler: kubeletHandler(runtimeURL), TLSConfig: tlsConfig, ReadHeaderTimeout: 10 * time.Second},
	}
	go k.runtime.Serve(runtimeLn)    //nolint:errcheck // ends with Stop
	go k.api.ServeTLS(apiLn, "", "") //nolint:errcheck // ends with Stop
	return k, nil
}

// Stop closes both servers and stops renewing the Lease; the Node object stays. Streams already upgraded
// (hijacked) end when their peer closes them.
func (k *FakeKubelet) Stop() {
	if k.stopHeartbeat != nil {
		k.stopHeartbeat()
		<-k.heartbeatExited
	}
	k.api.Close()
	k.runtime.Close()
}

// heartbeat renews the Node's Lease now and every leaseRenewInterval; without it the node lifecycle controller
// would mark the Node unreachable after its grace period and, minutes later, evict the pods. Failures are only
// retried: kube-node-lease may not exist yet right after the API server became ready.
func (k *FakeKubelet) heartbeat(ctx context.Context, client kubernetes.Interface) {
	ctx, k.stopHeartbeat = context.WithCancel(context.WithoutCancel(ctx))
	k.heartbeatExited = make(chan struct{})
	go func() {
		defer close(k.heartbeatExited)
		wait.UntilWithContext(ctx, func(ctx context.Context) { _ = renewLease(ctx, client, k.NodeName) }, leaseRenewInterval)
	}()
}

// registerNode makes the Node look like one whose kubelet serves on 127.0.0.1:port.
func registerNode(ctx context.Context, client kubernetes.Interface, name string, port int) error {
	nodes := client.CoreV1().Nodes()
	opts := metav1.ApplyOptions{FieldManager: fakeFieldManager, Force: true}
	if _, err := nodes.Apply(ctx, corev1ac.Node(name), opts); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	now := metav1.Now()
	status := corev1ac.NodeStatus().
		WithAddresses(
			corev1ac.NodeAddress().WithType(corev1.NodeInternalIP).WithAddress("127.0.0.1"),
			corev1ac.NodeAddress().WithType(corev1.NodeHostName).WithAddress(name)).
		WithDaemonEndpoints(corev1ac.NodeDaemonEndpoints().
			WithKubeletEndpoint(corev1ac.DaemonEndpoint().WithPort(int32(port)))).
		WithConditions(corev1ac.NodeCondition().
			WithType(corev1.NodeReady).WithStatus(corev1.ConditionTrue).
			WithReason("KubeletReady").WithMessage("fake kubelet is serving").
			WithLastHeartbeatTime(now).WithLastTransitionTime(now)).
		// A 1.37 kubelet declares this, so kube-apiserver passes WebSockets through instead of translating them.
		WithDeclaredFeatures("ExtendWebSocketsToKubelet")
	if _, err := nodes.ApplyStatus(ctx, corev1ac.Node(name).WithStatus(status), opts); err != nil {
		return fmt.Errorf("set status of node %s: %w", name, err)
	}
	return nil
}

func renewLease(ctx context.Context, client kubernetes.Interface, nodeName string) error {
	lease := coordinationv1ac.Lease(nodeName, corev1.NamespaceNodeLease).WithSpec(coordinationv1ac.LeaseSpec().
		WithHolderIdentity(nodeName).
		WithLeaseDurationSeconds(int32(leaseDuration / time.Second)).
		WithRenewTime(metav1.NewMicroTime(time.Now())))
	_, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Apply(ctx, lease,
		metav1.ApplyOptions{FieldManager: fakeFieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("renew lease of node %s: %w", nodeName, err)
	}
	return nil
}

// CreateRunningPod creates pod namespace/name on nodeName with one container "main" (image "fake") and reports it
// Running and Ready, as a kubelet would. The namespace must exist; the call waits for its "default"
// ServiceAccount, which admission requires. The pod has a termination grace period of 0 because no kubelet would
// ever confirm a graceful deletion.
func (c *Cluster) CreateRunningPod(ctx context.Context, namespace, name, nodeName string) (*corev1.Pod, error) {
	return createRunningPod(ctx, c.AdminClient, namespace, name, nodeName)
}

func createRunningPod(ctx context.Context, client kubernetes.Interface, namespace, name, nodeName string) (*corev1.Pod, error) {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil // kube-controller-manager creates it soon after the namespace
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("wait for service account %s/default: %w", namespace, err)
	}

	pods := client.CoreV1().Pods(namespace)
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			Containers:                    []corev1.Container{{Name: "main", Image: "fake"}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", namespace, name, err)
	}

	now := metav1.Now()
	condition := func(t corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}
	}
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			condition(corev1.PodReadyToStartContainers), condition(corev1.PodInitialized),
			condition(corev1.PodReady), condition(corev1.ContainersReady), condition(corev1.PodScheduled),
		},
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		StartTime: &now,
		QOSClass:  pod.Status.QOSClass, // immutable, set on create
		ContainerStatuses: []corev1.ContainerStatus{{
			Name:        "main",
			Image:       "fake",
			ImageID:     "fake",
			ContainerID: "fake://" + string(pod.UID),
			Ready:       true,
			Started:     ptr.To(true),
			State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	pod, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("set pod %s/%s running: %w", namespace, name, err)
	}
	return pod, nil
}

// kubeletHandler is the kubelet API: the routes of pkg/kubelet/server that kube-apiserver calls for
// exec, attach, port-forward and logs.
func kubeletHandler(runtime *url.URL) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/exec/", "/attach/"} {
		mux.HandleFunc(p+"{namespace}/{pod}/{container}", proxyRemoteCommand(runtime))
		mux.HandleFunc(p+"{namespace}/{pod}/{uid}/{container}", proxyRemoteCommand(runtime))
	}
	mux.HandleFunc("/portForward/{namespace}/{pod}", proxyPortForward(runtime))
	mux.HandleFunc("/portForward/{namespace}/{pod}/{uid}", proxyPortForward(runtime))
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", serveLogs)
	return mux
}

// runtimeLocation is where the runtime serves the request r made to the kubelet API.
func runtimeLocation(runtime *url.URL, r *http.Request) *url.URL {
	loc := *runtime
	loc.Path = r.URL.Path
	loc.RawQuery = r.URL.RawQuery
	return &loc
}

// proxyRemoteCommand mirrors the kubelet's getExec/getAttach.
func proxyRemoteCommand(runtime *url.URL) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		opts, err := remotecommand.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		loc := runtimeLocation(runtime, r)
		var h http.Handler = proxy.NewUpgradeAwareHandler(loc, nil, false, true, errorResponder{})
		if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
			h = translator.NewStreamTranslatorHandler(loc, nil, 0, translator.Options{
				Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, Tty: opts.TTY,
			})
		}
		h.ServeHTTP(w, r)
	}
}

// proxyPortForward mirrors the kubelet's getPortForward.
func proxyPortForward(runtime *url.URL) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var h http.Handler = proxy.NewUpgradeAwareHandler(runtimeLocation(runtime, r), nil, false, true, errorResponder{})
		if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
			h = translator.NewTunnelingHandler(h)
		}
		h.ServeHTTP(w, r)
	}
}

type errorResponder struct{}

func (errorResponder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// serveLogs writes the fixed log lines, flushing each so `logs -f` sees them as they come.
func serveLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	follow, _ := strconv.ParseBool(q.Get("follow"))
	first := 1
	if tail, err := strconv.Atoi(q.Get("tailLines")); err == nil && tail >= 0 && tail < logLines {
		first = logLines - tail + 1
	}
	w.Header().Set("Content-Type", "text/plain")
	rc := http.NewResponseController(w)
	write := func(n int) error {
		if _, err := fmt.Fprintf(w, "line %d\n", n); err != nil {
			return err
		}
		return rc.Flush()
	}
	for n := first; n <= logLines; n++ {
		if write(n) != nil {
			return
		}
	}
	if !follow {
		return
	}
	tick := time.NewTicker(logInterval)
	defer tick.Stop()
	for n := logLines + 1; ; n++ {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if write(n) != nil {
				return
			}
		}
	}
}

// runtimeHandler is the container runtime's streaming server: cri-streaming serves the SPDY (v1-v4) and
// legacy WebSocket (v1-v4) protocols and calls fakeRuntime.
func runtimeHandler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"{namespace}/{pod}/{container}", "{namespace}/{pod}/{uid}/{container}"} {
		mux.HandleFunc("/exec/"+p, serveExec)
		mux.HandleFunc("/attach/"+p, serveAttach)
	}
	mux.HandleFunc("/portForward/{namespace}/{pod}", servePortForward)
	mux.HandleFunc("/portForward/{namespace}/{pod}/{uid}", servePortForward)
	return mux
}

func serveExec(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, fakeRuntime{}, r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container"),
		r.URL.Query()["command"], opts, streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout,
		remotecommand.SupportedStreamingProtocols)
}

func serveAttach(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	remotecommand.ServeAttach(w, r, fakeRuntime{}, r.PathValue("pod"), r.PathValue("uid"), r.PathValue("container"),
		opts, streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func servePortForward(w http.ResponseWriter, r *http.Request) {
	opts, err := portforward.NewV4Options(r) // ports come from the query only on legacy WebSocket requests
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, fakeRuntime{}, r.PathValue("pod"), r.PathValue("uid"), opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// fakeRuntime is the container runtime behind every pod; see FakeKubelet for what it does.
type fakeRuntime struct{}

var (
	_ remotecommand.Executor    = fakeRuntime{}
	_ remotecommand.Attacher    = fakeRuntime{}
	_ portforward.PortForwarder = fakeRuntime{}
)

func (fakeRuntime) ExecInContainer(_ context.Context, _, _, _ string, cmd []string, in io.Reader, out, errOut io.WriteCloser,
	_ bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	go drain(resize)
	return run(cmd, in, writerOrDiscard(out), writerOrDiscard(errOut))
}

func (fakeRuntime) AttachContainer(_ context.Context, _, _, _ string, in io.Reader, out, _ io.WriteCloser,
	_ bool, resize <-chan remotecommand.TerminalSize) error {
	go drain(resize)
	return copyStdin(writerOrDiscard(out), in)
}

func (fakeRuntime) PortForward(_ context.Context, _, _ string, _ int32, stream io.ReadWriteCloser) error {
	if _, err := io.Copy(stream, stream); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return nil
}

// run interprets the tiny command set of the fake containers.
func run(cmd []string, in io.Reader, out, errOut io.Writer) error {
	if len(cmd) == 0 {
		return errors.New("no command")
	}
	switch name, args := cmd[0], cmd[1:]; name {
	case "sh", "/bin/sh":
		if len(args) == 2 && args[0] == "-c" {
			return run(strings.Fields(args[1]), in, out, errOut)
		}
		return copyStdin(out, in) // an interactive shell that only echoes
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(args, " "))
		return err
	case "cat":
		return copyStdin(out, in)
	case "exit":
		code := 0
		if len(args) > 0 {
			code, _ = strconv.Atoi(args[0])
		}
		return exitCode(code)
	default:
		fmt.Fprintf(errOut, "%s: command not found\n", name)
		return exitCode(127)
	}
}

// exitCode is the error that makes cri-streaming report a NonZeroExitCode status, so kubectl exits with code.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("exit status %d", code), Code: code}
}

func copyStdin(out io.Writer, in io.Reader) error {
	if in == nil {
		return nil
	}
	if _, err := io.Copy(out, in); err != nil {
		return fmt.Errorf("copy stdin: %w", err)
	}
	return nil
}

func writerOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// drain consumes terminal resizes; cri-streaming closes the channel when the stream ends and leaves it nil
// without a TTY.
func drain(resize <-chan remotecommand.TerminalSize) {
	if resize == nil {
		return
	}
	for range resize {
	}
}
