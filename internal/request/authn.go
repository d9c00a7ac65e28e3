// Package request answers who is calling and what they ask: it authenticates callers, authorises client
// impersonation, and parses requests the way the API server does.
package request

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/websocket"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	tokenunion "k8s.io/apiserver/pkg/authentication/token/union"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/plugin/pkg/authenticator/token/oidc"
	webhooktoken "k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// OIDCConfig mirrors kube-apiserver's --oidc-* flags, so that a user gets the same name through the proxy as
// directly.
type OIDCConfig struct {
	IssuerURL      string
	ClientID       string
	CAFile         string
	UsernameClaim  string
	UsernamePrefix string // "" means kube-apiserver's default: "<issuer>#" unless the claim is "email"; "-" means none
	GroupsClaim    string
	GroupsPrefix   string
	RequiredClaims map[string]string
	SigningAlgs    []string
}

// AuthenticatorConfig is everything needed to authenticate a caller.
type AuthenticatorConfig struct {
	// ClientCA verifies client certificates (CN = user, O = groups).
	ClientCA dynamiccertificates.CAContentProvider
	// RequestHeader, when set, trusts front-proxy headers, but only from a client certificate it verifies.
	RequestHeader *authenticatorfactory.RequestHeaderConfig
	// TokenReviews checks bearer tokens the proxy cannot verify itself. Nil disables TokenReview.
	TokenReviews       authenticationclient.AuthenticationV1Interface
	TokenReviewTimeout time.Duration
	TokenCacheTTL      time.Duration // success, bounded by the token's own expiry
	TokenFailureTTL    time.Duration
	APIAudiences       authenticator.Audiences
	OIDC               *OIDCConfig
	Anonymous          bool
}

// Authenticator authenticates requests and reports whether it is ready (an OIDC issuer's keys are fetched
// in the background after start).
type Authenticator struct {
	authenticator.Request
	healthChecks []func() error
}

// HealthCheck fails until every authenticator that loads state in the background has loaded it.
func (a *Authenticator) HealthCheck() error {
	for _, check := range a.healthChecks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// NewAuthenticator assembles k8s.io/apiserver's authenticators in the API server's order: front proxy,
// client certificate, bearer token (OIDC verified locally, anything else by a cached TokenReview), the
// WebSocket bearer sub-protocol, and anonymous only when enabled.
func NewAuthenticator(ctx context.Context, cfg AuthenticatorConfig) (*Authenticator, error) {
	var requestAuthenticators []authenticator.Request
	var healthChecks []func() error
	if rh := cfg.RequestHeader; rh != nil {
		frontProxy := headerrequest.NewDynamicVerifyOptionsSecure(
			rh.CAContentProvider.VerifyOptions, rh.AllowedClientNames,
			rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders, rh.ExtraHeaderPrefixes)
		requestAuthenticators = append(requestAuthenticators, onlyWithHeaders(frontProxy, rh.UsernameHeaders.Value))
	}
	if cfg.ClientCA != nil {
		certs := x509.NewDynamic(cfg.ClientCA.VerifyOptions, x509.CommonNameUserConversion)
		requestAuthenticators = append(requestAuthenticators, newVerifiedCertCache(certs, cfg.ClientCA, time.Minute, 100000))
	}

	var tokenAuthenticators []authenticator.Token
	if cfg.OIDC != nil && cfg.OIDC.IssuerURL != "" {
		oidcAuth, err := newOIDCAuthenticator(ctx, *cfg.OIDC)
		if err != nil {
			return nil, err
		}
		tokenAuthenticators = append(tokenAuthenticators, oidcAuth)
		healthChecks = append(healthChecks, oidcAuth.HealthCheck)
	}
	if cfg.TokenReviews != nil {
		backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 3}
		review, err := webhooktoken.NewFromInterface(cfg.TokenReviews, cfg.APIAudiences, backoff, cfg.TokenReviewTimeout, webhooktoken.AuthenticatorMetrics{
			RecordRequestTotal:   authenticatorfactory.RecordRequestTotal,
			RecordRequestLatency: authenticatorfactory.RecordRequestLatency,
		})
		if err != nil {
			return nil, fmt.Errorf("token review authenticator: %w", err)
		}
		tokenAuthenticators = append(tokenAuthenticators, review)
	}
	if len(tokenAuthenticators) > 0 {
		// The OIDC authenticator answers "not mine" for tokens of other issuers, so the union falls through to
		// TokenReview; the cache sits in front of both so a busy client costs one verification.
		tokens := newExpiryBoundedCache(tokenunion.New(tokenAuthenticators...), cfg.TokenCacheTTL, cfg.TokenFailureTTL, 100000)
		requestAuthenticators = append(requestAuthenticators, bearertoken.New(tokens), websocket.NewProtocolAuthenticator(tokens))
	}
	if len(requestAuthenticators) == 0 && !cfg.Anonymous {
		return nil, errors.New("no authentication method configured")
	}

	auth := group.NewAuthenticatedGroupAdder(union.New(requestAuthenticators...))
	if cfg.Anonymous {
		auth = union.NewFailOnError(auth, anonymous.NewAuthenticator(nil))
	}
	return &Authenticator{Request: rejectMalformedCredentials(auth), healthChecks: healthChecks}, nil
}

func newOIDCAuthenticator(ctx context.Context, cfg OIDCConfig) (oidc.AuthenticatorTokenWithHealthCheck, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("--oidc-client-id is required with --oidc-issuer-url")
	}
	usernameClaim := cfg.UsernameClaim
	if usernameClaim == "" {
		usernameClaim = "sub"
	}
	usernamePrefix := cfg.UsernamePrefix
	switch {
	case usernamePrefix == "-":
		usernamePrefix = ""
	case usernamePrefix == "" && usernameClaim != "email":
		usernamePrefix = cfg.IssuerURL + "#" // what kube-apiserver does, so names match RBAC bindings
	}
	jwt := apiserver.JWTAuthenticator{
		Issuer: apiserver.Issuer{URL: cfg.IssuerURL, Audiences: []string{cfg.ClientID}},
		ClaimMappings: apiserver.ClaimMappings{
			Username: apiserver.PrefixedClaimOrExpression{Claim: usernameClaim, Prefix: &usernamePrefix},
		},
	}
	if cfg.GroupsClaim != "" {
		groupsPrefix := cfg.GroupsPrefix
		jwt.ClaimMappings.Groups = apiserver.PrefixedClaimOrExpression{Claim: cfg.GroupsClaim, Prefix: &groupsPrefix}
	}
	for claim, value := range cfg.RequiredClaims {
		jwt.ClaimValidationRules = append(jwt.ClaimValidationRules, apiserver.ClaimValidationRule{Claim: claim, RequiredValue: value})
	}
	opts := oidc.Options{JWTAuthenticator: jwt, SupportedSigningAlgs: cfg.SigningAlgs}
	if cfg.CAFile != "" {
		ca, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --oidc-ca-file: %w", err)
		}
		jwt.Issuer.CertificateAuthority = string(ca)
		opts.JWTAuthenticator = jwt
		provider, err := dynamiccertificates.NewStaticCAContent("oidc-ca", ca)
		if err != nil {
			return nil, fmt.Errorf("parsing --oidc-ca-file: %w", err)
		}
		opts.CAContentProvider = provider
	}
	auth, err := oidc.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("oidc authenticator: %w", err)
	}
	return auth, nil
}

// rejectMalformedCredentials fails closed on credentials the API server would not accept but that the
// authenticators above would silently skip (and so let fall through to anonymous): more than one
// Authorization header, a scheme other than Bearer (basic auth), or a bearer token that is empty or blank.
func rejectMalformedCredentials(next authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		values := req.Header.Values("Authorization")
		switch {
		case len(values) > 1:
			return nil, false, errors.New("more than one Authorization header")
		case len(values) == 1:
			// Exactly "Bearer <token>": the bearer authenticator reads the second space-separated field, so
			// anything else ("Bearer  x", "Bearer x y") would be silently skipped and fall through.
			parts := strings.Split(strings.TrimSpace(values[0]), " ")
			if !strings.EqualFold(parts[0], "bearer") {
				return nil, false, errors.New("unsupported authorization scheme")
			}
			if len(parts) != 2 || parts[1] == "" {
				return nil, false, errors.New("malformed bearer token")
			}
		}
		return next.AuthenticateRequest(req)
	})
}
