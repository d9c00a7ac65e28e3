package releases

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeyedMutex(t *testing.T) {
	tests := []struct {
		name        string
		keys        []string
		wantMaxHeld int32 // most holders of one key at once
	}{
		{name: "one key is held by one at a time", keys: []string{"a", "a", "a", "a"}, wantMaxHeld: 1},
		{name: "two keys, each held by one at a time", keys: []string{"a", "b", "a", "b"}, wantMaxHeld: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newKeyedMutex()
			held := map[string]*atomic.Int32{}
			for _, key := range tt.keys {
				held[key] = &atomic.Int32{}
			}
			var most atomic.Int32
			var wg sync.WaitGroup
			for _, key := range tt.keys {
				wg.Add(1)
				go func() {
					defer wg.Done()
					unlock, err := k.Lock(context.Background(), key)
					if err != nil {
						t.Error(err)
						return
					}
					n := held[key].Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					time.Sleep(10 * time.Millisecond)
					held[key].Add(-1)
					unlock()
				}()
			}
			wg.Wait()
			if most.Load() != tt.wantMaxHeld {
				t.Errorf("at most %d holders of one key, want %d", most.Load(), tt.wantMaxHeld)
			}
			if len(k.locks) != 0 {
				t.Errorf("%d entries left after every unlock", len(k.locks))
			}
		})
	}
}

func TestKeyedMutexWaitEndsWithContext(t *testing.T) {
	k := newKeyedMutex()
	unlock, err := k.Lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	unlockB, err := k.Lock(ctx, "b")
	if err != nil {
		t.Fatalf("another key waited for a held one: %v", err)
	}
	unlockB()
	if _, err := k.Lock(ctx, "a"); err == nil {
		t.Fatal("second lock of a held key succeeded")
	}
	unlock()
	if len(k.locks) != 0 {
		t.Errorf("%d entries left", len(k.locks))
	}
}
