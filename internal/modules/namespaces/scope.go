package namespaces

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers"
)

// The module answers with kube-apiserver's own request handlers (negotiation, Table and
// PartialObjectMetadata conversion, protobuf, watch framing, websockets, errors), so every format and
// option behaves as the API server's. They need a RequestScope describing core/v1 namespaces.

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	// The field selectors the API server supports for namespaces, and nothing else.
	utilruntime.Must(scheme.AddFieldLabelConversionFunc(corev1.SchemeGroupVersion.WithKind("Namespace"),
		func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "status.phase":
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label not supported: %s", label)
		}))
}

func newRequestScope() *handlers.RequestScope {
	return &handlers.RequestScope{
		Namer:           handlers.ContextBasedNaming{Namer: meta.NewAccessor(), ClusterScoped: true},
		Serializer:      codecs,
		ParameterCodec:  runtime.NewParameterCodec(scheme),
		Creater:         scheme,
		Convertor:       scheme,
		Defaulter:       scheme,
		Typer:           scheme,
		UnsafeConvertor: runtime.UnsafeObjectConvertor(scheme),
		TableConvertor:  tableConvertor{},
		Resource:        corev1.SchemeGroupVersion.WithResource("namespaces"),
		Kind:            corev1.SchemeGroupVersion.WithKind("Namespace"),
		// Objects are served in the version they are cached in; there is no internal version here.
		HubGroupVersion:  corev1.SchemeGroupVersion,
		MetaGroupVersion: metav1.SchemeGroupVersion,
	}
}
