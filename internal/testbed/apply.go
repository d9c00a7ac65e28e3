package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// mappingTimeout bounds how long ApplyYAML waits for a kind to appear in discovery, e.g. for a CRD applied
// in the same YAML to be established.
const mappingTimeout = 30 * time.Second

// applier server-side applies unstructured objects as admin.
type applier struct {
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(c *Cluster) (*applier, error) {
	dyn, err := dynamic.NewForConfig(c.Admin)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(c.Admin)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return &applier{dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))}, nil
}

// ApplyYAML server-side applies (as admin) every document of a multi-document YAML.
func (c *Cluster) ApplyYAML(ctx context.Context, yaml []byte) error {
	objs, err := decodeYAML(yaml)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if err := c.applier.apply(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

func decodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decode YAML document %d: %w", len(objs)+1, err)
		}
		if len(obj) == 0 {
			continue // empty document between two ---
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
}

func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	what := fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
	mapping, err := a.mapping(ctx, obj)
	if err != nil {
		return fmt.Errorf("apply %s: %w", what, err)
	}
	var res dynamic.ResourceInterface = a.dynamic.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := obj.GetNamespace()
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		res = a.dynamic.Resource(mapping.Resource).Namespace(ns)
	}
	_, err = res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "testbed", Force: true})
	if err != nil {
		return fmt.Errorf("apply %s: %w", what, err)
	}
	return nil
}

// mapping finds the resource of obj's kind, rediscovering while the kind is unknown: a CRD applied a moment
// ago takes about a second to be served.
func (a *applier) mapping(ctx context.Context, obj *unstructured.Unstructured) (*meta.RESTMapping, error) {
	gvk := obj.GroupVersionKind()
	ctx, cancel := context.WithTimeout(ctx, mappingTimeout)
	defer cancel()
	var mapping *meta.RESTMapping
	err := waitFor(ctx, nil, "kind "+gvk.String(), func(context.Context) (bool, error) {
		var err error
		mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			a.mapper.Reset()
		}
		return err == nil, err
	})
	return mapping, err
}

// Kubectl runs the real kubectl from BinDir with the given kubeconfig and returns combined output.
func (c *Cluster) Kubectl(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	return runCommand(ctx, filepath.Join(c.BinDir, "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
}

// minTokenTTL is the shortest lifetime TokenRequest accepts.
const minTokenTTL = 10 * time.Minute

// ServiceAccountToken creates the ServiceAccount (and namespace) if missing and returns a token from TokenRequest.
// A ttl under 10 minutes, which the API server refuses, is raised to 10 minutes.
func (c *Cluster) ServiceAccountToken(ctx context.Context, namespace, name string, ttl time.Duration) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := c.AdminClient.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.AdminClient.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	seconds := int64(max(ttl, minTokenTTL) / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}
	resp, err := c.AdminClient.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for %s/%s: %w", namespace, name, err)
	}
	return resp.Status.Token, nil
}
