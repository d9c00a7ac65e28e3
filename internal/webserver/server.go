package webserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

	"github.com/tenant-proxy/tenant-proxy/internal/audit"
	"github.com/tenant-proxy/tenant-proxy/internal/modules"
	"github.com/tenant-proxy/tenant-proxy/internal/request"
	"github.com/tenant-proxy/tenant-proxy/internal/startuppages"
)

// Server is a configured, not yet running, proxy.
type Server struct {
	opts        *Options
	restConfig  *rest.Config
	client      kubernetes.Interface
	modules     []modules.Module
	clientCA    dynamiccertificates.CAContentProvider
	runners     []func(ctx context.Context)
	handler     http.Handler
	metrics     *metrics
	audit       *audit.Logger
	servingInfo *server.SecureServingInfo
	authn       *request.Authenticator
	frontProxy  *upstreamFrontProxy // nil unless identity goes upstream as front-proxy headers

	upstreamMu      sync.Mutex
	upstreamChecked time.Time
	upstreamErr     error
}

// RESTConfig loads the upstream API server and the proxy's own identity from --kubeconfig and
// --kube-context, or from the in-cluster environment. The proxy's own calls are not throttled client-side:
// the API server's priority and fairness is the limit.
func RESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" && kubeContext == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
		if kubeconfig == "" {
			rules = clientcmd.NewDefaultClientConfigLoadingRules()
		}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading upstream configuration: %w", err)
	}
	cfg.QPS = -1 // no client-side rate limiter
	cfg.UserAgent = "tenant-proxy"
	return cfg, nil
}

// New wires authentication, impersonation, modules and forwarding. Nothing listens until Run.
func New(ctx context.Context, opts *Options, restConfig *rest.Config, mods ...modules.Module) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, restConfig: restConfig, modules: mods, metrics: newMetrics()}

	reviewConfig := rest.CopyConfig(restConfig)
	reviewConfig.Timeout = opts.ReviewTimeout
	reviews, err := kubernetes.NewForConfig(reviewConfig)
	if err != nil {
		return nil, fmt.Errorf("review client: %w", err)
	}
	s.client, err = kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}

	if err := s.setUpClientCA(); err != nil {
		return nil, err
	}
	requestHeader, err := s.requestHeaderConfig()
	if err != nil {
		return nil, err
	}
	s.authn, err = request.NewAuthenticator(ctx, request.AuthenticatorConfig{
		ClientCA:           s.clientCA,
		RequestHeader:      requestHeader,
		TokenReviews:       reviews.AuthenticationV1(),
		TokenReviewTimeout: opts.ReviewTimeout,
		TokenCacheTTL:      opts.TokenCacheTTL,
		TokenFailureTTL:    opts.TokenFailureCacheTTL,
		APIAudiences:       opts.APIAudiences,
		OIDC:               &opts.OIDC,
		Anonymous:          opts.AnonymousAuth,
	})
	if err != nil {
		return nil, err
	}
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}
	impersonationAuthz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: reviews.AuthorizationV1(),
		AllowCacheTTL:             10 * time.Second,
		DenyCacheTTL:              5 * time.Second,
		WebhookRetryBackoff:       &backoff,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("impersonation authorizer: %w", err)
	}
	var frontProxy *FrontProxyConfig
	if opts.UpstreamFrontProxyCertFile != "" {
		if s.frontProxy, err = newUpstreamFrontProxy(s.client, opts.UpstreamFrontProxyCertFile, opts.UpstreamFrontProxyKeyFile); err != nil {
			return nil, err
		}
		s.runners = append(s.runners, s.frontProxy.run)
		frontProxy = &FrontProxyConfig{CertFile: opts.UpstreamFrontProxyCertFile, KeyFile: opts.UpstreamFrontProxyKeyFile, Headers: s.frontProxy.headers}
	}
	forwarder, err := NewForwarder(restConfig, frontProxy, s.metrics.upstreamErrors)
	if err != nil {
		return nil, err
	}
	s.audit, err = audit.Open(opts.AuditLogPath)
	if err != nil {
		return nil, err
	}
	auditPolicy, err := audit.LoadPolicy(opts.AuditPolicyFile)
	if err != nil {
		return nil, err
	}
	c := &chain{
		authenticator:          s.authn,
		requestHeader:          requestHeader,
		apiAudiences:           authenticator.Audiences(opts.APIAudiences),
		impersonationAuthz:     impersonationAuthz,
		maxImpersonationValues: opts.MaxImpersonationValues,
		modules:                mods,
		forwarder:              forwarder,
		audit:                  s.audit,
		auditPolicy:            auditPolicy,
		metrics:                s.metrics,
	}
	for _, m := range mods {
		if namer, ok := m.(modules.TenantNamer); ok && c.tenantNamer == nil {
			c.tenantNamer = namer
		}
		if provider, ok := m.(modules.MetricsProvider); ok {
			for _, collector := range provider.Collectors() {
				if err := s.metrics.registry.Register(collector); err != nil {
					return nil, fmt.Errorf("metrics of module %s: %w", m.Name(), err)
				}
			}
		}
	}
	s.handler = s.withHealth(c.handler())

	if err := opts.Serving.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("self-signed serving certificate: %w", err)
	}
	if err := opts.Serving.ApplyTo(&s.servingInfo); err != nil {
		return nil, fmt.Errorf("secure serving: %w", err)
	}
	s.servingInfo.ClientCA = s.clientCA
	if requestHeader != nil {
		s.servingInfo.ClientCA = dynamiccertificates.NewUnionCAContentProvider(s.clientCA, requestHeader.CAContentProvider)
	}
	return s, nil
}

// setUpClientCA reads --client-ca-file, or follows the cluster's client CA in
// kube-system/extension-apiserver-authentication.
func (s *Server) setUpClientCA() error {
	if s.opts.ClientCAFile != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", s.opts.ClientCAFile)
		if err != nil {
			return fmt.Errorf("--client-ca-file: %w", err)
		}
		s.clientCA = ca
		s.runners = append(s.runners, func(ctx context.Context) { ca.Run(ctx, 1) })
		return nil
	}
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("client-ca", "kube-system", "extension-apiserver-authentication", "client-ca-file", s.client)
	if err != nil {
		return fmt.Errorf("cluster client CA: %w", err)
	}
	s.clientCA = ca
	s.runners = append(s.runners, func(ctx context.Context) {
		if err := ca.RunOnce(ctx); err != nil {
			klog.ErrorS(err, "reading the cluster's client CA; retrying in the background")
		}
		ca.Run(ctx, 1)
	})
	return nil
}

func (s *Server) requestHeaderConfig() (*authenticatorfactory.RequestHeaderConfig, error) {
	rh := s.opts.RequestHeader
	if rh.ClientCAFile == "" {
		return nil, nil
	}
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("requestheader-client-ca", rh.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("--requestheader-client-ca-file: %w", err)
	}
	s.runners = append(s.runners, func(ctx context.Context) { ca.Run(ctx, 1) })
	return &authenticatorfactory.RequestHeaderConfig{
		UsernameHeaders:     headerrequest.StaticStringSlice(rh.UsernameHeaders),
		UIDHeaders:          headerrequest.StaticStringSlice(rh.UIDHeaders),
		GroupHeaders:        headerrequest.StaticStringSlice(rh.GroupHeaders),
		ExtraHeaderPrefixes: headerrequest.StaticStringSlice(rh.ExtraHeaderPrefixes),
		CAContentProvider:   ca,
		AllowedClientNames:  headerrequest.StaticStringSlice(rh.AllowedNames),
	}, nil
}

// Handler returns the complete secure-port handler (for tests that serve it themselves).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address the secure port listens on.
func (s *Server) Addr() net.Addr { return s.servingInfo.Listener.Addr() }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	defer func() { _ = s.audit.Close() }()
	for _, run := range s.runners {
		go run(ctx)
	}
	for _, m := range s.modules {
		if starter, ok := m.(modules.Starter); ok {
			if err := starter.Start(ctx); err != nil {
				return fmt.Errorf("starting module %s: %w", m.Name(), err)
			}
		}
	}
	if addr := s.opts.MetricsBindAddress; addr != "" && addr != "0" {
		metricsServer := &http.Server{Addr: addr, Handler: s.metrics.handler(s.opts.Profiling), ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		go func() { _ = metricsServer.Serve(ln) }()
		defer func() { _ = metricsServer.Close() }()
		klog.InfoS("Serving metrics", "address", ln.Addr().String())
	}
	stopped, _, err := s.servingInfo.Serve(s.handler, 10*time.Second, ctx.Done())
	if err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	go s.releaseStartupPagesWhenReady(ctx)
	<-stopped
	return nil
}

// releaseStartupPagesWhenReady waits until the proxy is ready, when start-up (package initialisation, flag
// parsing, the first cache sync) is over, and then drops the executable pages it touched from the resident set.
func (s *Server) releaseStartupPagesWhenReady(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for s.ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	before, after, err := startuppages.Release()
	if err != nil {
		klog.V(2).InfoS("Start-up pages of the executable not released", "err", err)
		return
	}
	klog.InfoS("Released start-up pages of the executable", "residentMiBBefore", before.Resident>>20, "residentMiBAfter", after.Resident>>20)
}

// withHealth answers the probes without credentials; everything else goes through the chain.
func (s *Server) withHealth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/livez":
			writeProbe(w, nil)
		case "/readyz":
			writeProbe(w, s.ready(r.Context()))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func writeProbe(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// ready fails until the client CA is loaded, the API server would accept our front-proxy certificate (when
// configured), every module's caches are synced and the API server answers.
func (s *Server) ready(ctx context.Context) error {
	if len(s.clientCA.CurrentCABundleContent()) == 0 {
		return errors.New("client CA not loaded yet")
	}
	if err := s.authn.HealthCheck(); err != nil {
		return fmt.Errorf("authenticator: %w", err)
	}
	if s.frontProxy != nil {
		if err := s.frontProxy.check(); err != nil {
			return fmt.Errorf("upstream front proxy: %w", err)
		}
	}
	for _, m := range s.modules {
		if rc, ok := m.(modules.ReadinessChecker); ok {
			if err := rc.Ready(ctx); err != nil {
				return fmt.Errorf("module %s: %w", m.Name(), err)
			}
		}
	}
	return s.upstreamReady(ctx)
}

// upstreamReady asks the API server's /readyz at most once a second, however often probes come.
func (s *Server) upstreamReady(ctx context.Context) error {
	s.upstreamMu.Lock()
	defer s.upstreamMu.Unlock()
	if time.Since(s.upstreamChecked) < time.Second {
		return s.upstreamErr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := s.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		err = fmt.Errorf("API server not ready: %w", err)
	}
	s.upstreamChecked, s.upstreamErr = time.Now(), err
	return err
}
