package main

import (
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// The direct side's chart lookup (as `helm install --repo`) finds the bench chart in the bench repository.
func TestChartRepoServesTheBenchChartToTheHelmSDK(t *testing.T) {
	repo, err := startChartRepo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer repo.stop()
	sdk, err := newSDKHelm(nil, "default", repo.URL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time, the archive comes from Helm's content cache
		inst := action.NewInstall(action.NewConfiguration())
		inst.RepoURL, inst.Version = repo.URL, benchChartVersion
		path, err := inst.LocateChart(benchChartName, sdk.settings)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := loader.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Name() != benchChartName || ch.Metadata.Version != benchChartVersion || len(ch.Templates) != 1 {
			t.Fatalf("got chart %s %s with %d templates", ch.Name(), ch.Metadata.Version, len(ch.Templates))
		}
	}
	if sdk.values["greeting"] != "bench" {
		t.Fatalf("values %v", sdk.values)
	}
}
