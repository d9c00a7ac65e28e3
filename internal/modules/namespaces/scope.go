package namespaces

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/apiscope"
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
	utilruntime.Must(apiscope.SupportFieldLabels(scheme, corev1.SchemeGroupVersion.WithKind("Namespace"), "metadata.name", "status.phase"))
}

func newRequestScope() *handlers.RequestScope {
	return apiscope.ClusterScoped(scheme, codecs, corev1.SchemeGroupVersion.WithResource("namespaces"),
		corev1.SchemeGroupVersion.WithKind("Namespace"), tableConvertor{})
}
