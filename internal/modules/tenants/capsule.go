package tenants

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"
)

// The Capsule resources the index reads. Only the fields below are decoded: importing Capsule's own
// api/v1beta2 package would link controller-runtime and Capsule's template and encryption libraries into
// the proxy. capsule_test.go proves these views read what Capsule's v1beta2 types write.
var (
	TenantsResource               = schema.GroupVersionResource{Group: capsuleGroup, Version: "v1beta2", Resource: "tenants"}
	CapsuleConfigurationsResource = schema.GroupVersionResource{Group: capsuleGroup, Version: "v1beta2", Resource: "capsuleconfigurations"}
)

const (
	capsuleGroup = "capsule.clastix.io"
	tenantKind   = "Tenant"

	// DefaultConfigurationName is the CapsuleConfiguration Capsule reads unless started with
	// --configuration-name.
	DefaultConfigurationName = "default"
)

// ownerKind is Capsule's rbac.OwnerKind.
type ownerKind string

const (
	userKind           ownerKind = "User"
	groupKind          ownerKind = "Group"
	serviceAccountKind ownerKind = "ServiceAccount"
)

// subject is Capsule's rbac.UserSpec, the inline part of owners and users that names who they are.
// Service accounts are named by their full user name, system:serviceaccount:<namespace>:<name>.
type subject struct {
	Kind ownerKind `json:"kind"`
	Name string    `json:"name"`
}

// tenantFields is the part of a v1beta2 Tenant that decides who owns it, which namespaces it has, and
// which cluster-scoped objects its owners may read through the proxy.
type tenantFields struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Owners          []ownerFields      `json:"owners,omitempty"`
		NodeSelector    map[string]string  `json:"nodeSelector,omitempty"`
		StorageClasses  *allowedListFields `json:"storageClasses,omitempty"`
		PriorityClasses *allowedListFields `json:"priorityClasses,omitempty"`
		RuntimeClasses  *allowedListFields `json:"runtimeClasses,omitempty"`
		IngressOptions  struct {
			AllowedClasses *allowedListFields `json:"allowedClasses,omitempty"`
		} `json:"ingressOptions"`
	} `json:"spec"`
	Status struct {
		// Owners is what the controller resolved: spec owners, TenantOwner objects, administrators and
		// promoted service accounts.
		Owners     []subject `json:"owners,omitempty"`
		Namespaces []string  `json:"namespaces,omitempty"`
	} `json:"status"`
}

// configurationFields is the part of a v1beta2 CapsuleConfiguration that says who is a Capsule user.
type configurationFields struct {
	Spec struct {
		Users                []subject `json:"users,omitempty"`
		UserNames            []string  `json:"userNames,omitempty"`  // deprecated, still honoured by Capsule
		UserGroups           []string  `json:"userGroups,omitempty"` // deprecated, still honoured by Capsule
		IgnoreUserWithGroups []string  `json:"ignoreUserWithGroups,omitempty"`
	} `json:"spec"`
	Status struct {
		// Users is spec users plus the subjects of aggregated TenantOwner objects.
		Users []subject `json:"users,omitempty"`
	} `json:"status"`
}

// ownerFields is Capsule's OwnerSpec: a subject and what the proxy lets it do.
type ownerFields struct {
	subject       `json:",inline"`
	ProxySettings []struct {
		Kind       Kind        `json:"kind"`
		Operations []Operation `json:"operations"`
	} `json:"proxySettings,omitempty"`
}

// allowedListFields is Capsule's api.DefaultAllowedListSpec, with the label selector inlined.
type allowedListFields struct {
	Allowed          []string                          `json:"allowed,omitempty"`
	AllowedRegex     string                            `json:"allowedRegex,omitempty"`
	MatchLabels      map[string]string                 `json:"matchLabels,omitempty"`
	MatchExpressions []metav1.LabelSelectorRequirement `json:"matchExpressions,omitempty"`
	Default          string                            `json:"default,omitempty"`
}

// tenant is what the index keeps of one Tenant.
type tenant struct {
	name       string
	uid        types.UID
	rv         uint64
	generation int64               // metadata.generation: changes with the spec (selectors, owners, proxySettings)
	owners     []subject           // spec.owners and status.owners, deduplicated
	namespaces map[string]struct{} // status.namespaces

	ownerGrants      map[subject]grants // spec.owners[].proxySettings
	annotationGrants grants             // legacy enable-* annotations, for every owner
	nodes            nodeSelection
	classes          map[Kind]*allowedList
}

func decodeTenant(s *StoredTenant) (*tenant, error) {
	var f tenantFields
	// Case-sensitive, as the API server decodes: "Owners" is not "owners".
	if err := kjson.UnmarshalCaseSensitivePreserveInts(s.json, &f); err != nil {
		return nil, fmt.Errorf("decoding tenant %s: %w", s.Name, err)
	}
	t := &tenant{name: s.Name, uid: s.UID, rv: parseResourceVersion(s.ResourceVersion), generation: s.Generation, namespaces: map[string]struct{}{}}
	t.ownerGrants = map[subject]grants{}
	specOwners := make([]subject, 0, len(f.Spec.Owners))
	for _, o := range f.Spec.Owners {
		specOwners = append(specOwners, o.subject)
		for _, ps := range o.ProxySettings {
			for _, op := range ps.Operations {
				if t.ownerGrants[o.subject] == nil {
					t.ownerGrants[o.subject] = grants{}
				}
				t.ownerGrants[o.subject].add(ps.Kind, op)
			}
		}
	}
	t.annotationGrants = annotationGrants(f.Metadata.Annotations)
	if len(f.Spec.NodeSelector) > 0 {
		t.nodes.selector = labels.SelectorFromSet(f.Spec.NodeSelector)
	}
	t.classes = map[Kind]*allowedList{
		StorageClasses:  newAllowedList(f.Spec.StorageClasses),
		IngressClasses:  newAllowedList(f.Spec.IngressOptions.AllowedClasses),
		PriorityClasses: newAllowedList(f.Spec.PriorityClasses),
		RuntimeClasses:  newAllowedList(f.Spec.RuntimeClasses),
	}
	seen := map[subject]struct{}{}
	for _, o := range append(specOwners, f.Status.Owners...) {
		if _, dup := seen[o]; dup || o.Name == "" {
			continue
		}
		seen[o] = struct{}{}
		t.owners = append(t.owners, o)
	}
	for _, ns := range f.Status.Namespaces {
		t.namespaces[ns] = struct{}{}
	}
	return t, nil
}

func decodeConfiguration(u *unstructured.Unstructured) (*capsuleUsers, error) {
	var f configurationFields
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &f); err != nil {
		return nil, fmt.Errorf("decoding CapsuleConfiguration %s: %w", u.GetName(), err)
	}
	users := newCapsuleUsers()
	for _, s := range append(f.Spec.Users, f.Status.Users...) {
		users.add(s)
	}
	for _, name := range f.Spec.UserNames {
		users.add(subject{Kind: userKind, Name: name}) // add files service-account names under their kind
	}
	for _, group := range f.Spec.UserGroups {
		users.add(subject{Kind: groupKind, Name: group})
	}
	for _, group := range f.Spec.IgnoreUserWithGroups {
		users.ignoredGroups[group] = struct{}{}
	}
	return users, nil
}

// tenantReferences returns the UIDs of the Capsule Tenants that own ns through its ownerReferences. The
// Capsule controller sets them; unlike the capsule.clastix.io/tenant label, a tenant cannot write them.
func tenantReferences(meta metav1.Object) []types.UID {
	var uids []types.UID
	for _, ref := range meta.GetOwnerReferences() {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil || gv.Group != capsuleGroup || ref.Kind != tenantKind || ref.UID == "" {
			continue
		}
		uids = append(uids, ref.UID)
	}
	return uids
}
