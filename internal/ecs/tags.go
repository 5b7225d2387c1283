package ecs

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
)

// tagger reads and changes the tags of one kind of ECS resource.
type tagger interface {
	tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error)
	updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error
}

// taggerFor returns the tagger of an ECS resource ARN's type. Later
// resource kinds (services, tasks, container instances) add themselves here.
func (s *Service) taggerFor(resourceARN *string) (tagger, arn.ARN, error) {
	a, err := arn.Parse(deref(resourceARN))
	if err != nil || a.Service != "ecs" {
		return nil, arn.ARN{}, errs.R(errs.Invalid, reasonInvalidParameter, "Invalid resourceArn: %s", deref(resourceARN))
	}
	if a.Account != s.arns.Account || a.Region != s.arns.Region {
		return nil, a, errs.R(errs.NotFound, reasonResourceNotFound, "The specified resource could not be found.")
	}
	switch a.ResourceType() {
	case "cluster":
		return clusterTagger{s}, a, nil
	case "task":
		return taskTagger{s}, a, nil
	case "container-instance":
		return instanceTagger{s}, a, nil
	case "task-definition":
		return taskDefTagger{s}, a, nil
	case "service":
		return serviceTagger{s}, a, nil
	case "capacity-provider":
		return providerTagger{s}, a, nil // asgproviders.go
	}
	return nil, a, errs.R(errs.Invalid, reasonInvalidParameter, "Berth cannot tag resources of type %q yet.", a.ResourceType())
}

// validateTags applies ECS's tag rules beyond the model's lengths.
func validateTags(tags []ecsapi.Tag) error {
	if len(tags) > 50 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "The number of tags exceeds the limit of 50.")
	}
	for _, t := range tags {
		k := deref(t.Key)
		if k == "" {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Tag keys must not be empty.")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return errs.R(errs.Invalid, reasonInvalidParameter, "Tag keys with the prefix 'aws:' are reserved for AWS use.")
		}
	}
	return nil
}

// mergeTags overlays tags by key, keeping order of first appearance.
func mergeTags(cur, add []ecsapi.Tag) []ecsapi.Tag {
	out := slices.Clone(cur)
	for _, t := range add {
		i := slices.IndexFunc(out, func(c ecsapi.Tag) bool { return deref(c.Key) == deref(t.Key) })
		if i >= 0 {
			out[i] = t
		} else {
			out = append(out, t)
		}
	}
	return out
}

// TagResource adds or replaces tags on a resource.
func (s *Service) TagResource(ctx context.Context, in *ecsapi.TagResourceRequest) (*ecsapi.TagResourceResponse, error) {
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	tg, a, err := s.taggerFor(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	err = tg.updateTags(ctx, a, func(cur []ecsapi.Tag) []ecsapi.Tag {
		return mergeTags(cur, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.TagResourceResponse{}, nil
}

// UntagResource removes tags by key.
func (s *Service) UntagResource(ctx context.Context, in *ecsapi.UntagResourceRequest) (*ecsapi.UntagResourceResponse, error) {
	tg, a, err := s.taggerFor(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	err = tg.updateTags(ctx, a, func(cur []ecsapi.Tag) []ecsapi.Tag {
		return slices.DeleteFunc(slices.Clone(cur), func(t ecsapi.Tag) bool { return slices.Contains(in.TagKeys, deref(t.Key)) })
	})
	if err != nil {
		return nil, err
	}
	return &ecsapi.UntagResourceResponse{}, nil
}

// ListTagsForResource lists a resource's tags.
func (s *Service) ListTagsForResource(ctx context.Context, in *ecsapi.ListTagsForResourceRequest) (*ecsapi.ListTagsForResourceResponse, error) {
	tg, a, err := s.taggerFor(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	tags, err := tg.tags(ctx, a)
	if err != nil {
		return nil, err
	}
	if tags == nil {
		tags = []ecsapi.Tag{}
	}
	return &ecsapi.ListTagsForResourceResponse{Tags: tags}, nil
}

type clusterTagger struct{ s *Service }

func (t clusterTagger) tags(ctx context.Context, a arn.ARN) ([]ecsapi.Tag, error) {
	c, _, err := t.s.getCluster(ctx, a.ResourceID(), false)
	return c.Tags, err
}

func (t clusterTagger) updateTags(ctx context.Context, a arn.ARN, change func([]ecsapi.Tag) []ecsapi.Tag) error {
	name := a.ResourceID()
	_, err := t.s.updateCluster(ctx, &name, func(c *clusterRecord) error {
		c.Tags = change(c.Tags)
		return validateTags(c.Tags)
	})
	return err
}
