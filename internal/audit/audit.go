// Package audit writes one JSON record per request: who did what, what the proxy decided and what the API
// server answered. Records never carry credentials.
package audit

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Record is one audit line.
type Record struct {
	Time              time.Time `json:"time"`
	AuditID           string    `json:"auditID"`
	User              string    `json:"user,omitempty"`
	UID               string    `json:"uid,omitempty"`
	Groups            []string  `json:"groups,omitempty"`
	ImpersonatedUser  string    `json:"impersonatedUser,omitempty"`
	ImpersonatedGroup []string  `json:"impersonatedGroups,omitempty"`
	Tenants           []string  `json:"tenants,omitempty"`
	Verb              string    `json:"verb,omitempty"`
	APIGroup          string    `json:"apiGroup,omitempty"`
	Resource          string    `json:"resource,omitempty"`
	Subresource       string    `json:"subresource,omitempty"`
	Namespace         string    `json:"namespace,omitempty"`
	Name              string    `json:"name,omitempty"`
	Path              string    `json:"path,omitempty"`
	Decision          string    `json:"decision"`
	Module            string    `json:"module,omitempty"`
	Code              int       `json:"code"`
	LatencySeconds    float64   `json:"latencySeconds"`
	// Annotations are what the module that served the request noted (k8s.io/apiserver/pkg/audit
	// annotations), e.g. that it acted with the proxy's own credentials on behalf of the caller.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Decisions.
const (
	Forwarded   = "forwarded"
	Intercepted = "intercepted"
	Denied      = "denied"
)

// Logger appends records to a file from one background goroutine, so encoding and writing are off the
// request path. Records are never dropped: when maxPending records wait, Log waits. The writer takes what
// has gathered at most every flushDelay and writes it with one write(2). Waking it and writing for every
// record made the audit log cost about 5% of BenchmarkPassthroughGET's CPU (audit on against off); batching
// took back about 3.5%, and the writer no longer competes with each response for the proxy's one processor.
type Logger struct {
	mu      sync.Mutex
	room    *sync.Cond // broadcast when the writer takes the pending records, and on Close
	pending []*Record
	closed  bool
	arrived chan struct{} // cap 1: the first record since the writer last took them is pending
	full    chan struct{} // cap 1: half of maxPending is pending, take them now
	stop    chan struct{} // closed by Close
	done    chan struct{}
	w       *bufio.Writer
	c       io.Closer
}

const (
	// flushDelay bounds how long a record waits before it is written.
	flushDelay = 50 * time.Millisecond
	// maxPending records wait at most; at 4,096 per 50 ms Log would wait only past 80,000 requests a second.
	maxPending = 4096
)

// Open returns a Logger for path ("-" is standard output) or nil when path is empty.
func Open(path string) (*Logger, error) {
	var out io.Writer
	var closer io.Closer
	switch path {
	case "":
		return nil, nil
	case "-":
		out = os.Stdout
	default:
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening audit log: %w", err)
		}
		out, closer = f, f
	}
	l := &Logger{
		arrived: make(chan struct{}, 1), full: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		w: bufio.NewWriterSize(out, 64<<10), c: closer,
	}
	l.room = sync.NewCond(&l.mu)
	go l.run()
	return l, nil
}

// Log queues r. A nil Logger discards it.
func (l *Logger) Log(r *Record) {
	if l == nil {
		return
	}
	l.mu.Lock()
	for len(l.pending) >= maxPending && !l.closed {
		l.room.Wait()
	}
	if l.closed { // a hijacked stream may end after shutdown; its record is then not written
		l.mu.Unlock()
		return
	}
	l.pending = append(l.pending, r)
	n := len(l.pending)
	l.mu.Unlock()
	switch n {
	case 1:
		signal(l.arrived)
	case maxPending / 2:
		signal(l.full)
	}
}

// signal sends on a channel of capacity 1 unless a signal is already waiting there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (l *Logger) run() {
	defer close(l.done)
	var line []byte     // reused: one JSON document and a newline per record
	var batch []*Record // reused: swapped with pending
	for {
		stopping := false
		select {
		case <-l.arrived:
			select { // let more records gather, so that one write(2) carries them all
			case <-time.After(flushDelay):
			case <-l.full:
			case <-l.stop:
				stopping = true
			}
		case <-l.stop:
			stopping = true
		}
		l.mu.Lock()
		batch, l.pending = l.pending, batch[:0]
		l.room.Broadcast()
		l.mu.Unlock()
		for i, r := range batch {
			line = appendRecord(line[:0], r)
			_, _ = l.w.Write(line)
			batch[i] = nil // the request's record is garbage once written
		}
		_ = l.w.Flush()
		if stopping {
			return
		}
	}
}

// Close writes what is queued and closes the file. Log must not be called afterwards.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	l.closed = true
	l.room.Broadcast()
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}
