package request

import (
	"net/http"
	"testing"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// TestRejectMalformedCredentials: credentials the authenticators would skip (and so let fall through to
// anonymous) are errors, never "no credentials".
func TestRejectMalformedCredentials(t *testing.T) {
	reached := false
	next := authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
		reached = true
		return &authenticator.Response{User: &user.DefaultInfo{Name: "system:anonymous"}}, true, nil
	})
	tests := []struct {
		name          string
		authorization []string
		wantReached   bool
	}{
		{"no header goes on (anonymous decides)", nil, true},
		{"a bearer token goes on", []string{"Bearer abc"}, true},
		{"lower-case scheme goes on", []string{"bearer abc"}, true},
		{"basic auth", []string{"Basic YTpi"}, false},
		{"blank bearer", []string{"Bearer    "}, false},
		{"bare scheme", []string{"Bearer"}, false},
		{"empty header", []string{""}, false},
		{"two headers", []string{"Bearer a", "Bearer b"}, false},
		{"two spaces before the token", []string{"Bearer  abc"}, false},
		{"a token with a space", []string{"Bearer abc def"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reached = false
			r, _ := http.NewRequest(http.MethodGet, "https://proxy/api", nil)
			for _, v := range tt.authorization {
				r.Header.Add("Authorization", v)
			}
			_, ok, err := rejectMalformedCredentials(next).AuthenticateRequest(r)
			if reached != tt.wantReached {
				t.Fatalf("reached next = %v, want %v", reached, tt.wantReached)
			}
			if !tt.wantReached && (ok || err == nil) {
				t.Fatalf("malformed credentials gave ok=%v err=%v, want an error", ok, err)
			}
		})
	}
}
