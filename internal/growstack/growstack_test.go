package growstack

import (
	"testing"
	"unsafe"
)

// The stack moves when it grows, and a local variable with it, so the address of a local says whether
// the goroutine's stack was copied.
func TestReserveGrowsOnceForTheDepthItReserves(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reserve bool
		depth   int // bytes of stack used after the reservation
		moves   bool
	}{
		{name: "without reserving, using 10 KiB grows the stack", reserve: false, depth: 10 << 10, moves: true},
		{name: "after reserving, using 10 KiB does not", reserve: true, depth: 10 << 10, moves: false},
		{name: "after reserving, using 2 KiB does not", reserve: true, depth: 2 << 10, moves: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moved := make(chan bool)
			go func() { // a new goroutine starts with the smallest stack
				var local byte
				if tc.reserve {
					Reserve()
				}
				before := uintptr(unsafe.Pointer(&local))
				use(tc.depth)
				moved <- uintptr(unsafe.Pointer(&local)) != before
			}()
			if got := <-moved; got != tc.moves {
				t.Errorf("stack moved = %v, want %v", got, tc.moves)
			}
		})
	}
}

func TestReserveOnALargeStackKeepsIt(t *testing.T) {
	moved := make(chan bool)
	go func() {
		var local byte
		use(20 << 10) // grows the stack beyond what Reserve asks for
		before := uintptr(unsafe.Pointer(&local))
		Reserve()
		moved <- uintptr(unsafe.Pointer(&local)) != before
	}()
	if <-moved {
		t.Error("Reserve moved a stack that was already large enough")
	}
}

// use puts about n bytes of frames on the stack, 1 KiB at a time.
//
//go:noinline
func use(n int) byte {
	var frame [1 << 10]byte
	frame[n%len(frame)] = byte(n)
	if n <= len(frame) {
		return frame[0]
	}
	return use(n-len(frame)) + frame[1]
}
