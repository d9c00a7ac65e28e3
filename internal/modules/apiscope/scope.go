// Package apiscope builds the RequestScope that lets a module answer reads with kube-apiserver's own request
// handlers (k8s.io/apiserver/pkg/endpoints/handlers: negotiation, Table and PartialObjectMetadata
// conversion, protobuf, watch framing, websockets, errors), so every format and option behaves as the API
// server's.
package apiscope

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/registry/rest"
)

// ClusterScoped describes a cluster-scoped resource served from a cache in the version it is cached in:
// there is no internal version, so the hub is the served version itself.
func ClusterScoped(scheme *runtime.Scheme, codecs runtime.NegotiatedSerializer, resource schema.GroupVersionResource,
	kind schema.GroupVersionKind, tables rest.TableConvertor) *handlers.RequestScope {
	return &handlers.RequestScope{
		Namer:            handlers.ContextBasedNaming{Namer: meta.NewAccessor(), ClusterScoped: true},
		Serializer:       codecs,
		ParameterCodec:   runtime.NewParameterCodec(scheme),
		Creater:          scheme,
		Convertor:        scheme,
		Defaulter:        scheme,
		Typer:            scheme,
		UnsafeConvertor:  runtime.UnsafeObjectConvertor(scheme),
		TableConvertor:   tables,
		Resource:         resource,
		Kind:             kind,
		HubGroupVersion:  kind.GroupVersion(),
		MetaGroupVersion: metav1.SchemeGroupVersion,
	}
}

// SupportFieldLabels registers the field selectors kind supports; any other label is refused (a 400), never
// ignored, so a selector can only narrow a result.
func SupportFieldLabels(scheme *runtime.Scheme, kind schema.GroupVersionKind, labels ...string) error {
	err := scheme.AddFieldLabelConversionFunc(kind, func(label, value string) (string, string, error) {
		for _, supported := range labels {
			if label == supported {
				return label, value, nil
			}
		}
		return "", "", fmt.Errorf("field label not supported: %s", label)
	})
	if err != nil {
		return fmt.Errorf("field labels of %s: %w", kind, err)
	}
	return nil
}

// NoHeaders reads the table options kube-apiserver's handlers pass to a TableConvertor: whether the client
// asked for rows without column definitions.
func NoHeaders(tableOptions runtime.Object) (bool, error) {
	switch opts := tableOptions.(type) {
	case nil:
		return false, nil
	case *metav1.TableOptions:
		return opts != nil && opts.NoHeaders, nil
	default:
		return false, fmt.Errorf("unrecognized type %T for table options, can't display tabular output", tableOptions)
	}
}
