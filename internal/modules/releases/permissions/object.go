// Package permissions turns what a Helm action will apply into the list of Kubernetes permissions it needs,
// and asks the API server (SubjectAccessReview) which of them a caller lacks. It touches no cluster object:
// manifests are parsed as rendered, and only discovery and the authorisation API are consulted.
package permissions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// resourcePolicyAnnotation with value "keep" makes Helm leave an object behind on upgrade and uninstall.
const (
	resourcePolicyAnnotation = "helm.sh/resource-policy"
	keepPolicy               = "keep"
)

// Object is one object of a rendered manifest, as far as authorisation cares.
type Object struct {
	GVK       schema.GroupVersionKind
	Namespace string // as written; empty means the release namespace for namespaced kinds
	Name      string
	Keep      bool // helm.sh/resource-policy: keep
	// Defines is set when the object is a CustomResourceDefinition: the kind it makes known.
	Defines *Definition
}

// Definition is what a CustomResourceDefinition declares: enough to check its custom objects before the
// cluster knows their kind.
type Definition struct {
	GroupKind  schema.GroupKind
	Resource   string
	Namespaced bool
}

// key identifies an object the way Helm matches objects between manifests (group, kind, namespace, name).
func (o Object) key(releaseNamespace string) string {
	ns := o.Namespace
	if ns == "" {
		ns = releaseNamespace
	}
	return strings.Join([]string{o.GVK.Group, o.GVK.Kind, ns, o.Name}, "/")
}

var crdGroupKind = schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}

// Parse reads every object of a multi-document YAML (or JSON) manifest; `kind: ...List` documents are
// flattened as Helm's resource builder does. Empty documents are skipped; anything unreadable is an error,
// because an object that cannot be read cannot be checked.
func Parse(manifest string) ([]Object, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objects []Object
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, fmt.Errorf("reading manifest: %w", err)
		}
		if len(doc) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: doc}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", u.GetKind(), err)
			}
			for i := range list.Items {
				obj, err := objectOf(&list.Items[i])
				if err != nil {
					return nil, err
				}
				objects = append(objects, obj)
			}
			continue
		}
		obj, err := objectOf(u)
		if err != nil {
			return nil, err
		}
		objects = append(objects, obj)
	}
}

// ParseAll parses several manifests (the files of a chart's crds/ directory, for instance) as one.
func ParseAll(manifests ...[]byte) ([]Object, error) {
	var buf bytes.Buffer
	for _, m := range manifests {
		buf.WriteString("\n---\n")
		buf.Write(m)
	}
	return Parse(buf.String())
}

func objectOf(u *unstructured.Unstructured) (Object, error) {
	gvk := u.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return Object{}, fmt.Errorf("manifest object %q has no apiVersion or kind", u.GetName())
	}
	if u.GetName() == "" && u.GetGenerateName() == "" {
		return Object{}, fmt.Errorf("manifest object of kind %s has no name", gvk.Kind)
	}
	obj := Object{GVK: gvk, Namespace: u.GetNamespace(), Name: u.GetName(),
		Keep: u.GetAnnotations()[resourcePolicyAnnotation] == keepPolicy}
	if gvk.GroupKind() == crdGroupKind {
		def, err := definitionOf(u)
		if err != nil {
			return Object{}, err
		}
		obj.Defines = def
	}
	return obj, nil
}

func definitionOf(u *unstructured.Unstructured) (*Definition, error) {
	group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(u.Object, "spec", "names", "kind")
	plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
	scope, _, _ := unstructured.NestedString(u.Object, "spec", "scope")
	if group == "" || kind == "" || plural == "" || (scope != "Namespaced" && scope != "Cluster") {
		return nil, fmt.Errorf("CustomResourceDefinition %q lacks spec.group, spec.names.kind, spec.names.plural or spec.scope", u.GetName())
	}
	return &Definition{GroupKind: schema.GroupKind{Group: group, Kind: kind}, Resource: plural, Namespaced: scope == "Namespaced"}, nil
}
