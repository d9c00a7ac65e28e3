package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/metadata"

	"github.com/tenant-proxy/tenant-proxy/internal/testbed"
)

const (
	// quietWindow without a write by anyone but the bench counts as settled.
	quietWindow = 10 * time.Second
	// settleTimeout bounds one wait for kube-controller-manager.
	settleTimeout = 20 * time.Minute
	settlePoll    = 2 * time.Second
)

// settler tells when kube-controller-manager has caught up with the fixture. It reads the API server's
// audit log (one line per request, written before the response) from where it last stopped, so it sees
// every write, and checks the per-namespace objects the controller-manager creates.
type settler struct {
	cluster   *testbed.Cluster
	meta      metadata.Interface
	benchUser string // the fixture's writer, whose writes do not count
	file      *os.File
	partial   []byte    // an incomplete last line
	lastWrite time.Time // of anyone else, as stamped by the API server
	lastWhat  string
}

func newSettler(c *testbed.Cluster, benchUser string) (*settler, error) {
	meta, err := metadata.NewForConfig(c.Admin)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	f, err := os.Open(c.AuditLog)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	// Only what happens from now on matters: the passthrough workloads wrote hundreds of thousands of lines.
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &settler{cluster: c, meta: meta, benchUser: benchUser, file: f}, nil
}

func (s *settler) close() { s.file.Close() }

// auditLine is the part of an audit event that says whether it was a write and by whom.
type auditLine struct {
	Verb string `json:"verb"`
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	StageTimestamp metav1.MicroTime `json:"stageTimestamp"`
}

// readWrites consumes the audit log written since the last call and remembers the latest write that is not
// the bench's own nor a heartbeat (the API server renews its identity Lease every 10 s, forever).
func (s *settler) readWrites() error {
	data, err := io.ReadAll(s.file)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	data = append(s.partial, data...)
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		s.partial = data
		return nil
	}
	s.partial = append([]byte(nil), data[end+1:]...)
	for _, line := range bytes.Split(data[:end], []byte("\n")) {
		if len(line) == 0 || !bytes.Contains(line, []byte(`"verb"`)) {
			continue
		}
		var e auditLine
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("audit log line: %w", err)
		}
		switch e.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
		default:
			continue
		}
		if e.User.Username == s.benchUser || e.ObjectRef == nil || e.ObjectRef.Resource == "leases" ||
			e.ObjectRef.Resource == "tokenreviews" || e.ObjectRef.Resource == "subjectaccessreviews" ||
			strings.HasSuffix(e.ObjectRef.Resource, "reviews") {
			continue
		}
		if t := e.StageTimestamp.Time; t.After(s.lastWrite) {
			s.lastWrite = t
			s.lastWhat = fmt.Sprintf("%s %s %s/%s by %s", e.Verb, e.ObjectRef.Resource, e.ObjectRef.Namespace, e.ObjectRef.Name, e.User.Username)
		}
	}
	return nil
}

// wait returns once every namespace has the ServiceAccount "default" and the ConfigMap "kube-root-ca.crt",
// every node has been marked by the node lifecycle controller (no kubelet posts their status), and nobody but
// the bench has written anything for quietWindow.
func (s *settler) wait(ctx context.Context, nodes int) error {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	var pending string
	for {
		if err := s.readWrites(); err != nil {
			return err
		}
		var err error
		pending, err = s.pending(ctx, nodes)
		if err != nil {
			return err
		}
		if pending == "" && time.Since(s.lastWrite) >= quietWindow {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not settled: %s; last write %s ago (%s): %w",
				pending, time.Since(s.lastWrite).Round(time.Second), s.lastWhat, ctx.Err())
		case <-time.After(settlePoll):
		}
	}
}

// pending says what kube-controller-manager has yet to do, or "".
func (s *settler) pending(ctx context.Context, nodes int) (string, error) {
	count := func(resource string, opts metav1.ListOptions) (int, error) {
		list, err := s.meta.Resource(corev1.SchemeGroupVersion.WithResource(resource)).List(ctx, opts)
		if err != nil {
			return 0, fmt.Errorf("list %s: %w", resource, err)
		}
		return len(list.Items), nil
	}
	namespaces, err := count("namespaces", metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	byName := func(name string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	}
	accounts, err := count("serviceaccounts", byName("default"))
	if err != nil {
		return "", err
	}
	rootCAs, err := count("configmaps", byName("kube-root-ca.crt"))
	if err != nil {
		return "", err
	}
	var missing []string
	if accounts < namespaces {
		missing = append(missing, fmt.Sprintf("%d of %d default ServiceAccounts", accounts, namespaces))
	}
	if rootCAs < namespaces {
		missing = append(missing, fmt.Sprintf("%d of %d kube-root-ca.crt ConfigMaps", rootCAs, namespaces))
	}
	if nodes > 0 {
		list, err := s.cluster.AdminClient.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return "", fmt.Errorf("list nodes: %w", err)
		}
		marked := 0
		for _, n := range list.Items {
			if unreachable(&n) {
				marked++
			}
		}
		if marked < nodes {
			missing = append(missing, fmt.Sprintf("%d of %d nodes marked unreachable", marked, nodes))
		}
	}
	return strings.Join(missing, ", "), nil
}

// unreachable reports whether the node lifecycle controller has given up on the node's kubelet: condition
// Ready Unknown and the unreachable taint. (NoSchedule only: with every node of the zone unready, the
// controller assumes a full disruption and evicts nothing.)
func unreachable(n *corev1.Node) bool {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionUnknown {
			ready = true
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeUnreachable {
			return ready
		}
	}
	return false
}
