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
// request path. Records are never dropped: when the queue is full, Log waits. The buffer is flushed
// whenever the queue runs empty, so a record is on disk moments after its request ends.
type Logger struct {
	mu     sync.RWMutex // Log holds it shared, Close exclusively: no send on a closed queue
	closed bool
	queue  chan *Record
	done   chan struct{}
	w      *bufio.Writer
	c      io.Closer
}

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
	l := &Logger{queue: make(chan *Record, 4096), done: make(chan struct{}), w: bufio.NewWriterSize(out, 64<<10), c: closer}
	go l.run()
	return l, nil
}

// Log queues r. A nil Logger discards it.
func (l *Logger) Log(r *Record) {
	if l == nil {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if !l.closed { // a hijacked stream may end after shutdown; its record is then not written
		l.queue <- r
	}
}

func (l *Logger) run() {
	defer close(l.done)
	var line []byte // reused: one JSON document and a newline per record
	for r := range l.queue {
		line = appendRecord(line[:0], r)
		_, _ = l.w.Write(line)
		if len(l.queue) == 0 {
			_ = l.w.Flush()
		}
	}
	_ = l.w.Flush()
}

// Close writes what is queued and closes the file. Log must not be called afterwards.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	if l.c == nil {
		return nil
	}
	return l.c.Close()
}
