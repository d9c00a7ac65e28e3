package apiscope

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

func TestSupportFieldLabels(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kind := corev1.SchemeGroupVersion.WithKind("Namespace")
	if err := SupportFieldLabels(scheme, kind, "metadata.name", "status.phase"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		label   string
		wantErr bool
	}{{"metadata.name", false}, {"status.phase", false}, {"metadata.namespace", true}, {"spec.finalizers", true}}
	for _, tt := range tests {
		if _, _, err := scheme.ConvertFieldLabel(kind, tt.label, "x"); (err != nil) != tt.wantErr {
			t.Errorf("ConvertFieldLabel(%q) error = %v, wantErr %v", tt.label, err, tt.wantErr)
		}
	}
	scope := ClusterScoped(scheme, serializer.NewCodecFactory(scheme), corev1.SchemeGroupVersion.WithResource("namespaces"), kind, nil)
	if scope.HubGroupVersion != corev1.SchemeGroupVersion || scope.Kind != kind {
		t.Fatalf("scope serves %v as %v", scope.Kind, scope.HubGroupVersion)
	}
}
