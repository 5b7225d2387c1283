package elbv2

import (
	"context"
	"strings"

	"github.com/berthdev/berth/internal/api/elbv2api"
	"github.com/berthdev/berth/internal/errs"
)

const maxTags = 50

func checkTags(tags []elbv2api.Tag) error {
	seen := map[string]bool{}
	for _, t := range tags {
		k := deref(t.Key)
		if seen[k] {
			return fail(errs.Invalid, elbv2api.ErrDuplicateTagKeysException, "Tag key '%s' is duplicated", k)
		}
		seen[k] = true
		if strings.HasPrefix(k, "aws:") {
			return invalid("Tag key '%s' cannot begin with 'aws:'", k)
		}
	}
	if len(tags) > maxTags {
		return fail(errs.LimitExceeded, elbv2api.ErrTooManyTagsException, "A resource can have at most %d tags", maxTags)
	}
	return nil
}

// tagsOf returns the tags of the resource with this ARN, for change (the
// caller puts the record back with put).
func (st *state) tagsOf(a string) (tags *[]elbv2api.Tag, put func(), err error) {
	if r := st.lbs[a]; r != nil {
		return &r.Tags, func() { st.putLB(r) }, nil
	}
	if r := st.tgs[a]; r != nil {
		return &r.Tags, func() { st.putTG(r) }, nil
	}
	if r := st.listeners[a]; r != nil {
		return &r.Tags, func() { st.putListener(r) }, nil
	}
	if r := st.rules[a]; r != nil {
		return &r.Tags, func() { st.putRule(r) }, nil
	}
	switch {
	case strings.Contains(a, ":targetgroup/"):
		return nil, nil, notFound(elbv2api.ErrTargetGroupNotFoundException, "Target groups '%s' not found", a)
	case strings.Contains(a, ":listener/"):
		return nil, nil, notFound(elbv2api.ErrListenerNotFoundException, "One or more listeners not found")
	case strings.Contains(a, ":listener-rule/"):
		return nil, nil, notFound(elbv2api.ErrRuleNotFoundException, "One or more rules not found")
	}
	return nil, nil, notFound(elbv2api.ErrLoadBalancerNotFoundException, "Load balancer '%s' not found", a)
}

func (s *Service) AddTags(ctx context.Context, in *elbv2api.AddTagsInput) (*elbv2api.AddTagsOutput, error) {
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	err := s.mutate(ctx, func(st *state) error {
		for _, a := range in.ResourceArns {
			tags, put, err := st.tagsOf(a)
			if err != nil {
				return err
			}
			for _, t := range in.Tags {
				replaced := false
				for i := range *tags {
					if deref((*tags)[i].Key) == deref(t.Key) {
						(*tags)[i].Value = t.Value
						replaced = true
					}
				}
				if !replaced {
					*tags = append(*tags, t)
				}
			}
			if len(*tags) > maxTags {
				return fail(errs.LimitExceeded, elbv2api.ErrTooManyTagsException, "A resource can have at most %d tags", maxTags)
			}
			put()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.AddTagsOutput{}, nil
}

func (s *Service) RemoveTags(ctx context.Context, in *elbv2api.RemoveTagsInput) (*elbv2api.RemoveTagsOutput, error) {
	err := s.mutate(ctx, func(st *state) error {
		for _, a := range in.ResourceArns {
			tags, put, err := st.tagsOf(a)
			if err != nil {
				return err
			}
			var keep []elbv2api.Tag
			for _, t := range *tags {
				drop := false
				for _, k := range in.TagKeys {
					drop = drop || deref(t.Key) == k
				}
				if !drop {
					keep = append(keep, t)
				}
			}
			*tags = keep
			put()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &elbv2api.RemoveTagsOutput{}, nil
}

func (s *Service) DescribeTags(ctx context.Context, in *elbv2api.DescribeTagsInput) (*elbv2api.DescribeTagsOutput, error) {
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	out := &elbv2api.DescribeTagsOutput{TagDescriptions: []elbv2api.TagDescription{}}
	for _, a := range in.ResourceArns {
		tags, _, err := st.tagsOf(a)
		if err != nil {
			return nil, err
		}
		t := *tags
		if t == nil {
			t = []elbv2api.Tag{}
		}
		out.TagDescriptions = append(out.TagDescriptions, elbv2api.TagDescription{ResourceArn: ptr(a), Tags: t})
	}
	return out, nil
}
