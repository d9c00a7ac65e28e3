package testbed

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const oidcKeyID = "testbed"

// oidcServer is the part of OIDCIssuer that is not exported.
type oidcServer struct {
	key    *rsa.PrivateKey
	server *http.Server
}

// startOIDCIssuer serves discovery and JWKS over https on a free loopback port.
func startOIDCIssuer(ca *CA, caFile string) (*OIDCIssuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate OIDC signing key: %w", err)
	}
	certPEM, keyPEM, err := ca.IssueServingCert("127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("OIDC serving certificate: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for OIDC issuer: %w", err)
	}
	o := &OIDCIssuer{
		URL:            "https://" + l.Addr().String(),
		ClientID:       "tenant-proxy",
		CAFile:         caFile,
		UsernameClaim:  "sub",
		UsernamePrefix: "oidc:",
		GroupsClaim:    "groups",
		GroupsPrefix:   "oidc:",
		oidc:           &oidcServer{key: key},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                o.URL,
			"jwks_uri":                              o.URL + "/keys",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &key.PublicKey, KeyID: oidcKeyID, Algorithm: string(jose.RS256), Use: "sig",
		}}})
	})
	o.oidc.server = &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = o.oidc.server.ServeTLS(l, "", "") }()
	return o, nil
}

// Token signs an ID token for subject with the given groups, valid for ttl.
func (o *OIDCIssuer) Token(subject string, groups []string, ttl time.Duration) (string, error) {
	return o.TokenWithAudience(subject, groups, ttl, o.ClientID)
}

// TokenWithAudience signs an ID token like Token but for another audience (to test that it is refused).
func (o *OIDCIssuer) TokenWithAudience(subject string, groups []string, ttl time.Duration, audience string) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: o.oidc.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", oidcKeyID),
	)
	if err != nil {
		return "", fmt.Errorf("OIDC signer: %w", err)
	}
	now := time.Now()
	claims := jwt.Claims{
		Issuer:    o.URL,
		Subject:   subject,
		Audience:  jwt.Audience{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), // tolerate clock skew
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
	}
	if groups == nil {
		groups = []string{}
	}
	token, err := jwt.Signed(signer).Claims(claims).Claims(map[string]any{"groups": groups}).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign OIDC token: %w", err)
	}
	return token, nil
}

func (o *OIDCIssuer) close() {
	if o != nil && o.oidc != nil {
		_ = o.oidc.server.Close()
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
