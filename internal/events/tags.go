package events

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Tags live on rules and event buses, as on AWS.

// tagged resolves a rule or bus ARN and applies change to its tags (nil
// change: read only). It returns the tags after the change.
func (s *Service) tagged(ctx context.Context, a string, change func([]eventsapi.Tag) ([]eventsapi.Tag, error)) ([]eventsapi.Tag, error) {
	p, err := arn.Parse(a)
	if err != nil || p.Service != "events" {
		return nil, errs.E(errs.Invalid, "Provided Arn is not in correct format.")
	}
	if p.Account != s.cfg.Account || p.Region != s.cfg.Region {
		return nil, errs.E(errs.NotFound, "Resource %s does not exist.", a)
	}
	switch p.ResourceType() {
	case "rule":
		bus, name := DefaultBus, p.ResourceID()
		if b, n, ok := strings.Cut(name, "/"); ok {
			bus, name = b, n
		}
		if change == nil {
			r, _, err := s.getRule(ctx, bus, name)
			return r.Tags, err
		}
		var out []eventsapi.Tag
		err := s.updateRule(ctx, bus, name, func(r *ruleRecord) error {
			t, err := change(r.Tags)
			r.Tags, out = t, t
			return err
		})
		return out, err
	case "event-bus":
		name := p.ResourceID()
		for {
			b, rev, err := s.getBus(ctx, name)
			if err != nil || change == nil {
				return b.Tags, err
			}
			t, err := change(b.Tags)
			if err != nil {
				return nil, err
			}
			b.Tags = t
			if b.Created.IsZero() {
				b.Created = s.now().UTC()
				b.Modified = b.Created
			}
			res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(busKey(name), rev)}, store.Put(busKey(name), mustJSON(b)))
			if err != nil {
				return nil, err
			}
			if res.Succeeded {
				return t, nil
			}
		}
	}
	return nil, errs.E(errs.NotFound, "Resource %s does not exist.", a)
}

func (s *Service) TagResource(ctx context.Context, in *eventsapi.TagResourceRequest) (*eventsapi.TagResourceResponse, error) {
	_, err := s.tagged(ctx, *in.ResourceARN, func(old []eventsapi.Tag) ([]eventsapi.Tag, error) {
		out := slices.Clone(old)
		for _, t := range in.Tags {
			i := slices.IndexFunc(out, func(o eventsapi.Tag) bool { return *o.Key == *t.Key })
			if i >= 0 {
				out[i] = t
			} else {
				out = append(out, t)
			}
		}
		return out, checkTags(out)
	})
	if err != nil {
		return nil, err
	}
	return &eventsapi.TagResourceResponse{}, nil
}

func (s *Service) UntagResource(ctx context.Context, in *eventsapi.UntagResourceRequest) (*eventsapi.UntagResourceResponse, error) {
	_, err := s.tagged(ctx, *in.ResourceARN, func(old []eventsapi.Tag) ([]eventsapi.Tag, error) {
		return slices.DeleteFunc(slices.Clone(old), func(t eventsapi.Tag) bool { return slices.Contains(in.TagKeys, *t.Key) }), nil
	})
	if err != nil {
		return nil, err
	}
	return &eventsapi.UntagResourceResponse{}, nil
}

func (s *Service) ListTagsForResource(ctx context.Context, in *eventsapi.ListTagsForResourceRequest) (*eventsapi.ListTagsForResourceResponse, error) {
	t, err := s.tagged(ctx, *in.ResourceARN, nil)
	if err != nil {
		return nil, err
	}
	return &eventsapi.ListTagsForResourceResponse{Tags: append([]eventsapi.Tag{}, t...)}, nil
}
