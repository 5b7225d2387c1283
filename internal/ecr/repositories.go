package ecr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/lazyre"
	"github.com/berthdev/berth/internal/registry"
)

const maxTags = 50

func checkTags(tags []ecrapi.Tag) ([]registry.ResourceTag, error) {
	var out []registry.ResourceTag
	for _, t := range tags {
		k := deref(t.Key)
		if k == "" || strings.HasPrefix(k, "aws:") {
			return nil, errs.R(errs.Invalid, reasonInvalidTagParam, "Invalid tag key %q", k)
		}
		out = append(out, registry.ResourceTag{Key: k, Value: deref(t.Value)})
	}
	return out, nil
}

func mergeTags(cur, add []registry.ResourceTag) ([]registry.ResourceTag, error) {
	for _, a := range add {
		found := false
		for i := range cur {
			if cur[i].Key == a.Key {
				cur[i].Value, found = a.Value, true
			}
		}
		if !found {
			cur = append(cur, a)
		}
	}
	if len(cur) > maxTags {
		return nil, errs.R(errs.LimitExceeded, reasonTooManyTags, "A repository can have at most %d tags", maxTags)
	}
	return cur, nil
}

// maxExclusionFilters is ECR's limit on imageTagMutabilityExclusionFilters.
const maxExclusionFilters = 5

var exclusionFilterRE = lazyre.New(`^[0-9a-zA-Z._*-]{1,128}$`)

func invalidParam(member, constraint string) error {
	return errs.R(errs.Invalid, reasonInvalidParameter, "Invalid parameter at '%s' failed to satisfy constraint: '%s'", member, constraint)
}

// checkMutability validates a tag mutability with its exclusion filters as
// ECR does: the filters come with, and only with, a *_WITH_EXCLUSION
// mutability; 1 to 5 WILDCARD filters of [0-9a-zA-Z._*-]{1,128}.
func checkMutability(m ecrapi.ImageTagMutability, filters []ecrapi.ImageTagMutabilityExclusionFilter) (string, []string, error) {
	var mut string
	switch m {
	case "", ecrapi.ImageTagMutabilityMutable:
		mut = registry.Mutable
	case ecrapi.ImageTagMutabilityImmutable:
		mut = registry.Immutable
	case ecrapi.ImageTagMutabilityMutableWithExclusion:
		mut = registry.MutableWithExclusion
	case ecrapi.ImageTagMutabilityImmutableWithExclusion:
		mut = registry.ImmutableWithExclusion
	default:
		return "", nil, invalidParam("imageTagMutability", "Member must satisfy enum value set: [IMMUTABLE, MUTABLE, MUTABLE_WITH_EXCLUSION, IMMUTABLE_WITH_EXCLUSION]")
	}
	withExclusion := mut == registry.MutableWithExclusion || mut == registry.ImmutableWithExclusion
	if withExclusion != (len(filters) > 0) {
		shown := string(m)
		if shown == "" {
			shown = registry.Mutable
		}
		if withExclusion {
			return "", nil, invalidParam("imageTagMutabilityExclusionFilters", "ImageTagMutabilityExclusionFilters can't be null when imageTagMutability is set as "+shown)
		}
		return "", nil, invalidParam("imageTagMutabilityExclusionFilters", "ImageTagMutabilityExclusionFilters must be null when imageTagMutability is set as "+shown)
	}
	if len(filters) > maxExclusionFilters {
		return "", nil, invalidParam("imageTagMutabilityExclusionFilters", "Member must have length less than or equal to 5")
	}
	var out []string
	for _, f := range filters {
		if t := deref(f.FilterType); t != ecrapi.ImageTagMutabilityExclusionFilterTypeWildcard {
			return "", nil, invalidParam("imageTagMutabilityExclusionFilters", fmt.Sprintf("Invalid value for 'filterType' in mutability exclusion filter: %s", t))
		}
		v := deref(f.Filter)
		if !exclusionFilterRE.MatchString(v) {
			return "", nil, invalidParam("imageTagMutabilityExclusionFilters", fmt.Sprintf("Invalid value for 'filter' in mutability exclusion filter: %s: must satisfy regular expression '%s'", v, exclusionFilterRE))
		}
		out = append(out, v)
	}
	return mut, out, nil
}

func wireExclusions(filters []string) []ecrapi.ImageTagMutabilityExclusionFilter {
	var out []ecrapi.ImageTagMutabilityExclusionFilter
	for _, f := range filters {
		t := ecrapi.ImageTagMutabilityExclusionFilterTypeWildcard
		out = append(out, ecrapi.ImageTagMutabilityExclusionFilter{Filter: ptr(f), FilterType: &t})
	}
	return out
}

// managedKMSKey is the ARN Berth reports for the AWS managed key aws/ecr of
// its account and region (ECR reports the managed key's ARN for a KMS
// repository created without a key). Berth has no KMS: the id is derived
// from the account and region, so it is the same for every repository,
// as the managed key is.
func (s *Service) managedKMSKey() string {
	h := sha256.Sum256([]byte("aws/ecr\x00" + s.cfg.Account + "\x00" + s.cfg.Region))
	h[6] = h[6]&0x0f | 0x40 // version 4 layout, as KMS key ids are
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	id := x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
	return s.arns.Service("kms", "key/"+id)
}

// CreateRepository creates a repository with its settings.
func (s *Service) CreateRepository(ctx context.Context, in *ecrapi.CreateRepositoryRequest) (*ecrapi.CreateRepositoryResponse, error) {
	mut, excl, err := checkMutability(deref(in.ImageTagMutability), in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	tags, err := checkTags(in.Tags)
	if err != nil {
		return nil, err
	}
	if tags, err = mergeTags(nil, tags); err != nil {
		return nil, err
	}
	r := registry.Repository{Name: deref(in.RepositoryName), TagMutability: mut, TagMutabilityExclusions: excl, Tags: tags}
	if in.ImageScanningConfiguration != nil {
		r.ScanOnPush = deref(in.ImageScanningConfiguration.ScanOnPush)
	}
	if ec := in.EncryptionConfiguration; ec != nil {
		r.EncryptionType = string(deref(ec.EncryptionType))
		r.KMSKey = deref(ec.KmsKey)
		if r.EncryptionType == "AES256" && r.KMSKey != "" {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "A KMS key may only be given with encryptionType KMS")
		}
		if r.EncryptionType == string(ecrapi.EncryptionTypeKms) && r.KMSKey == "" {
			r.KMSKey = s.managedKMSKey()
		}
	}
	if err := s.authorizeCreate(ctx, r.Name); err != nil {
		return nil, err
	}
	out, err := s.reg.CreateRepository(ctx, r)
	if err != nil {
		return nil, err
	}
	return &ecrapi.CreateRepositoryResponse{Repository: s.wireRepo(out)}, nil
}

// DescribeRepositories lists repositories, or describes the named ones.
func (s *Service) DescribeRepositories(ctx context.Context, in *ecrapi.DescribeRepositoriesRequest) (*ecrapi.DescribeRepositoriesResponse, error) {
	out := &ecrapi.DescribeRepositoriesResponse{Repositories: []ecrapi.Repository{}}
	if len(in.RepositoryNames) > 0 {
		if in.NextToken != nil || in.MaxResults != nil {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "maxResults and nextToken cannot be used with repositoryNames")
		}
		for _, n := range in.RepositoryNames {
			r, err := s.reg.Repository(ctx, n)
			if err != nil {
				return nil, err
			}
			out.Repositories = append(out.Repositories, *s.wireRepo(r))
		}
		return out, nil
	}
	limit := 100
	if in.MaxResults != nil {
		limit = int(*in.MaxResults)
	}
	after := ""
	if in.NextToken != nil {
		if err := awsproto.DecodeToken(*in.NextToken, &after); err != nil {
			return nil, err
		}
	}
	repos, more, err := s.reg.Repositories(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	for _, r := range repos {
		out.Repositories = append(out.Repositories, *s.wireRepo(r))
	}
	if more && len(repos) > 0 {
		out.NextToken = ptr(awsproto.EncodeToken(repos[len(repos)-1].Name))
	}
	return out, nil
}

// DeleteRepository deletes a repository; with force, its images too.
func (s *Service) DeleteRepository(ctx context.Context, in *ecrapi.DeleteRepositoryRequest) (*ecrapi.DeleteRepositoryResponse, error) {
	r, err := s.reg.DeleteRepository(ctx, deref(in.RepositoryName), deref(in.Force))
	if err != nil {
		return nil, err
	}
	return &ecrapi.DeleteRepositoryResponse{Repository: s.wireRepo(r)}, nil
}

// PutImageTagMutability sets a repository's tag mutability.
func (s *Service) PutImageTagMutability(ctx context.Context, in *ecrapi.PutImageTagMutabilityRequest) (*ecrapi.PutImageTagMutabilityResponse, error) {
	mut, excl, err := checkMutability(deref(in.ImageTagMutability), in.ImageTagMutabilityExclusionFilters)
	if err != nil {
		return nil, err
	}
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error {
		r.TagMutability, r.TagMutabilityExclusions = mut, excl
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := ecrapi.ImageTagMutability(r.TagMutability)
	return &ecrapi.PutImageTagMutabilityResponse{ImageTagMutability: &m, ImageTagMutabilityExclusionFilters: wireExclusions(r.TagMutabilityExclusions),
		RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

// PutImageScanningConfiguration stores scan-on-push (no scanner runs yet).
func (s *Service) PutImageScanningConfiguration(ctx context.Context, in *ecrapi.PutImageScanningConfigurationRequest) (*ecrapi.PutImageScanningConfigurationResponse, error) {
	scan := deref(in.ImageScanningConfiguration.ScanOnPush)
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error { r.ScanOnPush = scan; return nil })
	if err != nil {
		return nil, err
	}
	return &ecrapi.PutImageScanningConfigurationResponse{ImageScanningConfiguration: &ecrapi.ImageScanningConfiguration{ScanOnPush: ptr(r.ScanOnPush)},
		RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

// ---- repository policies (validated here, enforced by the authorized wrapper and the /v2/ handler) ----

// SetRepositoryPolicy stores a repository policy.
func (s *Service) SetRepositoryPolicy(ctx context.Context, in *ecrapi.SetRepositoryPolicyRequest) (*ecrapi.SetRepositoryPolicyResponse, error) {
	text := deref(in.PolicyText)
	pol, err := registry.ParseRepositoryPolicy(text)
	if err != nil {
		// ECR's message does not say what is wrong; the log does.
		s.log.InfoContext(ctx, "repository policy refused", "repository", deref(in.RepositoryName), "error", err.Error())
		return nil, err
	}
	// ECR's lock-out guard: a policy that would deny the caller setting
	// another one needs force.
	if !deref(in.Force) && pol.Evaluate(awsproto.CallFrom(ctx).Identity, "ecr:SetRepositoryPolicy").Denied {
		return nil, errs.R(errs.Invalid, registry.ReasonPolicyInvalid, "%s: the policy would prevent you from setting another policy on this repository; set force to set it anyway",
			registry.InvalidPolicyMessage)
	}
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error { r.Policy = text; return nil })
	if err != nil {
		return nil, err
	}
	return &ecrapi.SetRepositoryPolicyResponse{PolicyText: ptr(r.Policy), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

func (s *Service) policyNotFound(name string) error {
	return errs.R(errs.NotFound, registry.ReasonPolicyNotFound, "Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", name, s.cfg.Account)
}

// GetRepositoryPolicy returns a repository policy.
func (s *Service) GetRepositoryPolicy(ctx context.Context, in *ecrapi.GetRepositoryPolicyRequest) (*ecrapi.GetRepositoryPolicyResponse, error) {
	r, err := s.reg.Repository(ctx, deref(in.RepositoryName))
	if err != nil {
		return nil, err
	}
	if r.Policy == "" {
		return nil, s.policyNotFound(r.Name)
	}
	return &ecrapi.GetRepositoryPolicyResponse{PolicyText: ptr(r.Policy), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

// DeleteRepositoryPolicy removes a repository policy.
func (s *Service) DeleteRepositoryPolicy(ctx context.Context, in *ecrapi.DeleteRepositoryPolicyRequest) (*ecrapi.DeleteRepositoryPolicyResponse, error) {
	var old string
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error {
		if r.Policy == "" {
			return s.policyNotFound(r.Name)
		}
		old, r.Policy = r.Policy, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecrapi.DeleteRepositoryPolicyResponse{PolicyText: ptr(old), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

// ---- tags ----

func (s *Service) repoFromARN(a string) (string, error) {
	p, err := arn.Parse(a)
	if err != nil || p.Service != "ecr" || !strings.HasPrefix(p.Resource, "repository/") {
		return "", errs.R(errs.Invalid, reasonInvalidParameter, "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN'")
	}
	return strings.TrimPrefix(p.Resource, "repository/"), nil
}

// TagResource adds or replaces tags on a repository.
func (s *Service) TagResource(ctx context.Context, in *ecrapi.TagResourceRequest) (*ecrapi.TagResourceResponse, error) {
	name, err := s.repoFromARN(deref(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	add, err := checkTags(in.Tags)
	if err != nil {
		return nil, err
	}
	_, err = s.reg.UpdateRepository(ctx, name, func(r *registry.Repository) error {
		t, err := mergeTags(r.Tags, add)
		r.Tags = t
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ecrapi.TagResourceResponse{}, nil
}

// UntagResource removes tags from a repository.
func (s *Service) UntagResource(ctx context.Context, in *ecrapi.UntagResourceRequest) (*ecrapi.UntagResourceResponse, error) {
	name, err := s.repoFromARN(deref(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	drop := map[string]bool{}
	for _, k := range in.TagKeys {
		drop[k] = true
	}
	_, err = s.reg.UpdateRepository(ctx, name, func(r *registry.Repository) error {
		var keep []registry.ResourceTag
		for _, t := range r.Tags {
			if !drop[t.Key] {
				keep = append(keep, t)
			}
		}
		r.Tags = keep
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecrapi.UntagResourceResponse{}, nil
}

// ListTagsForResource lists a repository's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ecrapi.ListTagsForResourceRequest) (*ecrapi.ListTagsForResourceResponse, error) {
	name, err := s.repoFromARN(deref(in.ResourceArn))
	if err != nil {
		return nil, err
	}
	r, err := s.reg.Repository(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &ecrapi.ListTagsForResourceResponse{Tags: []ecrapi.Tag{}}
	for _, t := range r.Tags {
		out.Tags = append(out.Tags, ecrapi.Tag{Key: ptr(t.Key), Value: ptr(t.Value)})
	}
	return out, nil
}

// ---- lifecycle policies ----

// PutLifecyclePolicy validates and stores a lifecycle policy.
func (s *Service) PutLifecyclePolicy(ctx context.Context, in *ecrapi.PutLifecyclePolicyRequest) (*ecrapi.PutLifecyclePolicyResponse, error) {
	text := deref(in.LifecyclePolicyText)
	if _, err := registry.ParseLifecyclePolicy(text); err != nil {
		return nil, err
	}
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error { r.LifecyclePolicy = text; return nil })
	if err != nil {
		return nil, err
	}
	return &ecrapi.PutLifecyclePolicyResponse{LifecyclePolicyText: ptr(text), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

func (s *Service) lifecycleNotFound(name string) error {
	return errs.R(errs.NotFound, registry.ReasonLifecycleNotFound, "Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", name, s.cfg.Account)
}

// GetLifecyclePolicy returns a repository's lifecycle policy.
func (s *Service) GetLifecyclePolicy(ctx context.Context, in *ecrapi.GetLifecyclePolicyRequest) (*ecrapi.GetLifecyclePolicyResponse, error) {
	r, err := s.reg.Repository(ctx, deref(in.RepositoryName))
	if err != nil {
		return nil, err
	}
	if r.LifecyclePolicy == "" {
		return nil, s.lifecycleNotFound(r.Name)
	}
	return &ecrapi.GetLifecyclePolicyResponse{LifecyclePolicyText: ptr(r.LifecyclePolicy), LastEvaluatedAt: awsproto.NewTime(r.LifecycleEvaluatedAt),
		RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

// DeleteLifecyclePolicy removes a repository's lifecycle policy.
func (s *Service) DeleteLifecyclePolicy(ctx context.Context, in *ecrapi.DeleteLifecyclePolicyRequest) (*ecrapi.DeleteLifecyclePolicyResponse, error) {
	var old registry.Repository
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error {
		if r.LifecyclePolicy == "" {
			return s.lifecycleNotFound(r.Name)
		}
		old = *r
		r.LifecyclePolicy = ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ecrapi.DeleteLifecyclePolicyResponse{LifecyclePolicyText: ptr(old.LifecyclePolicy), LastEvaluatedAt: awsproto.NewTime(old.LifecycleEvaluatedAt),
		RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name)}, nil
}

// StartLifecyclePolicyPreview records the policy to preview; the preview
// is computed (synchronously) by GetLifecyclePolicyPreview.
func (s *Service) StartLifecyclePolicyPreview(ctx context.Context, in *ecrapi.StartLifecyclePolicyPreviewRequest) (*ecrapi.StartLifecyclePolicyPreviewResponse, error) {
	text := deref(in.LifecyclePolicyText)
	r, err := s.reg.UpdateRepository(ctx, deref(in.RepositoryName), func(r *registry.Repository) error {
		if text == "" {
			text = r.LifecyclePolicy
		}
		if text == "" {
			return s.lifecycleNotFound(r.Name)
		}
		if _, err := registry.ParseLifecyclePolicy(text); err != nil {
			return err
		}
		r.PreviewPolicy = text
		return nil
	})
	if err != nil {
		return nil, err
	}
	st := ecrapi.LifecyclePolicyPreviewStatusInProgress
	return &ecrapi.StartLifecyclePolicyPreviewResponse{LifecyclePolicyText: ptr(text), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name), Status: &st}, nil
}

// GetLifecyclePolicyPreview evaluates the previewed policy now.
func (s *Service) GetLifecyclePolicyPreview(ctx context.Context, in *ecrapi.GetLifecyclePolicyPreviewRequest) (*ecrapi.GetLifecyclePolicyPreviewResponse, error) {
	r, err := s.reg.Repository(ctx, deref(in.RepositoryName))
	if err != nil {
		return nil, err
	}
	if r.PreviewPolicy == "" {
		return nil, errs.R(errs.NotFound, registry.ReasonPreviewNotFound, "There is no dry run for the repository with name '%s' in the registry with id '%s'", r.Name, s.cfg.Account)
	}
	res, err := s.reg.PreviewLifecycle(ctx, r.Name, r.PreviewPolicy)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range in.ImageIds {
		want[deref(id.ImageDigest)] = true
	}
	st := ecrapi.LifecyclePolicyPreviewStatusComplete
	out := &ecrapi.GetLifecyclePolicyPreviewResponse{LifecyclePolicyText: ptr(r.PreviewPolicy), RegistryId: ptr(s.cfg.Account), RepositoryName: ptr(r.Name),
		Status: &st, PreviewResults: []ecrapi.LifecyclePolicyPreviewResult{}}
	tagFilter := ecrapi.TagStatus("")
	if in.Filter != nil {
		tagFilter = deref(in.Filter.TagStatus)
	}
	for _, x := range res {
		if len(want) > 0 && !want[string(x.Digest)] {
			continue
		}
		if tagFilter == ecrapi.TagStatusTagged && len(x.Tags) == 0 || tagFilter == ecrapi.TagStatusUntagged && len(x.Tags) > 0 {
			continue
		}
		act := ecrapi.ImageActionTypeExpire
		out.PreviewResults = append(out.PreviewResults, ecrapi.LifecyclePolicyPreviewResult{
			Action: &ecrapi.LifecyclePolicyRuleAction{Type: &act}, AppliedRulePriority: ptr(int32(x.RulePriority)),
			ImageDigest: ptr(string(x.Digest)), ImagePushedAt: awsproto.NewTime(x.PushedAt), ImageTags: x.Tags,
		})
	}
	out.Summary = &ecrapi.LifecyclePolicyPreviewSummary{ExpiringImageTotalCount: ptr(int32(len(out.PreviewResults)))}
	return out, nil
}
