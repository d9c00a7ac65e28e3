package permissions

import (
	"slices"
	"strings"
)

// Permission is one resource in one namespace (or cluster-wide) and the verbs missing on it: the shape of the
// release API's 403 answer, as Kubeapps' dashboard reads it.
type Permission struct {
	APIGroup    string   `json:"apiGroup"`
	Resource    string   `json:"resource"`
	Namespace   string   `json:"namespace"`
	ClusterWide bool     `json:"clusterWide"`
	Verbs       []string `json:"verbs"`
}

// Group merges checks into one Permission per resource and namespace, verbs sorted and without duplicates,
// the list sorted by API group, resource and namespace.
func Group(checks []Check) []Permission {
	type key struct{ group, resource, namespace string }
	verbs := map[key][]string{}
	for _, c := range checks {
		k := key{c.APIGroup, c.Resource, c.Namespace}
		if !slices.Contains(verbs[k], c.Verb) {
			verbs[k] = append(verbs[k], c.Verb)
		}
	}
	out := make([]Permission, 0, len(verbs))
	for k, v := range verbs {
		slices.Sort(v)
		out = append(out, Permission{APIGroup: k.group, Resource: k.resource, Namespace: k.namespace, ClusterWide: k.namespace == "", Verbs: v})
	}
	slices.SortFunc(out, func(a, b Permission) int {
		if c := strings.Compare(a.APIGroup, b.APIGroup); c != 0 {
			return c
		}
		if c := strings.Compare(a.Resource, b.Resource); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace, b.Namespace)
	})
	return out
}
