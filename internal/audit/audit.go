// Package audit writes one JSON record per request: who did what, what the proxy decided and what the API
// server answered. Records never carry credentials.
package audit

import (
	"encoding/json"
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
}

// Decisions.
const (
	Forwarded   = "forwarded"
	Intercepted = "intercepted"
	Denied      = "denied"
)

// Logger appends records to a writer, one write per record so concurrent records never interleave.
type Logger struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

// Open returns a Logger for path ("-" is standard output) or nil when path is empty.
func Open(path string) (*Logger, error) {
	switch path {
	case "":
		return nil, nil
	case "-":
		return &Logger{w: os.Stdout}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	return &Logger{w: f, c: f}, nil
}

// Log writes r. A nil Logger discards it.
func (l *Logger) Log(r *Record) {
	if l == nil {
		return
	}
	line, err := json.Marshal(r)
	if err != nil {
		return
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(line)
}

// Close closes the underlying file.
func (l *Logger) Close() error {
	if l == nil || l.c == nil {
		return nil
	}
	return l.c.Close()
}
