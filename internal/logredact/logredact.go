// Package logredact keeps HTTP bodies out of the proxy's log. client-go logs every request and response body
// at -v=8 and above; the release API's Helm calls write and read Secrets through client-go (Helm's release
// records, and chart Secrets rendered from values) with contexts the proxy cannot give a quieter logger, so
// the filter is set on klog itself, for every client of the process.
package logredact

import (
	"slices"

	"k8s.io/klog/v2"
)

// Redacted replaces a body in the log.
const Redacted = "[redacted]"

// bodyMessages are client-go's (k8s.io/client-go/rest) messages that carry a body under the key "body".
var bodyMessages = []string{"Request Body", "Response Body"}

// Install makes klog drop the bodies client-go logs.
func Install() { klog.SetLogFilter(filter{}) }

type filter struct{}

func (filter) Filter(args []any) []any { return args }

func (filter) FilterF(format string, args []any) (string, []any) { return format, args }

func (filter) FilterS(msg string, keysAndValues []any) (string, []any) {
	if !slices.Contains(bodyMessages, msg) {
		return msg, keysAndValues
	}
	out := slices.Clone(keysAndValues)
	for i := 0; i+1 < len(out); i += 2 {
		if key, ok := out[i].(string); ok && key == "body" {
			out[i+1] = Redacted
		}
	}
	return msg, out
}
