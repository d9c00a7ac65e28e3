package webserver

import (
	"net/http"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/kubernetes/scheme"
)

var codecs = scheme.Codecs.WithoutConversion()

// writeStatus answers with a Kubernetes Status in the format the client negotiated.
func writeStatus(w http.ResponseWriter, r *http.Request, err error) {
	gv := schema.GroupVersion{}
	if info, ok := apirequest.RequestInfoFrom(r.Context()); ok {
		gv = schema.GroupVersion{Group: info.APIGroup, Version: info.APIVersion}
	}
	responsewriters.ErrorNegotiated(err, codecs, gv, w, r)
}

func schemaGroupResource(r *http.Request) schema.GroupResource {
	if info, ok := apirequest.RequestInfoFrom(r.Context()); ok {
		return schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
	}
	return schema.GroupResource{}
}
