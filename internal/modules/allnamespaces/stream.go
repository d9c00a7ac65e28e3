package allnamespaces

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// streamWriter is the http.ResponseWriter one namespace's watch is forwarded into: the status and headers
// are kept, and the body is passed on through a pipe as the API server streams it.
type streamWriter struct {
	header      http.Header
	once        sync.Once
	started     chan struct{} // closed when code and contentType are set
	code        int
	contentType string
	body        *io.PipeWriter
}

func newStreamWriter(body *io.PipeWriter) *streamWriter {
	return &streamWriter{header: http.Header{}, started: make(chan struct{}), body: body}
}

func (s *streamWriter) Header() http.Header { return s.header }

func (s *streamWriter) WriteHeader(code int) {
	s.once.Do(func() {
		s.code, s.contentType = code, s.header.Get("Content-Type")
		close(s.started)
	})
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return s.body.Write(p)
}

// Flush does nothing: every Write already reaches the reader.
func (s *streamWriter) Flush() {}

// maxFrame bounds one watch event; the API server's objects are at most a few MiB (etcd's limit is 1.5).
const maxFrame = 16 << 20

// event is one upstream watch event, kept as the bytes the API server sent (Raw) and the fields the merge
// needs.
type event struct {
	Raw             []byte
	Type            string
	Kind            string
	APIVersion      string
	ResourceVersion string
}

// jsonEvents reads the consecutive JSON objects of a JSON watch stream (as=Table included), one at a time.
type jsonEvents struct {
	dec *json.Decoder
}

func newJSONEvents(r io.Reader) *jsonEvents {
	return &jsonEvents{dec: json.NewDecoder(&limitedFrames{r: r})}
}

// next returns the next event; io.EOF when the stream ended between events.
func (j *jsonEvents) next() (event, error) {
	var raw json.RawMessage
	if err := j.dec.Decode(&raw); err != nil {
		if err == io.EOF {
			return event{}, io.EOF
		}
		return event{}, fmt.Errorf("reading a watch event: %w", err)
	}
	if len(raw) > maxFrame {
		return event{}, fmt.Errorf("a watch event is larger than %d MiB", maxFrame>>20)
	}
	return parseEvent(bytes.TrimSpace(raw))
}

// parseEvent reads what the merge needs from a JSON watch event, keeping the event itself whole.
func parseEvent(raw []byte) (event, error) {
	var e struct {
		Type   string `json:"type"`
		Object struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Metadata   struct {
				ResourceVersion string `json:"resourceVersion"`
			} `json:"metadata"`
		} `json:"object"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return event{}, fmt.Errorf("decoding a watch event: %w", err)
	}
	if e.Type == "" {
		return event{}, fmt.Errorf("a watch event without type")
	}
	return event{Raw: raw, Type: e.Type, Kind: e.Object.Kind, APIVersion: e.Object.APIVersion,
		ResourceVersion: e.Object.Metadata.ResourceVersion}, nil
}

// bookmarkEvent is a JSON BOOKMARK of an object of kind and apiVersion at rv, as the API server sends them.
func bookmarkEvent(kind, apiVersion string, rv uint64) ([]byte, error) {
	type meta struct {
		ResourceVersion string `json:"resourceVersion"`
	}
	type object struct {
		Kind       string `json:"kind,omitempty"`
		APIVersion string `json:"apiVersion,omitempty"`
		Metadata   meta   `json:"metadata"`
	}
	return json.Marshal(struct {
		Type   string `json:"type"`
		Object object `json:"object"`
	}{"BOOKMARK", object{kind, apiVersion, meta{fmt.Sprint(rv)}}})
}

// limitedFrames fails a stream with an object larger than maxFrame, counted from the last newline: the API
// server ends every JSON event with one, and json.Decoder would otherwise buffer an endless object.
type limitedFrames struct {
	r     io.Reader
	since int
}

func (l *limitedFrames) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		l.since = n - 1 - i
	} else {
		l.since += n
	}
	if l.since > maxFrame {
		return n, fmt.Errorf("a watch event is larger than %d MiB", maxFrame>>20)
	}
	return n, err
}
