package logredact

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"k8s.io/klog/v2"
)

func TestFilterS(t *testing.T) {
	tests := []struct {
		name   string
		msg    string
		kv     []any
		wantKV []any
	}{
		{name: "request body", msg: "Request Body", kv: []any{"body", "secret"}, wantKV: []any{"body", Redacted}},
		{name: "response body among other keys", msg: "Response Body", kv: []any{"verb", "GET", "body", "secret"}, wantKV: []any{"verb", "GET", "body", Redacted}},
		{name: "other messages untouched", msg: "Waited before sending request", kv: []any{"body", "x"}, wantKV: []any{"body", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := append([]any(nil), tt.kv...)
			msg, got := filter{}.FilterS(tt.msg, kv)
			if msg != tt.msg || len(got) != len(tt.wantKV) {
				t.Fatalf("got %q %v", msg, got)
			}
			for i := range got {
				if got[i] != tt.wantKV[i] {
					t.Errorf("key/value %d = %v, want %v", i, got[i], tt.wantKV[i])
				}
			}
			if kv[len(kv)-1] != tt.kv[len(tt.kv)-1] {
				t.Error("the caller's slice was modified")
			}
		})
	}
}

// TestInstall: with the filter installed, a body logged the way client-go logs it at -v=8 never reaches the
// output.
func TestInstall(t *testing.T) {
	flags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(flags)
	for name, value := range map[string]string{"v": "10", "logtostderr": "false", "alsologtostderr": "false"} {
		if err := flags.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	klog.SetOutput(&out)
	defer klog.SetLogFilter(nil)
	Install()
	klog.Background().V(8).Info("Response Body", "body", `{"data":{"password":"c2VjcmV0"}}`)
	klog.Background().V(8).Info("Request Body", "body", `{"stringData":{"password":"secret"}}`)
	klog.Flush()
	if got := out.String(); strings.Contains(got, "secret") || strings.Contains(got, "c2VjcmV0") || !strings.Contains(got, Redacted) {
		t.Errorf("log output:\n%s", got)
	}
}
