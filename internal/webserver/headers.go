package webserver

import (
	"net/http"
	"net/textproto"
	"strings"
)

// forwardedRequestHeaders is the allow-list of end-to-end headers a client may send upstream. Everything
// else (credentials, Impersonate-*, X-Remote-*, forwarding and hop-by-hop headers, anything named in
// Connection) is dropped: the upstream request is built, not inherited.
var forwardedRequestHeaders = []string{
	"Accept",
	"Accept-Encoding",
	"Accept-Language",
	"Cache-Control",
	"Content-Encoding",
	"Content-Type",
	"If-Match",
	"If-Modified-Since",
	"If-None-Match",
	"If-Unmodified-Since",
	"Kubectl-Command",
	"Kubectl-Session",
	"Origin",
	"Traceparent",
	"Tracestate",
	"User-Agent",
	// Streaming sub-protocol negotiation for exec, attach and port-forward.
	"X-Stream-Protocol-Version",
	"Sec-Websocket-Extensions",
	"Sec-Websocket-Key",
	"Sec-Websocket-Version",
}

// allowedUpgrades are the only protocols Kubernetes streams use.
var allowedUpgrades = map[string]bool{"spdy/3.1": true, "websocket": true}

// websocketBearerPrefix marks a credential carried in Sec-WebSocket-Protocol by browsers.
const websocketBearerPrefix = "base64url.bearer.authorization.k8s.io."

// upstreamHeaders returns the headers to send upstream for an incoming request. upgrade says whether this is
// a validated protocol upgrade; only then are Connection: Upgrade and Upgrade kept.
func upstreamHeaders(in http.Header, upgrade string) http.Header {
	out := make(http.Header, 8) // a request carries a few of the allowed headers; a bigger hint cost 1 KiB per request
	named := connectionTokens(in)
	for _, name := range forwardedRequestHeaders {
		if named[name] {
			continue // hop-by-hop by the client's own declaration
		}
		if values, ok := in[name]; ok {
			out[name] = values
		}
	}
	if protocols := websocketProtocols(in); len(protocols) > 0 && !named["Sec-Websocket-Protocol"] {
		out["Sec-Websocket-Protocol"] = []string{strings.Join(protocols, ", ")}
	}
	if upgrade != "" {
		out["Connection"] = []string{"Upgrade"}
		out["Upgrade"] = []string{upgrade}
	}
	return out
}

// connectionTokens returns the canonical names of the headers listed in Connection (any case, any spacing).
func connectionTokens(h http.Header) map[string]bool {
	values := h.Values("Connection")
	if len(values) == 0 {
		return nil
	}
	named := map[string]bool{}
	for _, v := range values {
		for _, token := range strings.Split(v, ",") {
			if token = strings.TrimSpace(token); token != "" {
				named[textproto.CanonicalMIMEHeaderKey(token)] = true
			}
		}
	}
	return named
}

// websocketProtocols returns the client's WebSocket sub-protocols without bearer credentials.
func websocketProtocols(h http.Header) []string {
	var protocols []string
	for _, v := range h.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if p == "" || strings.HasPrefix(strings.ToLower(p), websocketBearerPrefix) {
				continue
			}
			protocols = append(protocols, p)
		}
	}
	return protocols
}

// requestedUpgrade returns the lower-cased upgrade protocol of a real upgrade request (Connection names
// Upgrade and an Upgrade header is present), or "".
func requestedUpgrade(r *http.Request) string {
	if !connectionTokens(r.Header)["Upgrade"] {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(r.Header.Get("Upgrade")))
}

// isIdentityHeader reports headers that carry or forge identity and must never reach the API server from
// a client: the proxy sets the identity itself.
func isIdentityHeader(name string) bool {
	n := strings.ToLower(name)
	return n == "authorization" || n == "proxy-authorization" || n == "audit-id" || n == "forwarded" ||
		strings.HasPrefix(n, "impersonate-") || strings.HasPrefix(n, "x-remote-") || strings.HasPrefix(n, "x-forwarded-")
}
