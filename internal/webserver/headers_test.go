package webserver

import (
	"net/http"
	"reflect"
	"testing"
)

func TestUpstreamHeaders(t *testing.T) {
	tests := []struct {
		name    string
		in      http.Header
		upgrade string
		want    http.Header
	}{
		{
			name: "identity and forwarding headers are dropped in any case",
			in: http.Header{
				"Accept":                  {"application/json"},
				"Authorization":           {"Bearer secret"},
				"Impersonate-User":        {"admin"},
				"Impersonate-Group":       {"system:masters", "x"},
				"Impersonate-Uid":         {"1"},
				"Impersonate-Extra-Scope": {"all"},
				"X-Remote-User":           {"admin"},
				"X-Remote-Group":          {"system:masters"},
				"X-Remote-Extra-Foo":      {"bar"},
				"X-Forwarded-For":         {"1.2.3.4"},
				"X-Forwarded-Client-Cert": {"x"},
				"Forwarded":               {"for=1.2.3.4"},
				"Audit-Id":                {"forged"},
				"Proxy-Authorization":     {"Basic x"},
			},
			want: http.Header{"Accept": {"application/json"}},
		},
		{
			name: "headers named in Connection are hop-by-hop",
			in: http.Header{
				"Connection":   {"Accept,  user-agent"},
				"Accept":       {"application/json"},
				"User-Agent":   {"kubectl"},
				"Content-Type": {"application/json"},
			},
			want: http.Header{"Content-Type": {"application/json"}},
		},
		{
			name:    "a real upgrade keeps only Connection: Upgrade and the protocol",
			in:      http.Header{"Connection": {"Upgrade, Impersonate-User"}, "Upgrade": {"SPDY/3.1"}, "X-Stream-Protocol-Version": {"v4.channel.k8s.io"}},
			upgrade: "spdy/3.1",
			want:    http.Header{"Connection": {"Upgrade"}, "Upgrade": {"spdy/3.1"}, "X-Stream-Protocol-Version": {"v4.channel.k8s.io"}},
		},
		{
			name: "bearer credentials are removed from WebSocket sub-protocols",
			in: http.Header{"Sec-Websocket-Protocol": {
				"base64url.bearer.authorization.k8s.io.c2VjcmV0, v5.channel.k8s.io", "Base64url.Bearer.Authorization.K8s.Io.eA, v4.channel.k8s.io",
			}},
			want: http.Header{"Sec-Websocket-Protocol": {"v5.channel.k8s.io, v4.channel.k8s.io"}},
		},
		{
			name: "no Connection header is invented for ordinary requests",
			in:   http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Te": {"trailers"}, "Upgrade": {"websocket"}},
			want: http.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := upstreamHeaders(tt.in, tt.upgrade)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("upstreamHeaders() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequestedUpgrade(t *testing.T) {
	tests := []struct {
		connection, upgrade, want string
	}{
		{"Upgrade", "SPDY/3.1", "spdy/3.1"},
		{"keep-alive, upgrade", "websocket", "websocket"},
		{"keep-alive", "websocket", ""},
		{"Upgrade", "", ""},
		{"Upgrade", "h2c", "h2c"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodGet, "https://proxy/api", nil)
		r.Header.Set("Connection", tt.connection)
		if tt.upgrade != "" {
			r.Header.Set("Upgrade", tt.upgrade)
		}
		if got := requestedUpgrade(r); got != tt.want {
			t.Errorf("requestedUpgrade(Connection=%q, Upgrade=%q) = %q, want %q", tt.connection, tt.upgrade, got, tt.want)
		}
	}
}
