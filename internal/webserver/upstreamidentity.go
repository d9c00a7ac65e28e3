package webserver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/transport"

	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// The two ways the proxy tells the API server who the caller is. Both are set by hand rather than with
// client-go's impersonating and auth-proxy round trippers: those clone the request once more per request
// (the proxy already clones it once to strip identity headers), and the auth-proxy one hard-codes the
// default X-Remote-* names where the API server may be configured with others.

// SetImpersonation adds the Impersonate-* headers that client-go's impersonating round tripper adds, with
// the groups of request.ImpersonationGroups (a ServiceAccount's derived groups are left to the API server).
func SetImpersonation(h http.Header, u user.Info) {
	h[transport.ImpersonateUserHeader] = []string{u.GetName()}
	if uid := u.GetUID(); uid != "" {
		h[transport.ImpersonateUIDHeader] = []string{uid}
	}
	if groups := request.ImpersonationGroups(u); len(groups) > 0 {
		h[transport.ImpersonateGroupHeader] = slices.Clip(groups) // an Add must not write into u's array
	}
	for key, values := range u.GetExtra() {
		for _, v := range values {
			h.Add(transport.ImpersonateUserExtraHeaderPrefix+escapeExtraKey(key), v)
		}
	}
}

// frontProxyHeaders are the request-header names the API server reads a front proxy's identity from
// (its --requestheader-* flags, published in kube-system/extension-apiserver-authentication).
type frontProxyHeaders interface {
	UsernameHeaders() []string
	UIDHeaders() []string
	GroupHeaders() []string
	ExtraHeaderPrefixes() []string
}

// canCarry reports whether the API server's configuration can express u exactly: it reads a user name
// at all, and a UID when u has one. Otherwise the request is sent by impersonation, which can.
func canCarry(names frontProxyHeaders, u user.Info) bool {
	if len(names.UsernameHeaders()) == 0 || len(names.GroupHeaders()) == 0 {
		return false
	}
	if u.GetUID() != "" && len(names.UIDHeaders()) == 0 {
		return false
	}
	return len(u.GetExtra()) == 0 || len(names.ExtraHeaderPrefixes()) > 0
}

// setFrontProxyIdentity removes every header the API server would read identity from (each configured
// name, any case) and sets u under the first configured name of each kind, as kube-aggregator does.
// Groups are one value each, extra keys percent-encoded as the API server decodes them.
func setFrontProxyIdentity(h http.Header, names frontProxyHeaders, u user.Info) error {
	usernames, uids, groups, prefixes := names.UsernameHeaders(), names.UIDHeaders(), names.GroupHeaders(), names.ExtraHeaderPrefixes()
	headerrequest.ClearAuthenticationHeaders(h, headerrequest.StaticStringSlice(usernames), headerrequest.StaticStringSlice(uids),
		headerrequest.StaticStringSlice(groups), headerrequest.StaticStringSlice(prefixes))
	if len(usernames) == 0 || len(groups) == 0 {
		return fmt.Errorf("the API server reads no front-proxy user or group header")
	}
	h[http.CanonicalHeaderKey(usernames[0])] = []string{u.GetName()}
	if uid := u.GetUID(); uid != "" {
		if len(uids) == 0 {
			return fmt.Errorf("the API server reads no front-proxy UID header")
		}
		h[http.CanonicalHeaderKey(uids[0])] = []string{uid}
	}
	if g := u.GetGroups(); len(g) > 0 {
		h[http.CanonicalHeaderKey(groups[0])] = slices.Clip(g)
	}
	if extra := u.GetExtra(); len(extra) > 0 {
		if len(prefixes) == 0 {
			return fmt.Errorf("the API server reads no front-proxy extra headers")
		}
		for key, values := range extra {
			for _, v := range values {
				h.Add(prefixes[0]+escapeExtraKey(key), v)
			}
		}
	}
	return nil
}

// escapeExtraKey percent-encodes every byte of an extra key that may not appear in a header name, and
// '%' itself, so that the API server's url.PathUnescape gives the key back (client-go's headerKeyEscape,
// which is not exported).
// Every certificate caller has one such key (authentication.kubernetes.io/credential-id), so this runs on
// every request: hex by table rather than fmt, which showed in the proxy's profile.
func escapeExtraKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key) + 8)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '%' || c >= 0x80 || !httpguts.IsTokenRune(rune(c)) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
