package allnamespaces

import (
	"encoding/json"
	"net/url"
	"strconv"
)

// listResourceVersion is the resource version a list (or Table) answer reports, "" when it has none.
func listResourceVersion(body []byte) string {
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &list); err != nil || list.Metadata.ResourceVersion == "0" {
		return "" // "0" is "any", not a point to list the rest at
	}
	return list.Metadata.ResourceVersion
}

// atResourceVersion is query asking for exactly resource version rv. It narrows any the client gave: a cut
// the first namespace was listed at is also "not older than" the client's resource version.
func atResourceVersion(query url.Values, rv string) string {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("resourceVersion", rv)
	q.Set("resourceVersionMatch", "Exact")
	return q.Encode()
}

// progress tracks, per namespace, the resource version up to which its watch has delivered every event, and
// from that the merged stream's safe resume point: the lowest of them. Resource versions are etcd revisions,
// cluster-wide and increasing along each namespace's watch, but the merged stream interleaves namespaces, so
// the resource version of its last event is not a point every namespace has reached; a client resuming
// from it could miss a slower namespace's events. A bookmark at the safe point moves the client back to
// where nothing is missing (what lies between comes again, which informers absorb).
type progress struct {
	reached []uint64 // 0: not known yet
	// client is where the client would resume now: the resource version of the last event or bookmark it
	// was sent (0 when that is unknown or not a resource version).
	client uint64
}

// newProgress starts n namespaces at the resource version the watch was asked from. Only a real resource
// version is a point of progress: from "" or "0" the API server first sends the current objects, each with
// its own older resource version, and a namespace's progress is known from its first bookmark.
func newProgress(n int, from string) *progress {
	p := &progress{reached: make([]uint64, n)}
	if rv, err := strconv.ParseUint(from, 10, 64); err == nil && rv > 0 {
		for i := range p.reached {
			p.reached[i] = rv
		}
		p.client = rv
	}
	return p
}

// event notes that namespace i's event at rv was relayed to the client.
func (p *progress) event(i int, rv string) {
	v, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		p.client = 0 // unknown: a bookmark will put the client at the safe point
		return
	}
	if p.reached[i] != 0 && v > p.reached[i] {
		p.reached[i] = v
	}
	p.client = v
}

// bookmark notes namespace i's bookmark at rv (not relayed: it is that namespace's point, not the stream's).
func (p *progress) bookmark(i int, rv string) {
	if v, err := strconv.ParseUint(rv, 10, 64); err == nil && v > p.reached[i] {
		p.reached[i] = v
	}
}

// safe is the lowest point every namespace has reached; false while one is unknown.
func (p *progress) safe() (uint64, bool) {
	var low uint64
	for i, v := range p.reached {
		if v == 0 {
			return 0, false
		}
		if i == 0 || v < low {
			low = v
		}
	}
	return low, len(p.reached) > 0
}

// bookmarkDue returns the resource version of the bookmark to send the client now, if any: when the client
// would resume past (or at an unknown distance from) the safe point, or behind it after namespaces
// progressed (advanced tells that), so a resume replays less.
func (p *progress) bookmarkDue(advanced bool) (uint64, bool) {
	safe, ok := p.safe()
	if !ok {
		return 0, false
	}
	if p.client == 0 || p.client > safe || (advanced && p.client < safe) {
		p.client = safe
		return safe, true
	}
	return 0, false
}
