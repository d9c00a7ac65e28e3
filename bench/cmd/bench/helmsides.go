package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/kube"
	ri "helm.sh/helm/v4/pkg/release"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"
)

// Settings both sides share with the proxy's release API defaults (--helm-timeout, the list limit).
const (
	helmTimeout   = 5 * time.Minute
	helmListLimit = 256
	helmDriver    = "secret" // Helm's default storage: release records are Secrets in the release namespace
)

// helmClient is one side of the helm workloads: a tenant owner's release operations in one namespace.
type helmClient interface {
	install(ctx context.Context, release string) error
	uninstall(ctx context.Context, release string) error
	// list returns the names of the namespace's releases.
	list(ctx context.Context) ([]string, error)
}

// proxyHelm drives the proxy's release API (Kubeapps' routes) over HTTPS with the owner's certificate.
type proxyHelm struct {
	c         *client
	base      string
	namespace string
	repoURL   string
}

func (p *proxyHelm) releasesPath() string { return "/v1/namespaces/" + p.namespace + "/releases" }

func (p *proxyHelm) install(ctx context.Context, release string) error {
	body, err := json.Marshal(map[string]string{
		"chartName": benchChartName, "releaseName": release, "version": benchChartVersion,
		"values": benchChartValues, "repoUrl": p.repoURL,
	})
	if err != nil {
		return fmt.Errorf("install body: %w", err)
	}
	_, err = p.do(ctx, http.MethodPost, p.releasesPath(), body, http.StatusCreated)
	return err
}

func (p *proxyHelm) uninstall(ctx context.Context, release string) error {
	_, err := p.do(ctx, http.MethodDelete, p.releasesPath()+"/"+release+"?purge=true", nil, http.StatusOK)
	return err
}

func (p *proxyHelm) list(ctx context.Context) ([]string, error) {
	data, err := p.do(ctx, http.MethodGet, p.releasesPath(), nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var out struct {
		Data []struct {
			Name string `json:"name"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("list answer: %w", err)
	}
	names := make([]string, len(out.Data))
	for i, r := range out.Data {
		names[i] = r.Name
	}
	return names, nil
}

// do sends one request and reads the whole answer; any status but want is an error.
func (p *proxyHelm) do(ctx context.Context, method, path string, body []byte, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("%s %s: %s: %.512s", method, path, resp.Status, data)
	}
	return data, nil
}

// sdkHelm is the same owner using the Helm v4 SDK against the API server directly, as `helm install --repo`
// does: the chart is located through the repository's index (Helm's content cache keeps the archive), and
// the action is configured as the proxy configures it. One discovery cache serves every operation, as a
// long-running SDK client keeps it (the CLI keeps it on disk).
type sdkHelm struct {
	getter    genericclioptions.RESTClientGetter
	namespace string
	repoURL   string
	settings  *cli.EnvSettings
	values    map[string]any
}

// newSDKHelm keeps Helm's repository and content caches under dir, away from the user's own.
func newSDKHelm(getter genericclioptions.RESTClientGetter, namespace, repoURL, dir string) (*sdkHelm, error) {
	values := map[string]any{}
	if err := yaml.Unmarshal([]byte(benchChartValues), &values); err != nil {
		return nil, fmt.Errorf("bench values: %w", err)
	}
	settings := cli.New()
	settings.RepositoryConfig = filepath.Join(dir, "repositories.yaml")
	settings.RepositoryCache = filepath.Join(dir, "repository")
	settings.ContentCache = filepath.Join(dir, "content")
	return &sdkHelm{getter: getter, namespace: namespace, repoURL: repoURL, settings: settings, values: values}, nil
}

// config is a fresh action configuration per operation, as each helm command makes one. Helm's logs go
// nowhere, as the proxy's do.
func (s *sdkHelm) config() (*action.Configuration, error) {
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := cfg.Init(s.getter, s.namespace, helmDriver); err != nil {
		return nil, fmt.Errorf("helm configuration: %w", err)
	}
	return cfg, nil
}

func (s *sdkHelm) install(ctx context.Context, release string) error {
	cfg, err := s.config()
	if err != nil {
		return err
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = release, s.namespace
	inst.WaitStrategy = kube.HookOnlyStrategy
	inst.Timeout = helmTimeout
	inst.RepoURL, inst.Version = s.repoURL, benchChartVersion
	path, err := inst.LocateChart(benchChartName, s.settings)
	if err != nil {
		return fmt.Errorf("locate chart %s: %w", benchChartName, err)
	}
	ch, err := loader.Load(path)
	if err != nil {
		return fmt.Errorf("load chart %s: %w", path, err)
	}
	// A copy per run: Helm may coalesce into the map it is given.
	values := make(map[string]any, len(s.values))
	for k, v := range s.values {
		values[k] = v
	}
	if _, err := inst.RunWithContext(ctx, ch, values); err != nil {
		return fmt.Errorf("install %s: %w", release, err)
	}
	return nil
}

func (s *sdkHelm) uninstall(ctx context.Context, release string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg, err := s.config()
	if err != nil {
		return err
	}
	un := action.NewUninstall(cfg)
	un.WaitStrategy = kube.HookOnlyStrategy
	un.Timeout = helmTimeout
	if _, err := un.Run(release); err != nil {
		return fmt.Errorf("uninstall %s: %w", release, err)
	}
	return nil
}

func (s *sdkHelm) list(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := s.config()
	if err != nil {
		return nil, err
	}
	l := action.NewList(cfg)
	l.Limit = helmListLimit
	found, err := l.Run()
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	names := make([]string, len(found))
	for i, r := range found {
		acc, err := ri.NewAccessor(r)
		if err != nil {
			return nil, fmt.Errorf("release record: %w", err)
		}
		names[i] = acc.Name()
	}
	return names, nil
}
