package releases

import (
	"context"
	"sync"
)

// keyedMutex serialises operations per release (namespace/name) within this proxy; Helm's own pending
// states guard against other writers. Entries exist only while held or awaited.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	ch      chan struct{} // holds one token while the key is locked
	waiters int
}

func newKeyedMutex() *keyedMutex { return &keyedMutex{locks: map[string]*keyedEntry{}} }

// Lock waits for key or ctx's end; on success the returned function unlocks.
func (k *keyedMutex) Lock(ctx context.Context, key string) (func(), error) {
	k.mu.Lock()
	e, ok := k.locks[key]
	if !ok {
		e = &keyedEntry{ch: make(chan struct{}, 1)}
		k.locks[key] = e
	}
	e.waiters++
	k.mu.Unlock()

	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; k.release(key, e) }, nil
	case <-ctx.Done():
		k.release(key, e)
		return nil, ctx.Err()
	}
}

func (k *keyedMutex) release(key string, e *keyedEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e.waiters--
	if e.waiters == 0 {
		delete(k.locks, key)
	}
}
