package clusterscoped

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversionscheme "k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apiserver/pkg/util/apihelpers"
)

// A granted write is performed with the proxy's credentials only on the state the proxy checked: the body
// the client sent is sent on with metadata.resourceVersion set to the version that was checked, which the
// API server treats as a precondition (409 Conflict if the object changed meanwhile). Nothing else in the
// body is changed. These functions do that per media type; they work on the generic JSON tree (not typed
// objects) so that fields the proxy does not know still reach the API server, whose field validation
// judges them.

// The media types a granted write accepts. Anything else (CBOR, for example) is refused with 415: the
// precondition could not be added to it.
const (
	mediaJSON           = "application/json"
	mediaYAML           = "application/yaml"
	mediaProtobuf       = "application/vnd.kubernetes.protobuf"
	mediaJSONPatch      = "application/json-patch+json"
	mediaMergePatch     = "application/merge-patch+json"
	mediaStrategicPatch = "application/strategic-merge-patch+json"
	mediaApplyPatch     = "application/apply-patch+yaml"
)

var (
	putMediaTypes   = []string{mediaJSON, mediaYAML, mediaProtobuf}
	patchMediaTypes = []string{mediaJSONPatch, mediaMergePatch, mediaStrategicPatch, mediaApplyPatch}
)

// errPreconditionConflict marks a client precondition (a resourceVersion or UID in its body or options)
// that differs from the state checked: the API server would answer 409, and so does the proxy.
var errPreconditionConflict = errors.New("precondition differs from the current object")

// withResourceVersion returns body, of the given media type, carrying rv as metadata.resourceVersion, and
// the media type to send it as (YAML is sent as the equivalent JSON).
func withResourceVersion(mediaType string, body []byte, rv string, kind schema.GroupVersionKind) ([]byte, string, error) {
	switch mediaType {
	case mediaJSON, mediaMergePatch, mediaStrategicPatch:
		out, err := objectWithResourceVersion(body, rv)
		return out, mediaType, err
	case mediaYAML:
		out, err := yamlObjectWithResourceVersion(body, rv)
		return out, mediaJSON, err
	case mediaApplyPatch:
		// JSON is YAML, so the apply configuration keeps its media type.
		out, err := yamlObjectWithResourceVersion(body, rv)
		return out, mediaType, err
	case mediaJSONPatch:
		out, err := jsonPatchWithResourceVersion(body, rv)
		return out, mediaType, err
	case mediaProtobuf:
		out, err := protobufWithResourceVersion(body, rv, kind)
		return out, mediaType, err
	}
	return nil, "", fmt.Errorf("unsupported media type %q", mediaType)
}

func yamlObjectWithResourceVersion(body []byte, rv string) ([]byte, error) {
	js, err := utilyaml.ToJSON(body) // as kube-apiserver reads YAML bodies; JSON stays as it is
	if err != nil {
		return nil, fmt.Errorf("decoding the YAML body: %w", err)
	}
	return objectWithResourceVersion(js, rv)
}

// objectWithResourceVersion sets metadata.resourceVersion in a JSON object (an object, a merge patch, a
// strategic merge patch or an apply configuration). A resourceVersion the client set itself must be rv.
func objectWithResourceVersion(body []byte, rv string) ([]byte, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers go on exactly as sent
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decoding the JSON body: %w", err)
	}
	if obj == nil {
		return nil, errors.New("the body is not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("the body holds more than one JSON document")
	}
	metadata := map[string]any{}
	if m, present := obj["metadata"]; present {
		var ok bool
		if metadata, ok = m.(map[string]any); !ok {
			// null would remove the metadata in a merge patch; the proxy does not rewrite such a patch.
			return nil, errors.New("metadata must be a JSON object")
		}
	}
	if own, set := metadata["resourceVersion"]; set && own != nil && own != "" {
		if own != rv {
			return nil, fmt.Errorf("%w: resourceVersion %v, current %s", errPreconditionConflict, own, rv)
		}
	}
	metadata["resourceVersion"] = rv
	obj["metadata"] = metadata
	return json.Marshal(obj)
}

// jsonPatchWithResourceVersion appends an operation that replaces metadata.resourceVersion with rv. The
// API server applies a JSON patch to the current object and then checks the result's resourceVersion
// against it: a mismatch is a 409 Conflict that clients retry. (A leading "test" operation would also
// stop the write, but as a 422 Invalid patch, which clients do not retry.) Operations of the client that
// set or test the resourceVersion must agree with rv.
func jsonPatchWithResourceVersion(body []byte, rv string) ([]byte, error) {
	var ops []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&ops); err != nil {
		return nil, fmt.Errorf("decoding the JSON patch: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the body holds more than one JSON document")
	}
	for _, op := range ops {
		if op["path"] != "/metadata/resourceVersion" {
			continue
		}
		if v, ok := op["value"]; ok && v != rv {
			return nil, fmt.Errorf("%w: resourceVersion %v, current %s", errPreconditionConflict, v, rv)
		}
	}
	ops = append(ops, map[string]any{"op": "replace", "path": "/metadata/resourceVersion", "value": rv})
	return json.Marshal(ops)
}

// protobufWithResourceVersion decodes a protobuf object of kind (the served kinds are all built in),
// sets its resourceVersion and encodes it again.
func protobufWithResourceVersion(body []byte, rv string, kind schema.GroupVersionKind) ([]byte, error) {
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaProtobuf)
	if !ok {
		return nil, errors.New("no protobuf serializer")
	}
	obj, gvk, err := info.Serializer.Decode(body, &kind, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding the protobuf body: %w", err)
	}
	if *gvk != kind {
		return nil, fmt.Errorf("the body is a %s, not a %s", gvk, kind)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("reading the body's metadata: %w", err)
	}
	if own := m.GetResourceVersion(); own != "" && own != rv {
		return nil, fmt.Errorf("%w: resourceVersion %s, current %s", errPreconditionConflict, own, rv)
	}
	m.SetResourceVersion(rv)
	var out bytes.Buffer
	if err := codecs.EncoderForVersion(info.Serializer, kind.GroupVersion()).Encode(obj, &out); err != nil {
		return nil, fmt.Errorf("encoding the protobuf body: %w", err)
	}
	return out.Bytes(), nil
}

// deleteOptions reads a DELETE's options as kube-apiserver does (the body if there is one, else the query)
// and adds the preconditions uid and rv. Client preconditions must agree with them.
func deleteOptions(contentType string, body []byte, query url.Values, uid types.UID, rv string) (*metav1.DeleteOptions, error) {
	options := &metav1.DeleteOptions{}
	if len(body) > 0 {
		mediaType, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the Content-Type of the delete options: %v", err))
		}
		codecs := apihelpers.GetMetaInternalVersionCodecs()
		info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
		if !ok {
			return nil, unsupportedMediaType(mediaType, []string{mediaJSON, mediaYAML, mediaProtobuf})
		}
		defaultGVK := metav1.SchemeGroupVersion.WithKind("DeleteOptions")
		obj, _, err := codecs.DecoderToVersion(info.Serializer, metav1.SchemeGroupVersion).Decode(body, &defaultGVK, options)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if obj != options {
			return nil, apierrors.NewBadRequest("decoded object cannot be converted to DeleteOptions")
		}
	} else if err := metainternalversionscheme.ParameterCodec.DecodeParameters(query, metav1.SchemeGroupVersion, options); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	p := options.Preconditions
	if p == nil {
		p = &metav1.Preconditions{}
	}
	if p.UID != nil && *p.UID != uid {
		return nil, fmt.Errorf("%w: UID in precondition: %s, UID in object meta: %s", errPreconditionConflict, *p.UID, uid)
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != rv {
		return nil, fmt.Errorf("%w: ResourceVersion in precondition: %s, ResourceVersion in object meta: %s", errPreconditionConflict, *p.ResourceVersion, rv)
	}
	p.UID, p.ResourceVersion = &uid, &rv
	options.Preconditions = p
	options.TypeMeta = metav1.TypeMeta{APIVersion: metav1.SchemeGroupVersion.String(), Kind: "DeleteOptions"}
	return options, nil
}

func unsupportedMediaType(mediaType string, accepted []string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 415, Reason: metav1.StatusReasonUnsupportedMediaType,
		Message: fmt.Sprintf("the body of a write tenant-proxy performs for a tenant owner must be one of %v, not %q", accepted, mediaType),
	}}
}
