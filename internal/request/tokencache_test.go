package request

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

type countingAuthenticator struct {
	calls atomic.Int32
	ok    bool
	err   error
	delay time.Duration
}

func (c *countingAuthenticator) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	c.calls.Add(1)
	time.Sleep(c.delay)
	if c.err != nil || !c.ok {
		return nil, false, c.err
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: "u"}}, true, nil
}

func jwtWithExpiry(exp time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d}`, exp.Unix())))
	return "eyJhbGciOiJSUzI1NiJ9." + payload + ".sig"
}

func TestExpiryBoundedCache(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name      string
		token     string
		delegate  *countingAuthenticator
		advance   time.Duration
		wantCalls int32
	}{
		{"success is cached", "opaque", &countingAuthenticator{ok: true}, time.Minute, 1},
		{"success expires after the TTL", "opaque", &countingAuthenticator{ok: true}, 3 * time.Minute, 2},
		{"success never outlives the token", jwtWithExpiry(now.Add(30 * time.Second)), &countingAuthenticator{ok: true}, 31 * time.Second, 2},
		{"failure is cached briefly", "bad", &countingAuthenticator{ok: false}, 5 * time.Second, 1},
		{"failure expires", "bad", &countingAuthenticator{ok: false}, 11 * time.Second, 2},
		{"errors are not cached", "x", &countingAuthenticator{err: fmt.Errorf("unreachable")}, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := now
			c := newExpiryBoundedCache(tt.delegate, 2*time.Minute, 10*time.Second, 10)
			c.now = func() time.Time { return clock }
			_, _, _ = c.AuthenticateToken(context.Background(), tt.token)
			clock = clock.Add(tt.advance)
			_, _, _ = c.AuthenticateToken(context.Background(), tt.token)
			if got := tt.delegate.calls.Load(); got != tt.wantCalls {
				t.Fatalf("delegate called %d times, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestExpiryBoundedCacheCollapsesConcurrentReviews(t *testing.T) {
	delegate := &countingAuthenticator{ok: true, delay: 50 * time.Millisecond}
	c := newExpiryBoundedCache(delegate, time.Minute, time.Second, 10)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, ok, err := c.AuthenticateToken(context.Background(), "tok"); !ok || err != nil {
				t.Errorf("AuthenticateToken = %v, %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if got := delegate.calls.Load(); got != 1 {
		t.Fatalf("20 concurrent requests made %d reviews, want 1", got)
	}
}

func TestExpiryBoundedCacheSeparatesAudiences(t *testing.T) {
	delegate := &countingAuthenticator{ok: true}
	c := newExpiryBoundedCache(delegate, time.Minute, time.Second, 10)
	_, _, _ = c.AuthenticateToken(authenticator.WithAudiences(context.Background(), authenticator.Audiences{"a"}), "tok")
	_, _, _ = c.AuthenticateToken(authenticator.WithAudiences(context.Background(), authenticator.Audiences{"b"}), "tok")
	if got := delegate.calls.Load(); got != 2 {
		t.Fatalf("a token reviewed for one audience was reused for another (%d reviews)", got)
	}
}

func TestExpiryBoundedCacheIsBounded(t *testing.T) {
	c := newExpiryBoundedCache(&countingAuthenticator{ok: false}, time.Minute, time.Minute, 100)
	for i := range 1000 {
		_, _, _ = c.AuthenticateToken(context.Background(), fmt.Sprintf("flood-%d", i))
	}
	if n := len(c.failures); n > 100 {
		t.Fatalf("cache holds %d failures, want at most 100", n)
	}
}

// TestBadTokenFloodKeepsGoodTokens: rejected tokens live apart from accepted ones, so a flood of bad tokens
// never costs a good client a new review.
func TestBadTokenFloodKeepsGoodTokens(t *testing.T) {
	good := &countingAuthenticator{ok: true}
	c := newExpiryBoundedCache(good, time.Minute, time.Minute, 100)
	_, _, _ = c.AuthenticateToken(context.Background(), "good")
	c.delegate = &countingAuthenticator{ok: false}
	for i := range 1000 {
		_, _, _ = c.AuthenticateToken(context.Background(), fmt.Sprintf("bad-%d", i))
	}
	c.delegate = good
	if _, ok, _ := c.AuthenticateToken(context.Background(), "good"); !ok || good.calls.Load() != 1 {
		t.Fatalf("good token after a flood: ok=%v, reviews=%d; want ok from the cache", ok, good.calls.Load())
	}
}
