// Package chart renders the tenant-proxy Helm chart (charts/tenant-proxy) with the Helm SDK exactly as
// `helm template` does, and decodes the result, so unit and end-to-end tests check what Helm would install.
package chart

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// KubeVersion is the Kubernetes version the chart is rendered for: the one the test bed runs.
const KubeVersion = "v1.37.2"

// Options name the release and its values; empty names get defaults.
type Options struct {
	ReleaseName string         // "tenant-proxy"
	Namespace   string         // "tenant-proxy-system"
	Values      map[string]any // merged over values.yaml, like `helm --values`
}

// Dir returns charts/tenant-proxy of the repository that contains the working directory.
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("chart: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "charts", "tenant-proxy"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("chart: no go.mod above %s", dir)
		}
	}
}

// Render returns the manifest of an install of the chart in dir, as `helm template --include-crds` prints it:
// values are merged over values.yaml and validated against values.schema.json, the chart's kubeVersion is
// checked, documents come in Helm's install order, and nothing talks to a cluster (so `lookup` finds nothing).
func Render(ctx context.Context, dir string, opts Options) (string, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return "", fmt.Errorf("chart: load %s: %w", dir, err)
	}
	kubeVersion, err := common.ParseKubeVersion(KubeVersion)
	if err != nil {
		return "", fmt.Errorf("chart: %w", err)
	}
	if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, kubeVersion.String()) {
		return "", fmt.Errorf("chart: requires Kubernetes %s, not %s", c, kubeVersion)
	}
	caps := common.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	release := common.ReleaseOptions{
		Name:      cmp.Or(opts.ReleaseName, "tenant-proxy"),
		Namespace: cmp.Or(opts.Namespace, "tenant-proxy-system"),
		Revision:  1,
		IsInstall: true,
	}
	values, err := util.ToRenderValues(ch, opts.Values, release, caps)
	if err != nil {
		return "", fmt.Errorf("chart: values: %w", err)
	}
	files, err := new(engine.Engine).RenderWithContext(ctx, ch, values)
	if err != nil {
		return "", fmt.Errorf("chart: render: %w", err)
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return "", fmt.Errorf("chart: %w", err)
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	for _, h := range hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return b.String(), nil
}

// Decode splits a multi-document manifest into objects, skipping empty documents.
func Decode(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var objs []*unstructured.Unstructured
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("chart: decode document %d: %w", len(objs)+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
}
