package releases

import (
	"time"

	release "helm.sh/helm/v4/pkg/release/v1"
)

// summary is a release as lists show it.
type summary struct {
	Name         string    `json:"name"`
	Namespace    string    `json:"namespace"`
	Version      int       `json:"version"`
	Status       string    `json:"status"`
	Chart        string    `json:"chart"`
	ChartVersion string    `json:"chartVersion"`
	AppVersion   string    `json:"appVersion"`
	Updated      time.Time `json:"updated"`
}

// detail is one release as its own route shows it: the summary plus what was applied.
type detail struct {
	summary
	Description string         `json:"description,omitempty"`
	Manifest    string         `json:"manifest"`
	Notes       string         `json:"notes,omitempty"`
	Values      map[string]any `json:"values"`
}

func summarize(r *release.Release) summary {
	s := summary{Name: r.Name, Namespace: r.Namespace, Version: r.Version}
	if r.Info != nil {
		s.Status = string(r.Info.Status)
		s.Updated = r.Info.LastDeployed
	}
	if r.Chart != nil && r.Chart.Metadata != nil {
		s.Chart, s.ChartVersion, s.AppVersion = r.Chart.Metadata.Name, r.Chart.Metadata.Version, r.Chart.Metadata.AppVersion
	}
	return s
}

func detailOf(r *release.Release) detail {
	d := detail{summary: summarize(r), Manifest: r.Manifest, Values: r.Config}
	if r.Info != nil {
		d.Description, d.Notes = r.Info.Description, r.Info.Notes
	}
	if d.Values == nil {
		d.Values = map[string]any{}
	}
	return d
}
