package clusterscoped

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/versioning"

	"github.com/tenant-proxy/tenant-proxy/internal/modules/tenants"
)

// Tenants are Capsule's capsule.clastix.io/v1beta2 tenants, a custom resource: each owner granted List sees
// the Tenants they own. They are served from the tenant index's own informer, which keeps the full objects
// as the API server returns them, kept as JSON (tenants.StoredTenant), less metadata.managedFields (the
// index drops them to save memory; kubectl hides them by default). The API server renders a custom resource's table from the CRD's
// additionalPrinterColumns; this one is a plain NAME, AGE table instead of Capsule's State, Namespace quota,
// Namespace count, Node selector, Ready and Status columns.
var Tenants = Resource{
	Kind:     tenants.TenantsResource.GroupVersion().WithKind("Tenant"),
	Resource: tenants.TenantsResource,
	Grant:    tenants.Tenants,
	NewList: func() runtime.Object {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(tenants.TenantsResource.GroupVersion().WithKind("TenantList"))
		return list
	},
	IndexInformer: (*tenants.Index).TenantInformer,
	Served:        tenants.ServedTenant,
	Columns:       []metav1.TableColumnDefinition{ageColumn},
	Cells:         func(obj runtime.Object) []any { return []any{age(obj)} },
	Unstructured:  true,
}

// crdSerializer encodes custom resources as kube-apiextensions-apiserver does: an unstructured object is
// written in the version it is cached in, anything else (Table, PartialObjectMetadata, Status) as the
// typed scheme writes it.
type crdSerializer struct{ runtime.NegotiatedSerializer }

func (s crdSerializer) EncoderForVersion(encoder runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	return versioning.NewCodec(encoder, nil, crdConvertor{scheme}, scheme, scheme, scheme, gv, nil, "tenant-proxy-crd")
}

// crdStandardSerializers are the media types a custom resource itself is served in: JSON and YAML. As from
// the API server, protobuf is only for the Table and PartialObjectMetadata forms.
func crdStandardSerializers() []runtime.SerializerInfo {
	var out []runtime.SerializerInfo
	for _, info := range codecs.SupportedMediaTypes() {
		if info.MediaType == runtime.ContentTypeJSON || info.MediaType == runtime.ContentTypeYAML {
			out = append(out, info)
		}
	}
	return out
}

// crdConvertor passes unstructured objects of the served version through unchanged: there is one served
// version and no conversion. Any other version is refused.
type crdConvertor struct{ runtime.ObjectConvertor }

func (c crdConvertor) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	if _, ok := in.(runtime.Unstructured); !ok {
		return c.ObjectConvertor.ConvertToVersion(in, target)
	}
	gvk := in.GetObjectKind().GroupVersionKind()
	if want, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk}); !ok || want != gvk {
		return nil, fmt.Errorf("cannot convert %s to %v", gvk, target)
	}
	return in, nil
}
