package audit

import (
	"fmt"
	"net/http"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	apiserveraudit "k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	apirequest "k8s.io/apiserver/pkg/endpoints/request"
)

// Policy decides which requests get a record, with the API server's own audit policy format and rule
// evaluation (--audit-policy-file): a request whose first matching rule has level None is not recorded.
// The proxy's record has a single shape, so the other levels only mean "record".
type Policy struct {
	evaluator apiserveraudit.PolicyRuleEvaluator
}

// LoadPolicy reads an audit.k8s.io Policy file; an empty path records everything.
func LoadPolicy(path string) (*Policy, error) {
	if path == "" {
		return nil, nil
	}
	p, err := policy.LoadPolicyFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading --audit-policy-file: %w", err)
	}
	return &Policy{evaluator: policy.NewPolicyRuleEvaluator(p)}, nil
}

// Records reports whether a request by u, parsed as info, is recorded. A nil Policy records everything.
func (p *Policy) Records(u user.Info, info *apirequest.RequestInfo, r *http.Request) bool {
	if p == nil {
		return true
	}
	attrs := authorizer.AttributesRecord{User: u, Path: r.URL.Path}
	if info != nil {
		attrs.Verb, attrs.ResourceRequest = info.Verb, info.IsResourceRequest
		attrs.Namespace, attrs.APIGroup, attrs.APIVersion = info.Namespace, info.APIGroup, info.APIVersion
		attrs.Resource, attrs.Subresource, attrs.Name = info.Resource, info.Subresource, info.Name
	}
	return p.evaluator.EvaluatePolicyRule(attrs).Level != auditinternal.LevelNone
}
