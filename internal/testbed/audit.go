package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// AuditEvents reads the API server's audit log: every request it has answered so far, in order, with user,
// impersonatedUser, verb and requestURI as the API server saw them.
func (c *Cluster) AuditEvents() ([]auditv1.Event, error) {
	data, err := os.ReadFile(c.AuditLog)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	lines := bytes.Split(data, []byte("\n"))
	events := make([]auditv1.Event, 0, len(lines))
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		var e auditv1.Event
		if err := json.Unmarshal(line, &e); err != nil {
			if i == len(lines)-1 {
				break // a line being written right now
			}
			return nil, fmt.Errorf("audit log line %d: %w", i+1, err)
		}
		events = append(events, e)
	}
	return events, nil
}
