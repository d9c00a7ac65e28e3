package apprepositories

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/tenant-proxy/tenant-proxy/internal/helmrepo"
)

const (
	// maxBodyBytes bounds the request body: a name, a URL, a header and a CA bundle.
	maxBodyBytes = 256 << 10
	fieldManager = "tenant-proxy"
	// undoTimeout bounds removing a half-created repository after the client has gone.
	undoTimeout = 10 * time.Second
)

// createRequest is Kubeapps' CreateAppRepositoryRequest in JSON, with the credentials Kubeapps added later.
type createRequest struct {
	AppRepository *struct {
		Name       string `json:"name"`
		URL        string `json:"url"`
		AuthHeader string `json:"authHeader,omitempty"`
		CustomCA   string `json:"customCA,omitempty"`
	} `json:"appRepository"`
}

type createResponse struct {
	RepositoryPrefix string `json:"repositoryPrefix"`
}

// invalidName says why name is not a DNS-1123 label ("" when it is). Labels, not subdomains: the name ends
// up in the repository prefix URL and, prefixed, in the name of the credentials Secret.
func invalidName(name string) string {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Sprintf("%q: %s", name, strings.Join(errs, "; "))
	}
	return ""
}

// decodeCreate parses and validates the body; the message says what is wrong for a 400.
func decodeCreate(w http.ResponseWriter, r *http.Request) (createRequest, string) {
	var in createRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields() // a misspelt credential field must not create a repository without it
	if err := dec.Decode(&in); err != nil {
		return in, "invalid JSON body: " + err.Error()
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return in, "invalid JSON body: more than one JSON value"
	}
	a := in.AppRepository
	switch {
	case a == nil:
		return in, "appRepository is required"
	case a.Name == "":
		return in, "appRepository.name is required"
	case invalidName(a.Name) != "":
		return in, "invalid appRepository.name " + invalidName(a.Name)
	case a.URL == "":
		return in, "appRepository.url is required"
	case helmrepo.CheckURL(a.URL) != nil:
		return in, "invalid appRepository.url: " + helmrepo.CheckURL(a.URL).Error()
	case a.AuthHeader != "" && !httpguts.ValidHeaderFieldValue(a.AuthHeader):
		return in, "invalid appRepository.authHeader: not a valid HTTP header value" // never echo it
	case a.CustomCA != "" && !hasCertificate([]byte(a.CustomCA)):
		return in, "invalid appRepository.customCA: no PEM certificate"
	}
	return in, ""
}

func hasCertificate(bundle []byte) bool {
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(block.Bytes); err == nil {
				return true
			}
		}
	}
}

func appRepository(namespace, name, url, secretName string, header, ca bool) *unstructured.Unstructured {
	spec := map[string]any{"type": "helm", "url": url}
	auth := map[string]any{}
	if header {
		auth["header"] = map[string]any{"secretKeyRef": map[string]any{"name": secretName, "key": authHeaderKey}}
	}
	if ca {
		auth["customCA"] = map[string]any{"secretKeyRef": map[string]any{"name": secretName, "key": customCAKey}}
	}
	if len(auth) > 0 {
		spec["auth"] = auth
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GVR.GroupVersion().String(),
		"kind":       "AppRepository",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}}
}

// serveCreate creates the AppRepository (and its credentials Secret) as the caller. The API server judges
// permission and existence first, with dry runs, so the proxy fetches nothing for a caller who may not
// create the repository (no free URL probing); then the index must load; then the objects are created.
func (m *Module) serveCreate(w http.ResponseWriter, r *http.Request) {
	caller, namespace, answered := m.target(w, r)
	if answered != 0 {
		m.metrics.request("create", answered)
		return
	}
	code := m.create(w, r, caller, namespace)
	m.metrics.request("create", code)
}

func (m *Module) create(w http.ResponseWriter, r *http.Request, caller user.Info, namespace string) int {
	in, problem := decodeCreate(w, r)
	if problem != "" {
		return writeError(w, http.StatusBadRequest, problem)
	}
	a := in.AppRepository
	ctx := r.Context()
	cfg := CallerConfig(m.base, caller, w.Header().Get("Audit-Id"))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "AppRepository client: "+err.Error())
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "Secret client: "+err.Error())
	}
	secretName := "apprepo-" + a.Name
	obj := appRepository(namespace, a.Name, a.URL, secretName, a.AuthHeader != "", a.CustomCA != "")
	var secret *corev1.Secret
	if a.AuthHeader != "" || a.CustomCA != "" {
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: namespace},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{},
		}
		if a.AuthHeader != "" {
			secret.Data[authHeaderKey] = []byte(a.AuthHeader)
		}
		if a.CustomCA != "" {
			secret.Data[customCAKey] = []byte(a.CustomCA)
		}
	}

	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: fieldManager}
	if _, err := dyn.Resource(GVR).Namespace(namespace).Create(ctx, obj, dryRun); err != nil {
		return writeAPIError(w, "creating AppRepository", err)
	}
	if secret != nil {
		if _, err := client.CoreV1().Secrets(namespace).Create(withoutBodyLogs(ctx), secret, dryRun); err != nil {
			return writeAPIError(w, "creating the AppRepository's Secret", err)
		}
	}

	repo := helmrepo.Repository{URL: a.URL, AuthHeader: a.AuthHeader, CAPEM: []byte(a.CustomCA)}
	if len(repo.CAPEM) == 0 {
		repo.CAPEM = nil
	}
	_, err = m.fetcher.Index(ctx, repo)
	m.metrics.fetch(err)
	if err != nil {
		return writeError(w, http.StatusBadRequest, "repository index: "+err.Error())
	}

	opts := metav1.CreateOptions{FieldManager: fieldManager}
	created, err := dyn.Resource(GVR).Namespace(namespace).Create(ctx, obj, opts)
	if err != nil {
		return writeAPIError(w, "creating AppRepository", err)
	}
	if secret != nil {
		secret.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: GVR.GroupVersion().String(), Kind: "AppRepository", Name: created.GetName(), UID: created.GetUID(),
		}}
		if _, err := client.CoreV1().Secrets(namespace).Create(withoutBodyLogs(ctx), secret, opts); err != nil {
			// Without its Secret the repository is useless; take it back (as the caller, who just created it).
			undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
			defer cancel()
			if derr := dyn.Resource(GVR).Namespace(namespace).Delete(undo, a.Name, metav1.DeleteOptions{}); derr != nil {
				klog.ErrorS(derr, "Could not remove the AppRepository whose Secret failed", "namespace", namespace, "name", a.Name)
			}
			return writeAPIError(w, "creating the AppRepository's Secret", err)
		}
	}
	klog.V(2).InfoS("AppRepository created", "namespace", namespace, "name", a.Name, "user", caller.GetName())
	return writeJSON(w, http.StatusCreated, createResponse{RepositoryPrefix: "/#/charts/" + a.Name + "/"})
}

func (m *Module) serveDelete(w http.ResponseWriter, r *http.Request) {
	caller, namespace, answered := m.target(w, r)
	if answered != 0 {
		m.metrics.request("delete", answered)
		return
	}
	m.metrics.request("delete", m.delete(w, r, caller, namespace))
}

func (m *Module) delete(w http.ResponseWriter, r *http.Request, caller user.Info, namespace string) int {
	name := mux.Vars(r)["name"]
	if msg := invalidName(name); msg != "" {
		return writeError(w, http.StatusBadRequest, "invalid AppRepository name "+msg)
	}
	dyn, err := dynamic.NewForConfig(CallerConfig(m.base, caller, w.Header().Get("Audit-Id")))
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "AppRepository client: "+err.Error())
	}
	repos := dyn.Resource(GVR).Namespace(namespace)
	if err := repos.Delete(r.Context(), name, metav1.DeleteOptions{}); err != nil {
		return writeAPIError(w, "deleting AppRepository", err)
	}
	m.deleteOwnedSecret(r.Context(), w.Header().Get("Audit-Id"), caller, repos, namespace, name)
	klog.V(2).InfoS("AppRepository deleted", "namespace", namespace, "name", name, "user", caller.GetName())
	return writeJSON(w, http.StatusOK, struct{}{})
}

// deleteOwnedSecret removes, as the caller, the credentials Secret this API created for the repository. Garbage
// collection would remove it too, but only whenever kube-controller-manager gets to it; until then the
// credentials would outlive the repository. Only a Secret owned by an AppRepository of that name that no longer
// exists is touched (a repository re-created meanwhile keeps its Secret); a Secret the repository merely
// references is left alone. A failure is logged and left to garbage collection: the repository itself is gone,
// which is what the caller asked for.
func (m *Module) deleteOwnedSecret(ctx context.Context, auditID string, caller user.Info, repos dynamic.ResourceInterface, namespace, repository string) {
	client, err := kubernetes.NewForConfig(CallerConfig(m.base, caller, auditID))
	if err != nil {
		klog.ErrorS(err, "Secret client", "namespace", namespace)
		return
	}
	ctx = withoutBodyLogs(ctx)
	secrets := client.CoreV1().Secrets(namespace)
	secret, err := secrets.Get(ctx, "apprepo-"+repository, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			klog.V(2).InfoS("Owned Secret left to garbage collection", "namespace", namespace, "repository", repository, "reason", err.Error())
		}
		return
	}
	var owner types.UID
	for _, ref := range secret.OwnerReferences {
		if ref.Kind == "AppRepository" && ref.Name == repository && ref.APIVersion == GVR.GroupVersion().String() {
			owner = ref.UID
		}
	}
	if owner == "" {
		return
	}
	if current, err := repos.Get(ctx, repository, metav1.GetOptions{}); err == nil && current.GetUID() == owner {
		return // still there (finalizers): garbage collection removes the Secret when the owner goes
	} else if err != nil && !apierrors.IsNotFound(err) {
		klog.V(2).InfoS("Owned Secret left to garbage collection", "namespace", namespace, "repository", repository, "reason", err.Error())
		return
	}
	uid := secret.UID
	if err := secrets.Delete(ctx, secret.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		klog.V(2).InfoS("Owned Secret left to garbage collection", "namespace", namespace, "repository", repository, "reason", err.Error())
	}
}
