// Package capture holds an upstream answer in memory, so a module can look at (and combine) what the API
// server said before answering the client itself.
package capture

import (
	"bytes"
	"net/http"
	"sync/atomic"
)

// Budget is a byte limit shared by Recorders that fill at the same time (one request's concurrent
// sub-requests), so that together they hold no more than it.
type Budget struct{ remaining atomic.Int64 }

// NewBudget returns a Budget of limit bytes.
func NewBudget(limit int) *Budget {
	b := &Budget{}
	b.remaining.Store(int64(limit))
	return b
}

// take reserves n bytes, or reports false (and reserves nothing) when fewer are left.
func (b *Budget) take(n int) bool {
	// Compare-and-swap rather than add-then-refund, so a refused write never makes a concurrent one that fits
	// see a transiently overdrawn budget.
	for {
		left := b.remaining.Load()
		if left < int64(n) {
			return false
		}
		if b.remaining.CompareAndSwap(left, left-int64(n)) {
			return true
		}
	}
}

// Recorder is an http.ResponseWriter that keeps one answer, up to a byte limit.
type Recorder struct {
	header   http.Header
	code     int
	body     bytes.Buffer
	budget   *Budget
	overflow bool
}

// New returns a Recorder that keeps at most limit bytes of body.
func New(limit int) *Recorder { return NewShared(NewBudget(limit)) }

// NewShared returns a Recorder whose body counts against budget.
func NewShared(budget *Budget) *Recorder { return &Recorder{header: http.Header{}, budget: budget} }

func (rec *Recorder) Header() http.Header { return rec.header }

func (rec *Recorder) WriteHeader(code int) {
	if rec.code == 0 {
		rec.code = code
	}
}

func (rec *Recorder) Write(p []byte) (int, error) {
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.overflow || !rec.budget.take(len(p)) {
		// Discarded, not failed: a write error would make the reverse proxy abort the client's connection.
		rec.overflow = true
		return len(p), nil
	}
	return rec.body.Write(p)
}

// Flush does nothing: everything is kept until the handler returns.
func (rec *Recorder) Flush() {}

// Code is the status the handler answered (200 when it only wrote a body).
func (rec *Recorder) Code() int {
	if rec.code == 0 {
		return http.StatusOK
	}
	return rec.code
}

// Body is what was kept of the body.
func (rec *Recorder) Body() []byte { return rec.body.Bytes() }

// Overflow reports whether the body was larger than the limit (and so is incomplete).
func (rec *Recorder) Overflow() bool { return rec.overflow }
