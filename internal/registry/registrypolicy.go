package registry

import (
	"context"

	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/iam"
	"github.com/berthdev/berth/internal/store"
)

// The registry policy (ECR's registry-level resource policy) is kept as
// its text under one key. It is validated by package ecr
// (ParseRegistryPolicy) before it is stored.
const keyRegistryPolicy = "/registry/config/registry-policy"

// ReasonRegistryPolicyNotFound: the registry has no registry policy.
const ReasonRegistryPolicyNotFound = "registry.registry_policy_not_found"

func (r *Registry) registryPolicyNotFound() error {
	return errs.R(errs.NotFound, ReasonRegistryPolicyNotFound, "Registry policy does not exist in the registry with id '%s'", r.account)
}

// RegistryPolicy returns the registry policy's text. NotFound
// (ReasonRegistryPolicyNotFound) when there is none.
func (r *Registry) RegistryPolicy(ctx context.Context) (string, error) {
	kv, err := r.st.Get(ctx, keyRegistryPolicy)
	if errs.Is(err, errs.NotFound) {
		return "", r.registryPolicyNotFound()
	}
	if err != nil {
		return "", err
	}
	return string(kv.Value), nil
}

// PutRegistryPolicy stores the registry policy's text, replacing any.
func (r *Registry) PutRegistryPolicy(ctx context.Context, text string) error {
	_, err := r.st.Txn(ctx, nil, store.Put(keyRegistryPolicy, []byte(text)))
	return err
}

// DeleteRegistryPolicy removes the registry policy and returns the text it
// had. NotFound (ReasonRegistryPolicyNotFound) when there is none.
func (r *Registry) DeleteRegistryPolicy(ctx context.Context) (string, error) {
	for {
		kv, err := r.st.Get(ctx, keyRegistryPolicy)
		if errs.Is(err, errs.NotFound) {
			return "", r.registryPolicyNotFound()
		}
		if err != nil {
			return "", err
		}
		res, err := r.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(keyRegistryPolicy, kv.ModRevision)}, store.Delete(keyRegistryPolicy))
		if err != nil {
			return "", err
		}
		if res.Succeeded {
			return string(kv.Value), nil
		}
	}
}

// AuthorizeCreateRepository checks the registry policy for an explicit
// Deny of ecr:CreateRepository to id on the repository to create (an
// explicit Deny in a resource-based policy applies to every principal;
// Berth's principals need no Allow, as for repository policies). The error
// is Forbidden with ReasonDenied.
func (r *Registry) AuthorizeCreateRepository(ctx context.Context, id iam.Identity, name string) error {
	text, err := r.RegistryPolicy(ctx)
	if errs.ReasonOf(err) == ReasonRegistryPolicyNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	p, err := ParseRegistryPolicy(text)
	if err != nil {
		return err
	}
	res := r.repositoryARN(name)
	if d := p.EvaluateOn(id, "ecr:CreateRepository", res); d.Denied {
		who := id.ARN
		if who == "" {
			who = "anonymous"
		}
		return errs.R(errs.Forbidden, ReasonDenied, "User: %s is not authorized to perform: ecr:CreateRepository on resource: %s with an explicit deny in a resource-based policy", who, res)
	}
	return nil
}
