package webserver

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apiserver/pkg/server/options"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// Options are the flags of `tenant-proxy serve`, named as kube-apiserver names them where it has them.
type Options struct {
	Kubeconfig  string
	KubeContext string

	Serving *options.SecureServingOptions

	ClientCAFile           string
	RequestHeader          RequestHeaderOptions
	OIDC                   request.OIDCConfig
	AnonymousAuth          bool
	TokenCacheTTL          time.Duration
	TokenFailureCacheTTL   time.Duration
	APIAudiences           []string
	ReviewTimeout          time.Duration
	MaxImpersonationValues int

	// UpstreamFrontProxy{Cert,Key}File switch the upstream identity from impersonation to front-proxy headers.
	UpstreamFrontProxyCertFile string
	UpstreamFrontProxyKeyFile  string

	CapsuleConfigurationName string

	MetricsBindAddress string
	Profiling          bool
	AuditLogPath       string
	AuditPolicyFile    string
	Debug              bool
}

// RequestHeaderOptions configure trust in a front proxy's identity headers.
type RequestHeaderOptions struct {
	ClientCAFile        string
	AllowedNames        []string
	UsernameHeaders     []string
	UIDHeaders          []string
	GroupHeaders        []string
	ExtraHeaderPrefixes []string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	serving := options.NewSecureServingOptions()
	serving.BindPort = 9001
	serving.ServerCert.CertDirectory = "" // self-signed certificates stay in memory
	serving.ServerCert.PairName = "tenant-proxy"
	return &Options{
		Serving: serving,
		RequestHeader: RequestHeaderOptions{
			UsernameHeaders:     []string{"X-Remote-User"},
			UIDHeaders:          []string{"X-Remote-Uid"},
			GroupHeaders:        []string{"X-Remote-Group"},
			ExtraHeaderPrefixes: []string{"X-Remote-Extra-"},
		},
		OIDC:                     request.OIDCConfig{UsernameClaim: "sub"},
		TokenCacheTTL:            2 * time.Minute,
		TokenFailureCacheTTL:     10 * time.Second,
		ReviewTimeout:            10 * time.Second,
		MaxImpersonationValues:   64,
		MetricsBindAddress:       "127.0.0.1:9090",
		CapsuleConfigurationName: "default",
	}
}

// AddFlags registers every flag on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig for the upstream API server and the proxy's own identity. Empty means in-cluster configuration.")
	fs.StringVar(&o.KubeContext, "kube-context", o.KubeContext, "Context of --kubeconfig to use. Empty means its current context.")
	o.Serving.AddFlags(fs)

	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile, "CA bundle that verifies client certificates (CN = user, O = groups). Empty means the cluster's client CA from kube-system/extension-apiserver-authentication, kept current.")
	fs.StringVar(&o.RequestHeader.ClientCAFile, "requestheader-client-ca-file", o.RequestHeader.ClientCAFile, "CA bundle that verifies the client certificate of a trusted front proxy. Identity headers are honoured only from such a certificate. Empty disables front-proxy authentication.")
	fs.StringSliceVar(&o.RequestHeader.AllowedNames, "requestheader-allowed-names", o.RequestHeader.AllowedNames, "Common names a front proxy's certificate may have. Empty means any name signed by --requestheader-client-ca-file.")
	fs.StringSliceVar(&o.RequestHeader.UsernameHeaders, "requestheader-username-headers", o.RequestHeader.UsernameHeaders, "Headers holding the user name set by a trusted front proxy.")
	fs.StringSliceVar(&o.RequestHeader.UIDHeaders, "requestheader-uid-headers", o.RequestHeader.UIDHeaders, "Headers holding the user UID set by a trusted front proxy.")
	fs.StringSliceVar(&o.RequestHeader.GroupHeaders, "requestheader-group-headers", o.RequestHeader.GroupHeaders, "Headers holding groups set by a trusted front proxy.")
	fs.StringSliceVar(&o.RequestHeader.ExtraHeaderPrefixes, "requestheader-extra-headers-prefix", o.RequestHeader.ExtraHeaderPrefixes, "Header prefixes holding user extras set by a trusted front proxy.")

	fs.StringVar(&o.OIDC.IssuerURL, "oidc-issuer-url", o.OIDC.IssuerURL, "URL of the OpenID issuer (https). Enables OIDC ID tokens verified by the proxy itself.")
	fs.StringVar(&o.OIDC.ClientID, "oidc-client-id", o.OIDC.ClientID, "Client ID that ID tokens must be issued for (audience).")
	fs.StringVar(&o.OIDC.CAFile, "oidc-ca-file", o.OIDC.CAFile, "CA bundle of the OpenID issuer's serving certificate. Empty means the system roots.")
	fs.StringVar(&o.OIDC.UsernameClaim, "oidc-username-claim", o.OIDC.UsernameClaim, "JWT claim used as the user name.")
	fs.StringVar(&o.OIDC.UsernamePrefix, "oidc-username-prefix", o.OIDC.UsernamePrefix, "Prefix for user names, as kube-apiserver: empty means '<issuer>#' unless the claim is 'email'; '-' disables prefixing.")
	fs.StringVar(&o.OIDC.GroupsClaim, "oidc-groups-claim", o.OIDC.GroupsClaim, "JWT claim holding the user's groups.")
	fs.StringVar(&o.OIDC.GroupsPrefix, "oidc-groups-prefix", o.OIDC.GroupsPrefix, "Prefix for group names.")
	fs.Var(cliflag.NewMapStringStringNoSplit(&o.OIDC.RequiredClaims), "oidc-required-claim", "A key=value claim that must be present in the ID token. Repeat for several.")
	fs.StringSliceVar(&o.OIDC.SigningAlgs, "oidc-signing-algs", []string{"RS256"}, "Accepted JOSE signing algorithms.")

	fs.BoolVar(&o.AnonymousAuth, "anonymous-auth", o.AnonymousAuth, "Forward requests without credentials as system:anonymous. Off by default: they get 401.")
	fs.DurationVar(&o.TokenCacheTTL, "authentication-token-webhook-cache-ttl", o.TokenCacheTTL, "How long a successful token review is cached; never longer than the token's own expiry.")
	fs.DurationVar(&o.TokenFailureCacheTTL, "authentication-token-failure-cache-ttl", o.TokenFailureCacheTTL, "How long a rejected token is remembered.")
	fs.StringSliceVar(&o.APIAudiences, "api-audiences", o.APIAudiences, "Audiences bearer tokens must be valid for in TokenReview. Empty means the API server's own.")
	fs.DurationVar(&o.ReviewTimeout, "review-timeout", o.ReviewTimeout, "Time limit of one TokenReview or SubjectAccessReview.")
	fs.IntVar(&o.MaxImpersonationValues, "max-impersonation-values", o.MaxImpersonationValues, "Largest number of Impersonate-* values (kubectl --as, --as-group, ...) one request may carry.")

	fs.StringVar(&o.UpstreamFrontProxyCertFile, "upstream-front-proxy-cert-file", o.UpstreamFrontProxyCertFile, "Client certificate signed by the API server's --requestheader-client-ca-file, with a name in its --requestheader-allowed-names. "+
		"With it, the proxy tells the API server who the caller is with front-proxy headers (names read from kube-system/extension-apiserver-authentication) "+
		"instead of impersonation, which saves the API server one authorisation check per impersonated group. Callers whose UID the API server's configuration cannot carry are still impersonated.")
	fs.StringVar(&o.UpstreamFrontProxyKeyFile, "upstream-front-proxy-key-file", o.UpstreamFrontProxyKeyFile, "Private key of --upstream-front-proxy-cert-file.")
	fs.StringVar(&o.CapsuleConfigurationName, "capsule-configuration-name", o.CapsuleConfigurationName, "Name of the CapsuleConfiguration that says who Capsule users are (Capsule's own --configuration-name).")
	fs.StringVar(&o.MetricsBindAddress, "metrics-bind-address", o.MetricsBindAddress, "Plain HTTP address of /metrics. \"0\" disables it.")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve pprof under /debug/pprof/ on the metrics address.")
	fs.StringVar(&o.AuditLogPath, "audit-log-path", o.AuditLogPath, "Write one JSON audit record per request to this file; '-' means standard output. Empty disables auditing.")
	fs.StringVar(&o.AuditPolicyFile, "audit-policy-file", o.AuditPolicyFile, "An audit.k8s.io/v1 Policy (kube-apiserver's format): requests whose first matching rule has level None get no record. Empty records every request.")
	fs.BoolVar(&o.Debug, "debug", o.Debug, "Verbose logging (klog -v=4 unless -v is given). Credentials are never logged at any verbosity.")
}

// Validate reports every invalid combination at once.
func (o *Options) Validate() error {
	var errs []error
	for _, err := range o.Serving.Validate() {
		errs = append(errs, err)
	}
	if o.OIDC.IssuerURL != "" && o.OIDC.ClientID == "" {
		errs = append(errs, errors.New("--oidc-client-id is required with --oidc-issuer-url"))
	}
	if (o.UpstreamFrontProxyCertFile == "") != (o.UpstreamFrontProxyKeyFile == "") {
		errs = append(errs, errors.New("--upstream-front-proxy-cert-file and --upstream-front-proxy-key-file go together"))
	}
	if o.MaxImpersonationValues < 1 {
		errs = append(errs, errors.New("--max-impersonation-values must be at least 1"))
	}
	if o.MetricsBindAddress != "" && o.MetricsBindAddress != "0" {
		if _, _, err := net.SplitHostPort(o.MetricsBindAddress); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-bind-address: %w", err))
		}
	}
	return errors.Join(errs...)
}
