package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// installCapsuleCRDs installs Capsule's CRDs and the CapsuleConfiguration "default" without the controller
// (Options.CapsuleCRDs), for fixtures that write tenancy the way Capsule would instead of waiting for it to
// reconcile thousands of objects. The CRDs serve their storage version (v1beta2) only and convert nothing:
// there is no webhook to convert with, and a registered but missing one makes the API server retry failed
// conversions. No webhook configurations exist either, so nothing calls Capsule's admission.
func (c *Cluster) installCapsuleCRDs(ctx context.Context) error {
	files, err := filepath.Glob(filepath.Join(c.BinDir, "capsule-crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs in %s (run `make cluster-bins`): %v", filepath.Join(c.BinDir, "capsule-crds"), err)
	}
	var crds []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read CRD: %w", err)
		}
		objs, err := decodeYAML(data)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		for _, crd := range objs {
			if err := storageVersionOnly(crd); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
		crds = append(crds, objs...)
	}
	for _, crd := range crds {
		if err := c.applier.apply(ctx, crd); err != nil {
			return err
		}
	}
	if err := c.waitEstablished(ctx, crds); err != nil {
		return err
	}
	cfg, err := c.capsuleConfiguration()
	if err != nil {
		return err
	}
	// Without the controller nobody registers webhooks from it, and its client would point nowhere.
	unstructured.RemoveNestedField(cfg.Object, "spec", "admission")
	return c.applier.apply(ctx, cfg)
}

// storageVersionOnly stops a CRD serving any version but its storage version, with no conversion.
func storageVersionOnly(crd *unstructured.Unstructured) error {
	versions, _, err := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if err != nil {
		return err
	}
	for _, v := range versions {
		if m, ok := v.(map[string]any); ok && m["storage"] != true {
			m["served"] = false
		}
	}
	if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
		return err
	}
	return unstructured.SetNestedMap(crd.Object, map[string]any{"strategy": "None"}, "spec", "conversion")
}
