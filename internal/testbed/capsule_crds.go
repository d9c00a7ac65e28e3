package testbed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// applyCapsuleCRDs applies every CRD in BinDir/capsule-crds, with the chart's conversion-webhook patch where
// there is one, and waits until all are established. It returns the applied CRDs.
func (c *Cluster) applyCapsuleCRDs(ctx context.Context) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(c.BinDir, "capsule-crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s: %v", filepath.Join(c.BinDir, "capsule-crds"), err)
	}
	var crds []*unstructured.Unstructured
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read CRD: %w", err)
		}
		objs, err := decodeYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		patch := strings.TrimSuffix(file, ".yaml") + ".patch"
		if _, err := os.Stat(patch); err == nil {
			conversion, err := c.conversionPatch(patch)
			if err != nil {
				return nil, err
			}
			for _, crd := range objs {
				if err := unstructured.SetNestedMap(crd.Object, conversion, "spec", "conversion"); err != nil {
					return nil, fmt.Errorf("%s: %w", patch, err)
				}
			}
		}
		crds = append(crds, objs...)
	}
	for _, crd := range crds {
		if err := c.applier.apply(ctx, crd); err != nil {
			return nil, err
		}
	}
	return crds, c.waitEstablished(ctx, crds)
}

// conversionPatch reads spec.conversion from one of the chart's *.patch files. They are Helm templates: the
// template lines (the service reference and a cert-manager annotation) are dropped and the webhook is pointed at
// Capsule's loopback /convert with the test bed's CA.
func (c *Cluster) conversionPatch(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CRD patch: %w", err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, "{{") {
			kept = append(kept, line)
		}
	}
	var patch map[string]any
	if err := yaml.Unmarshal([]byte(strings.Join(kept, "\n")), &patch); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	conversion, ok, err := unstructured.NestedMap(patch, "spec", "conversion")
	if !ok || err != nil {
		return nil, fmt.Errorf("%s: no spec.conversion (%v)", path, err)
	}
	clientConfig := map[string]any{
		"url":      c.CapsuleWebhookURL + "/convert",
		"caBundle": base64.StdEncoding.EncodeToString(c.CA.CertPEM),
	}
	if err := unstructured.SetNestedMap(conversion, clientConfig, "webhook", "clientConfig"); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return conversion, nil
}

func (c *Cluster) waitEstablished(ctx context.Context, crds []*unstructured.Unstructured) error {
	res := c.applier.dynamic.Resource(crdsGVR)
	for _, crd := range crds {
		err := waitFor(ctx, nil, "CRD "+crd.GetName()+" to be established", func(ctx context.Context) (bool, error) {
			got, err := res.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			for _, cond := range conditions {
				if m, ok := cond.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkConversion converts a Tenant through Capsule's /convert. Should it not work, the API server would retry
// failing conversions of the old version forever (at a cost of CPU), so the CRDs then serve their storage version
// only.
func (c *Cluster) checkConversion(ctx context.Context, p *process, crds []*unstructured.Unstructured) error {
	var lastErr error
	err := waitFor(ctx, p, "Capsule's conversion webhook", func(ctx context.Context) (bool, error) {
		lastErr = c.convertTenant(ctx)
		// Only a refused connection means "not up yet"; any HTTP answer settles the question.
		return lastErr == nil || !isConnRefused(lastErr), lastErr
	})
	if err != nil {
		return err
	}
	if lastErr == nil {
		return nil
	}
	c.logf("Capsule's /convert does not work (%v): serving only the storage version of converted CRDs", lastErr)
	for _, crd := range crds {
		if _, ok, _ := unstructured.NestedMap(crd.Object, "spec", "conversion", "webhook"); !ok {
			continue
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range versions {
			if m, ok := v.(map[string]any); ok && m["storage"] != true {
				m["served"] = false
			}
		}
		if err := unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"); err != nil {
			return err
		}
		if err := unstructured.SetNestedMap(crd.Object, map[string]any{"strategy": "None"}, "spec", "conversion"); err != nil {
			return err
		}
		if err := c.applier.apply(ctx, crd); err != nil {
			return err
		}
	}
	return nil
}

// convertTenant posts a ConversionReview of one v1beta2 Tenant to v1beta1, as the API server would.
func (c *Cluster) convertTenant(ctx context.Context) error {
	review := map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "ConversionReview",
		"request": map[string]any{
			"uid":               "testbed-conversion-check",
			"desiredAPIVersion": "capsule.clastix.io/v1beta1",
			"objects": []any{map[string]any{
				"apiVersion": "capsule.clastix.io/v1beta2",
				"kind":       "Tenant",
				"metadata":   map[string]any{"name": "conversion-check"},
				"spec":       map[string]any{"owners": []any{map[string]any{"kind": "User", "name": "someone"}}},
			}},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.CapsuleWebhookURL+"/convert", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.caHTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /convert: %s", resp.Status)
	}
	var answer struct {
		Response struct {
			UID              string           `json:"uid"`
			Result           metav1.Status    `json:"result"`
			ConvertedObjects []map[string]any `json:"convertedObjects"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return fmt.Errorf("POST /convert: %w", err)
	}
	r := answer.Response
	if r.Result.Status != metav1.StatusSuccess || len(r.ConvertedObjects) != 1 ||
		r.ConvertedObjects[0]["apiVersion"] != "capsule.clastix.io/v1beta1" {
		return fmt.Errorf("POST /convert: status %q (%s), %d objects", r.Result.Status, r.Result.Message, len(r.ConvertedObjects))
	}
	return nil
}

// caHTTPClient trusts the test bed's CA only.
func (c *Cluster) caHTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(c.CA.Cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}
