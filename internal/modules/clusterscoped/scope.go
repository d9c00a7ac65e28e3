package clusterscoped

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/endpoints/handlers"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/apiscope"
)

// The module answers with kube-apiserver's own request handlers (negotiation, Table and
// PartialObjectMetadata conversion, protobuf, errors), so every format behaves as the API server's.
// They need a RequestScope per resource.

var (
	scheme = runtime.NewScheme()
	codecs = serializer.NewCodecFactory(scheme)
)

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, storagev1.AddToScheme, networkingv1.AddToScheme, schedulingv1.AddToScheme, nodev1.AddToScheme,
	} {
		utilruntime.Must(add(scheme))
	}
	// The watch events, options and status of a custom resource's group version, as the API server has them.
	metav1.AddToGroupVersion(scheme, Tenants.Kind.GroupVersion())
	// Only metadata.name is supported as a field selector; anything else is refused rather than ignored.
	for _, gvk := range []schema.GroupVersionKind{StorageClasses.Kind, IngressClasses.Kind, PriorityClasses.Kind, RuntimeClasses.Kind, Nodes.Kind, PersistentVolumes.Kind, Tenants.Kind} {
		utilruntime.Must(apiscope.SupportFieldLabels(scheme, gvk, "metadata.name"))
	}
}

func newRequestScope(r Resource) *handlers.RequestScope {
	scope := apiscope.ClusterScoped(scheme, codecs, r.Resource, r.Kind, tableConvertor{resource: r})
	if r.Unstructured {
		scope.Serializer = crdSerializer{codecs}
		scope.StandardSerializers = crdStandardSerializers()
		scope.Convertor = crdConvertor{scheme}
		scope.UnsafeConvertor = crdConvertor{scheme}
	}
	return scope
}
