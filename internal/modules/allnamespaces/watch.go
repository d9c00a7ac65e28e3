package allnamespaces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// maxStatusBytes bounds a refusal read from one namespace's watch.
const maxStatusBytes = 1 << 20

// serveWatch opens one watch per namespace of the caller's tenants, as the caller, and relays their events
// as one stream. It ends when any of them ends (the client re-watches or re-lists: no namespace is silently
// lost), when the caller's namespaces change (the client then lists and watches the new set), at
// timeoutSeconds, or when the client goes (cancelling every upstream watch).
func serveWatch(w http.ResponseWriter, r *http.Request, forward http.Handler, members membershipSource, u user.Info, gvr schema.GroupVersionResource) {
	accept, ok := jsonAccept(r.Header.Values("Accept"))
	if !ok {
		writeStatus(w, r, notAcceptable("watching across all namespaces is served as JSON only (application/json, also as=Table)"))
		return
	}
	query := r.URL.Query()
	timeout, err := timeoutOf(query.Get("timeoutSeconds"))
	if err != nil {
		writeStatus(w, r, apierrors.NewBadRequest(err.Error()))
		return
	}
	clientBookmarks, _ := strconv.ParseBool(query.Get("allowWatchBookmarks"))
	// Followed before the namespaces are read, so no change after that is missed.
	follow, err := members.Follow(u)
	if err != nil {
		writeStatus(w, r, apierrors.NewInternalError(err))
		return
	}
	defer follow.Stop()
	names, capsuleUser := follow.Namespaces()
	if !capsuleUser || len(names) == 0 {
		forward.ServeHTTP(w, r) // no longer the module's to answer: as the caller, as Intercept would
		return
	}
	if len(names) > MaxNamespaces {
		writeStatus(w, r, apierrors.NewBadRequest(fmt.Sprintf(
			"watching %s across more than %d namespaces is not supported; name a namespace (-n)", gvr.Resource, MaxNamespaces)))
		return
	}

	var (
		ctx    context.Context
		cancel context.CancelFunc
	)
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(r.Context(), timeout)
	} else {
		ctx, cancel = context.WithCancel(r.Context())
	}
	var wg sync.WaitGroup
	watches := make([]*upstreamWatch, 0, len(names))
	defer func() {
		cancel()
		for _, uw := range watches {
			_ = uw.body.Close() // unblocks a forward still writing into its pipe
		}
		wg.Wait()
	}()
	// Bookmarks are always asked upstream: they tell how far each namespace's watch has got (see progress).
	query.Del("limit")
	query.Del("continue")
	query.Set("watch", "true")
	query.Set("allowWatchBookmarks", "true")
	rawQuery := query.Encode()
	for _, ns := range names {
		watches = append(watches, startWatch(ctx, &wg, forward, subRequest(r, namespacedPath(gvr, ns), rawQuery, accept), ns))
	}

	active, answer, err := started(ctx, watches)
	switch {
	case ctx.Err() != nil:
		return // the client went away, or the timeout passed before every watch had started
	case err != nil:
		writeStatus(w, r, apierrors.NewInternalError(err))
		return
	case answer != nil:
		writeResult(w, *answer)
		return
	}
	w.Header().Set("Content-Type", active[0].w.contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flush(w)

	frames := make(chan frame)
	for i, uw := range active {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readFrames(ctx, i, uw.body, frames)
		}()
	}
	m := &merger{out: w, progress: newProgress(len(active), query.Get("resourceVersion")), bookmarks: clientBookmarks}
	logger := klog.FromContext(r.Context())
	for {
		select {
		case <-ctx.Done():
			return
		case <-follow.Changed():
			if now, ok := follow.Namespaces(); !ok || !slices.Equal(now, names) {
				logger.V(2).Info("all-namespaces watch ends: the caller's namespaces changed", "resource", gvr.String())
				return
			}
		case f := <-frames:
			if f.err != nil {
				logger.V(2).Info("all-namespaces watch ends with a namespace's", "resource", gvr.String(), "namespace", active[f.i].ns, "err", f.err)
				return
			}
			if done, err := m.relay(f.i, f.ev); done || err != nil {
				return
			}
		}
	}
}

// timeoutOf parses timeoutSeconds as the API server does (a non-negative number of seconds).
func timeoutOf(value string) (time.Duration, error) {
	if value == "" {
		return 0, nil
	}
	seconds, err := strconv.ParseInt(value, 10, 64)
	if err != nil || seconds < 0 {
		return 0, fmt.Errorf("timeoutSeconds %q is not a number of seconds", value)
	}
	return time.Duration(seconds) * time.Second, nil
}

// upstreamWatch is one namespace's watch, forwarded as the caller.
type upstreamWatch struct {
	ns   string
	w    *streamWriter
	body *io.PipeReader
}

// startWatch forwards sub (made from the client's request, so with the caller's identity) with ctx, in the
// background.
func startWatch(ctx context.Context, wg *sync.WaitGroup, forward http.Handler, sub *http.Request, ns string) *upstreamWatch {
	pr, pw := io.Pipe()
	uw := &upstreamWatch{ns: ns, w: newStreamWriter(pw), body: pr}
	sub = sub.WithContext(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			// The reverse proxy aborts a stream it cannot finish (cancelled, or its reader closed) with
			// ErrAbortHandler; here that is the end of one watch, not of the client's request.
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				panic(p)
			}
			uw.w.WriteHeader(http.StatusBadGateway) // answered nothing: the round trip failed
			_ = pw.Close()
		}()
		forward.ServeHTTP(uw.w, sub)
	}()
	return uw
}

// started waits for every watch's answer. The watches the API server accepted are returned; namespaces it
// refused (403) are left out, as the list leaves them out. Any other refusal is the answer as is, and so is
// a 403 from every namespace.
func started(ctx context.Context, watches []*upstreamWatch) (active []*upstreamWatch, answer *result, err error) {
	var forbidden *result
	for _, uw := range watches {
		select {
		case <-uw.w.started:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		if uw.w.code == http.StatusOK {
			if mediaType, _, err := mime.ParseMediaType(uw.w.contentType); err != nil || mediaType != "application/json" {
				return nil, nil, fmt.Errorf("unexpected content type %q of a watch from the API server", uw.w.contentType)
			}
			if len(active) > 0 && uw.w.contentType != active[0].w.contentType {
				return nil, nil, fmt.Errorf("the API server answered watches both as %q and %q", active[0].w.contentType, uw.w.contentType)
			}
			active = append(active, uw)
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(uw.body, maxStatusBytes))
		res := result{code: uw.w.code, contentType: uw.w.contentType, body: body}
		if uw.w.code != http.StatusForbidden {
			return nil, &res, nil
		}
		if forbidden == nil {
			forbidden = &res
		}
	}
	if len(active) == 0 {
		if forbidden == nil {
			return nil, nil, errors.New("no namespace answered")
		}
		return nil, forbidden, nil
	}
	return active, nil, nil
}

// frame is namespace i's next event, or err when its watch ended (io.EOF) or broke.
type frame struct {
	i   int
	ev  event
	err error
}

func readFrames(ctx context.Context, i int, body io.Reader, frames chan<- frame) {
	events := newJSONEvents(body)
	for {
		ev, err := events.next()
		select {
		case frames <- frame{i: i, ev: ev, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// merger writes the merged stream.
type merger struct {
	out       http.ResponseWriter
	progress  *progress
	bookmarks bool // the client asked for bookmarks
	// kind and apiVersion of the stream's objects, for the merger's own bookmarks.
	kind, apiVersion string
}

// relay sends namespace i's event on, whole. Bookmarks are taken in rather than relayed, and the client
// gets the merger's own at the safe point instead; done is true after an ERROR event, which ends the stream.
func (m *merger) relay(i int, ev event) (done bool, err error) {
	if ev.Kind != "" {
		m.kind, m.apiVersion = ev.Kind, ev.APIVersion
	}
	advanced := false
	switch ev.Type {
	case "BOOKMARK":
		m.progress.bookmark(i, ev.ResourceVersion)
		advanced = true
	case "ERROR":
		// The API server's own reason (410 Expired, say) tells the client to re-list.
		return true, m.write(ev.Raw)
	default:
		if err := m.write(ev.Raw); err != nil {
			return false, err
		}
		m.progress.event(i, ev.ResourceVersion)
	}
	if !m.bookmarks || m.kind == "" {
		return false, nil
	}
	rv, due := m.progress.bookmarkDue(advanced)
	if !due {
		return false, nil
	}
	bookmark, err := bookmarkEvent(m.kind, m.apiVersion, rv)
	if err != nil {
		return false, err
	}
	return false, m.write(bookmark)
}

// write sends one event, with the newline the API server ends each with, and flushes it to the client.
func (m *merger) write(raw []byte) error {
	if _, err := m.out.Write(append(raw, '\n')); err != nil {
		return fmt.Errorf("writing a watch event: %w", err)
	}
	flush(m.out)
	return nil
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

// writeResult answers with what the API server answered.
func writeResult(w http.ResponseWriter, res result) {
	if res.contentType != "" {
		w.Header().Set("Content-Type", res.contentType)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(res.code)
	_, _ = w.Write(res.body)
}
