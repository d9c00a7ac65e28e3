// Package growstack gives a goroutine, in one step, the stack it is about to need.
//
// Go starts every goroutine with a small stack and doubles it when a call would overflow, copying the whole
// stack each time; the copy walks every frame, so it costs most when the stack is already deep. A goroutine
// that runs one request through the proxy (the HTTP/2 server starts one per request) grows from 2 KiB
// several times, deep inside the handler chain and the upstream round trip: in CPU profiles of the bench
// that was a tenth of the proxy's time. Reserving the stack at the start of the goroutine costs one copy of
// a shallow stack instead.
package growstack

// reserve is the frame Reserve asks for. The runtime sizes the new stack to the next power of two that
// holds what is in use plus this frame, so the goroutine ends up with 16 KiB, the largest size the runtime
// keeps in per-P caches: larger stacks are allocated from (and freed to) the heap under its lock.
const reserve = 12 << 10

// Reserve grows the calling goroutine's stack to 16 KiB unless it is already that large. It is cheap
// when called near the bottom of a goroutine's stack and useless anywhere else.
//
//go:noinline
func Reserve() {
	var frame [reserve]byte
	keep(frame[:])
}

// keep stops the compiler from dropping the frame: it cannot see that keep does not read it.
//
//go:noinline
func keep([]byte) {}
