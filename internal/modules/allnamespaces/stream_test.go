package allnamespaces

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestJSONEvents(t *testing.T) {
	added := `{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"11"}}}`
	row := `{"type":"MODIFIED","object":{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"12"},"rows":[{"cells":["a"]}]}}`
	bookmark := `{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"13"}}}`
	tests := []struct {
		name     string
		stream   string
		oneByte  bool
		want     []event // Raw is compared as given
		wantFail bool    // the stream ends with an error other than io.EOF
	}{
		{"consecutive objects, each whole", added + "\n" + row + "\n" + bookmark + "\n", false, []event{
			{Raw: []byte(added), Type: "ADDED", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "11"},
			{Raw: []byte(row), Type: "MODIFIED", Kind: "Table", APIVersion: "meta.k8s.io/v1", ResourceVersion: "12"},
			{Raw: []byte(bookmark), Type: "BOOKMARK", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "13"},
		}, false},
		{"split into single bytes", added + "\n" + bookmark, true, []event{
			{Raw: []byte(added), Type: "ADDED", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "11"},
			{Raw: []byte(bookmark), Type: "BOOKMARK", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "13"},
		}, false},
		{"no separator", added + added, false, []event{
			{Raw: []byte(added), Type: "ADDED", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "11"},
			{Raw: []byte(added), Type: "ADDED", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "11"},
		}, false},
		{"empty stream", "", false, nil, false},
		{"cut in the middle of an event", added + "\n" + added[:20], false, []event{
			{Raw: []byte(added), Type: "ADDED", Kind: "ConfigMap", APIVersion: "v1", ResourceVersion: "11"},
		}, true},
		{"not JSON", "k8s\x00\x00\x00", false, nil, true},
		{"an event without type", `{"object":{}}`, false, nil, true},
		{"an array, not an event", `[1,2]`, false, nil, true},
		{"an event larger than maxFrame", `{"type":"ADDED","object":{"data":"` + strings.Repeat("x", maxFrame) + `"}}`, false, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.stream)
			if tt.oneByte {
				r = iotest.OneByteReader(r)
			}
			events := newJSONEvents(r)
			var got []event
			var err error
			for {
				var ev event
				if ev, err = events.next(); err != nil {
					break
				}
				got = append(got, ev)
			}
			if failed := !errors.Is(err, io.EOF); failed != tt.wantFail {
				t.Fatalf("stream ended with %v, want failure %v", err, tt.wantFail)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d events, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if string(g.Raw) != string(w.Raw) || g.Type != w.Type || g.Kind != w.Kind || g.APIVersion != w.APIVersion || g.ResourceVersion != w.ResourceVersion {
					t.Errorf("event %d = %+v (%s), want %+v (%s)", i, g, g.Raw, w, w.Raw)
				}
			}
		})
	}
}

func TestBookmarkEvent(t *testing.T) {
	raw, err := bookmarkEvent("ConfigMap", "v1", 42)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"42"}}}`
	if string(raw) != want {
		t.Fatalf("bookmark %s, want %s", raw, want)
	}
}
