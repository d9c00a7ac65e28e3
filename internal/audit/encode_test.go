package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAppendRecordMatchesEncodingJSON: the direct encoder writes what encoding/json writes for the same
// record (byte for byte once encoding/json's HTML escaping is off), for empty and full records and for
// strings that need escaping.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 18, 4, 5, 123456789, time.UTC)
	tests := []struct {
		name string
		rec  Record
	}{
		{"empty", Record{}},
		{"typical", Record{Time: at, AuditID: "0b6f6c1e-4c2d-4f4e-9a43-1f0a3c2b9d10", User: "alice", Groups: []string{"dev", "system:authenticated"},
			Verb: "get", Resource: "configmaps", Namespace: "team-a", Name: "target", Path: "/api/v1/namespaces/team-a/configmaps/target",
			Decision: Forwarded, Code: 200, LatencySeconds: 0.001234567}},
		{"everything", Record{Time: at.In(time.FixedZone("x", 3600)), AuditID: "id", User: "u", UID: "uid", Groups: []string{"g"},
			ImpersonatedUser: "bob", ImpersonatedGroup: []string{"viewers"}, Tenants: []string{"t1", "t2"}, Verb: "list",
			APIGroup: "apps", Resource: "deployments", Subresource: "scale", Namespace: "ns", Name: "n", Path: "/p",
			Decision: Intercepted, Module: "namespaces", Code: 404, LatencySeconds: 12,
			Annotations: map[string]string{"z/last": "1", "a/first": "<\"x\">", "credentials": "proxy"}}},
		{"strings that need escaping", Record{AuditID: "q\"b\\s\n\r\t\b\f\x00\x1f\x7f", User: "<script>&amp;</script>",
			Groups: []string{"ünïcödé", "bad \xff utf8", "line\u2028sep\u2029", ""}, Path: "/api/v1/namespaces/a%2Fb", Decision: Denied}},
		{"tiny and huge latencies", Record{LatencySeconds: 1e-9, Code: -1}},
		{"huge latency", Record{LatencySeconds: 1e22}},
		{"zero latency, negative", Record{LatencySeconds: -0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(&tt.rec); err != nil {
				t.Fatal(err)
			}
			got := appendRecord(nil, &tt.rec)
			if string(got) != want.String() {
				t.Fatalf("appendRecord =\n%s\nencoding/json =\n%s", got, want.String())
			}
			var back Record
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(tt.name, "escaping") && !reflect.DeepEqual(back.Groups, tt.rec.Groups) {
				t.Fatalf("groups read back %q, want %q", back.Groups, tt.rec.Groups)
			}
		})
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	rec := &Record{Time: time.Now(), AuditID: "0b6f6c1e-4c2d-4f4e-9a43-1f0a3c2b9d10", User: "alice", Groups: []string{"dev", "system:authenticated"},
		Verb: "get", Resource: "configmaps", Namespace: "team-a", Name: "target", Path: "/api/v1/namespaces/team-a/configmaps/target",
		Decision: Forwarded, Code: 200, LatencySeconds: 0.001234567}
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		var line []byte
		for range b.N {
			line = appendRecord(line[:0], rec)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for range b.N {
			buf.Reset()
			_ = enc.Encode(rec)
		}
	})
}
