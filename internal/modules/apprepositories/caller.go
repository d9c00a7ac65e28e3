package apprepositories

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
	"github.com/tenant-proxy/tenant-proxy/internal/request"
)

// GVR is Kubeapps' AppRepository resource (CRD in charts/tenant-proxy).
var GVR = schema.GroupVersionResource{Group: "kubeapps.com", Version: "v1alpha1", Resource: "apprepositories"}

// Keys of the repository Secret, as Kubeapps writes them.
const (
	authHeaderKey = "authorizationHeader"
	customCAKey   = "ca.crt"
)

// CallerConfig is the proxy's own configuration acting as u: every request made with it is authorised by
// the API server as u (impersonation), never with the proxy's permissions. auditID, when set, is sent as
// Audit-ID so the API server's audit events match the proxy's record of the request.
func CallerConfig(base *rest.Config, u user.Info, auditID string) *rest.Config {
	cfg := rest.CopyConfig(base)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: u.GetName(),
		UID:      u.GetUID(),
		Groups:   request.ImpersonationGroups(u),
		Extra:    u.GetExtra(),
	}
	if auditID != "" {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return auditIDRoundTripper{id: auditID, next: rt} })
	}
	return cfg
}

type auditIDRoundTripper struct {
	id   string
	next http.RoundTripper
}

func (rt auditIDRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Audit-ID", rt.id)
	return rt.next.RoundTrip(req)
}

// ErrUnsupported: the AppRepository exists but is not one the fetcher can read (an OCI registry, say).
var ErrUnsupported = errors.New("unsupported AppRepository")

// Resolve reads AppRepository namespace/name AS THE CALLER (and its auth Secret, also as the caller: never
// with the proxy's own credentials, or a user could point a repository at any Secret and send it to their
// URL) and returns the helmrepo.Repository to fetch from. API errors are returned wrapped, so
// apierrors.IsNotFound and IsForbidden work on the result.
func Resolve(ctx context.Context, callerConfig *rest.Config, namespace, name string) (helmrepo.Repository, error) {
	dyn, err := dynamic.NewForConfig(callerConfig)
	if err != nil {
		return helmrepo.Repository{}, fmt.Errorf("AppRepository client: %w", err)
	}
	obj, err := dyn.Resource(GVR).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return helmrepo.Repository{}, fmt.Errorf("reading AppRepository %s/%s: %w", namespace, name, err)
	}
	repoURL, _, _ := unstructured.NestedString(obj.Object, "spec", "url")
	if repoType, _, _ := unstructured.NestedString(obj.Object, "spec", "type"); repoType != "" && repoType != "helm" {
		return helmrepo.Repository{}, fmt.Errorf("%w %s/%s: type %q", ErrUnsupported, namespace, name, repoType)
	}
	if err := helmrepo.CheckURL(repoURL); err != nil {
		return helmrepo.Repository{}, fmt.Errorf("%w %s/%s: %w", ErrUnsupported, namespace, name, err)
	}
	repo := helmrepo.Repository{URL: repoURL}

	headerRef, err := secretKeyRef(obj, "header")
	if err != nil {
		return helmrepo.Repository{}, err
	}
	caRef, err := secretKeyRef(obj, "customCA")
	if err != nil {
		return helmrepo.Repository{}, err
	}
	if headerRef == nil && caRef == nil {
		return repo, nil
	}
	client, err := kubernetes.NewForConfig(callerConfig)
	if err != nil {
		return helmrepo.Repository{}, fmt.Errorf("Secret client: %w", err)
	}
	read := func(ref *keyRef) ([]byte, error) {
		secret, err := client.CoreV1().Secrets(namespace).Get(withoutBodyLogs(ctx), ref.name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("reading the Secret of AppRepository %s/%s: %w", namespace, name, err)
		}
		value, ok := secret.Data[ref.key]
		if !ok {
			return nil, fmt.Errorf("%w %s/%s: Secret %s has no key %q", ErrUnsupported, namespace, name, ref.name, ref.key)
		}
		return value, nil
	}
	if headerRef != nil {
		header, err := read(headerRef)
		if err != nil {
			return helmrepo.Repository{}, err
		}
		repo.AuthHeader = string(header)
	}
	if caRef != nil {
		if repo.CAPEM, err = read(caRef); err != nil {
			return helmrepo.Repository{}, err
		}
	}
	return repo, nil
}

// withoutBodyLogs silences client-go's logging for calls whose bodies carry credentials: at -v=8 it logs
// request and response bodies, Secret data included, with the logger of the context.
func withoutBodyLogs(ctx context.Context) context.Context {
	return klog.NewContext(ctx, logr.Discard())
}

type keyRef struct{ name, key string }

// secretKeyRef reads spec.auth.<field>.secretKeyRef, nil when absent.
func secretKeyRef(obj *unstructured.Unstructured, field string) (*keyRef, error) {
	ref, found, err := unstructured.NestedStringMap(obj.Object, "spec", "auth", field, "secretKeyRef")
	if err == nil && !found {
		return nil, nil
	}
	if err != nil || ref["name"] == "" || ref["key"] == "" {
		return nil, fmt.Errorf("%w %s/%s: spec.auth.%s.secretKeyRef needs name and key", ErrUnsupported, obj.GetNamespace(), obj.GetName(), field)
	}
	return &keyRef{name: ref["name"], key: ref["key"]}, nil
}

// apiStatus is the HTTP code and message of an API server error, or 0 when err is not one.
func apiStatus(err error) (int, string) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return 0, ""
	}
	s := status.Status()
	return int(s.Code), s.Message
}
