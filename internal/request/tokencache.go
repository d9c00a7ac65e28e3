package request

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/apiserver/pkg/authentication/authenticator"
)

// expiryBoundedCache caches token authentication results keyed by a hash of the token (never the token itself).
//
// Why not k8s.io/apiserver/pkg/authentication/token/cache: it keeps a success for a fixed TTL, even past the
// token's own expiry. Here a success lives at most until the token's "exp" claim (read without verification
// only to shorten the TTL, never to trust anything), failures live briefly, and concurrent reviews of the
// same token collapse into one.
type expiryBoundedCache struct {
	delegate   authenticator.Token
	successTTL time.Duration
	failureTTL time.Duration
	maxEntries int
	now        func() time.Time

	mu       sync.Mutex
	entries  map[[sha256.Size]byte]cacheEntry // successes
	failures map[[sha256.Size]byte]cacheEntry // kept apart, so a flood of bad tokens never evicts good ones
	group    singleflight.Group
	reviews  chan struct{} // bounds concurrent reviews: a flood of distinct tokens waits, it does not fan out
}

type cacheEntry struct {
	resp    *authenticator.Response
	ok      bool
	expires time.Time
}

func newExpiryBoundedCache(delegate authenticator.Token, successTTL, failureTTL time.Duration, maxEntries int) *expiryBoundedCache {
	return &expiryBoundedCache{
		delegate:   delegate,
		successTTL: successTTL,
		failureTTL: failureTTL,
		maxEntries: maxEntries,
		now:        time.Now,
		entries:    make(map[[sha256.Size]byte]cacheEntry),
		failures:   make(map[[sha256.Size]byte]cacheEntry),
		reviews:    make(chan struct{}, maxConcurrentReviews),
	}
}

// maxConcurrentReviews is how many distinct tokens are verified at once.
const maxConcurrentReviews = 32

// AuthenticateToken answers from the cache or asks the delegate once for all concurrent callers.
// Audiences requested through the context are part of the key, so a token accepted for one audience
// is never reused for another.
func (c *expiryBoundedCache) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	key := cacheKey(ctx, token)
	now := c.now()
	c.mu.Lock()
	entry, found := c.entries[key]
	if !found {
		entry, found = c.failures[key]
	}
	c.mu.Unlock()
	if found && now.Before(entry.expires) {
		tokenCacheHits.Inc()
		return entry.resp, entry.ok, nil
	}
	tokenCacheMisses.Inc()

	type result struct {
		resp *authenticator.Response
		ok   bool
	}
	select {
	case c.reviews <- struct{}{}:
		defer func() { <-c.reviews }()
	case <-ctx.Done():
		return nil, false, fmt.Errorf("waiting to verify the token: %w", ctx.Err())
	}
	v, err, _ := c.group.Do(string(key[:]), func() (any, error) {
		// Detach from the first caller's cancellation so one impatient client cannot fail the others.
		reviewCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		resp, ok, err := c.delegate.AuthenticateToken(reviewCtx, token)
		if err != nil {
			return nil, err // errors (timeouts, unreachable server) are not cached: the next request asks again
		}
		c.store(key, token, resp, ok)
		return result{resp: resp, ok: ok}, nil
	})
	if err != nil {
		return nil, false, err
	}
	r := v.(result)
	return r.resp, r.ok, nil
}

func (c *expiryBoundedCache) store(key [sha256.Size]byte, token string, resp *authenticator.Response, ok bool) {
	now := c.now()
	ttl := c.failureTTL
	if ok {
		ttl = c.successTTL
		if exp, found := unverifiedExpiry(token); found && exp.Sub(now) < ttl {
			ttl = exp.Sub(now)
		}
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	entries := c.entries
	if !ok {
		entries = c.failures
	}
	if len(entries) >= c.maxEntries {
		evictExpired(entries, now)
		if len(entries) >= c.maxEntries {
			// Many distinct tokens must not grow memory without bound: start this map over.
			clear(entries)
		}
	}
	entries[key] = cacheEntry{resp: resp, ok: ok, expires: now.Add(ttl)}
}

func evictExpired(entries map[[sha256.Size]byte]cacheEntry, now time.Time) {
	for k, e := range entries {
		if !now.Before(e.expires) {
			delete(entries, k)
		}
	}
}

func cacheKey(ctx context.Context, token string) [sha256.Size]byte {
	h := sha256.New()
	if auds, ok := authenticator.AudiencesFrom(ctx); ok {
		for _, a := range auds {
			h.Write([]byte(a))
			h.Write([]byte{0})
		}
	}
	h.Write([]byte{1})
	h.Write([]byte(token))
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// unverifiedExpiry reads the "exp" claim of a JWT-shaped token. It is only used to shorten a cache TTL; the
// signature is checked by whoever authenticated the token.
func unverifiedExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	seconds, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(seconds), 0), true
}
