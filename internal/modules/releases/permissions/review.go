package permissions

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// reviewConcurrency bounds the SubjectAccessReviews one action sends at once.
const reviewConcurrency = 8

// Reviewer asks the API server, with the proxy's own credentials, whether a caller may do each check.
type Reviewer struct {
	reviews authorizationclient.SubjectAccessReviewInterface
}

// NewReviewer returns a Reviewer creating SubjectAccessReviews through client (the proxy's identity, which
// may create them for anyone).
func NewReviewer(client authorizationclient.SubjectAccessReviewsGetter) *Reviewer {
	return &Reviewer{reviews: client.SubjectAccessReviews()}
}

// Missing returns the checks u is not allowed, in the order given. Any failed review is an error: an
// unanswered question is never taken as a yes.
func (r *Reviewer) Missing(ctx context.Context, u user.Info, checks []Check) ([]Check, error) {
	allowed := make([]bool, len(checks))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(reviewConcurrency)
	for i, c := range checks {
		g.Go(func() error {
			ok, err := r.allowed(ctx, u, c)
			if err != nil {
				return err
			}
			allowed[i] = ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var missing []Check
	for i, c := range checks {
		if !allowed[i] {
			missing = append(missing, c)
		}
	}
	return missing, nil
}

func (r *Reviewer) allowed(ctx context.Context, u user.Info, c Check) (bool, error) {
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   u.GetName(),
		UID:    u.GetUID(),
		Groups: slices.Clone(u.GetGroups()),
		Extra:  extraOf(u),
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: c.Namespace, Verb: c.Verb, Group: c.APIGroup, Resource: c.Resource,
		},
	}}
	answer, err := r.reviews.Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("reviewing %s %s.%s in %q: %w", c.Verb, c.Resource, c.APIGroup, c.Namespace, err)
	}
	return answer.Status.Allowed && !answer.Status.Denied, nil
}

func extraOf(u user.Info) map[string]authorizationv1.ExtraValue {
	extra := u.GetExtra()
	if len(extra) == 0 {
		return nil
	}
	out := make(map[string]authorizationv1.ExtraValue, len(extra))
	for k, v := range extra {
		out[k] = slices.Clone(v)
	}
	return out
}
