package events

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
)

// Target kinds Berth delivers to; every other kind is accepted, stored and
// reported as not deliverable when an event is due (docs/events.md).
const (
	kindECS         = "ecs"
	kindLogs        = "logs"
	kindDestination = "api-destination"
	kindBus         = "event-bus"
	kindUnsupported = "unsupported"
)

// targetKind classifies a target ARN.
func targetKind(a string) string {
	p, err := arn.Parse(a)
	if err != nil {
		return kindUnsupported
	}
	switch {
	case p.Service == "ecs" && p.ResourceType() == "cluster":
		return kindECS
	case p.Service == "logs" && p.ResourceType() == "log-group":
		return kindLogs
	case p.Service == "events" && p.ResourceType() == "api-destination":
		return kindDestination
	case p.Service == "events" && p.ResourceType() == "event-bus":
		return kindBus
	}
	return kindUnsupported
}

var placeholderRE = regexp.MustCompile(`<([^<>\s]+)>`)

// checkTarget validates one target as PutTargets does.
func checkTarget(t *eventsapi.Target) error {
	id := *t.Id
	if _, err := arn.Parse(*t.Arn); err != nil {
		return errs.E(errs.Invalid, "Provided Arn is not in correct format.")
	}
	n := 0
	for _, set := range []bool{t.Input != nil, t.InputPath != nil, t.InputTransformer != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errs.E(errs.Invalid, "Only one of Input, InputPath, or InputTransformer must be provided for target %s.", id)
	}
	if t.Input != nil && !json.Valid([]byte(*t.Input)) {
		return errs.E(errs.Invalid, "Input is not valid JSON text for target %s.", id)
	}
	if t.InputPath != nil {
		if _, err := parsePath(*t.InputPath); err != nil {
			return errs.E(errs.Invalid, "InputPath for target %s is invalid.", id)
		}
	}
	if tr := t.InputTransformer; tr != nil {
		if len(tr.InputPathsMap) > 100 {
			return errs.E(errs.Invalid, "InputPathsMap for target %s has more than 100 entries.", id)
		}
		for k, p := range tr.InputPathsMap {
			if strings.HasPrefix(k, "aws.") {
				return errs.E(errs.Invalid, "InputTransformer for target %s uses the reserved key %s.", id, k)
			}
			if _, err := parsePath(p); err != nil {
				return errs.E(errs.Invalid, "InputPath %s for key %s of target %s is invalid.", p, k, id)
			}
		}
		for _, m := range placeholderRE.FindAllStringSubmatch(*tr.InputTemplate, -1) {
			if _, ok := tr.InputPathsMap[m[1]]; !ok && !strings.HasPrefix(m[1], "aws.events.") {
				return errs.E(errs.Invalid, "InputTemplate for target %s contains invalid placeholder %s.", id, m[1])
			}
		}
	}
	switch targetKind(*t.Arn) {
	case kindECS:
		if t.EcsParameters == nil {
			return errs.E(errs.Invalid, "Parameter(s) EcsParameters must be specified for target: %s.", id)
		}
		if t.RoleArn == nil {
			return errs.E(errs.Invalid, "Parameter(s) RoleArn must be specified for target: %s.", id)
		}
		if c := t.EcsParameters.TaskCount; c != nil && (*c < 1 || *c > 10) {
			return errs.E(errs.Invalid, "TaskCount must be between 1 and 10 for target: %s.", id)
		}
	case kindDestination:
		if t.RoleArn == nil {
			return errs.E(errs.Invalid, "Parameter(s) RoleArn must be specified for target: %s.", id)
		}
	}
	return nil
}

func (s *Service) PutTargets(ctx context.Context, in *eventsapi.PutTargetsRequest) (*eventsapi.PutTargetsResponse, error) {
	bus := s.busName(in.EventBusName)
	seen := map[string]bool{}
	for i := range in.Targets {
		if err := checkTarget(&in.Targets[i]); err != nil {
			return nil, err
		}
		if seen[*in.Targets[i].Id] {
			return nil, errs.E(errs.Invalid, "Target ids must be unique within a request.")
		}
		seen[*in.Targets[i].Id] = true
	}
	err := s.updateRule(ctx, bus, *in.Rule, func(r *ruleRecord) error {
		next := append([]eventsapi.Target(nil), r.Targets...)
		for _, t := range in.Targets {
			replaced := false
			for i := range next {
				if *next[i].Id == *t.Id {
					next[i], replaced = t, true
				}
			}
			if !replaced {
				next = append(next, t)
			}
		}
		if len(next) > MaxTargetsPerRule {
			return errs.E(errs.LimitExceeded, "The requested resource exceeds the maximum number allowed.")
		}
		r.Targets = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &eventsapi.PutTargetsResponse{FailedEntryCount: ptr(int32(0)), FailedEntries: []eventsapi.PutTargetsResultEntry{}}, nil
}

func (s *Service) RemoveTargets(ctx context.Context, in *eventsapi.RemoveTargetsRequest) (*eventsapi.RemoveTargetsResponse, error) {
	bus := s.busName(in.EventBusName)
	var failed []eventsapi.RemoveTargetsResultEntry
	err := s.updateRule(ctx, bus, *in.Rule, func(r *ruleRecord) error {
		failed = failed[:0]
		keep := r.Targets[:0:0]
		remove := map[string]bool{}
		for _, id := range in.Ids {
			remove[id] = true
		}
		for _, t := range r.Targets {
			if remove[*t.Id] {
				continue
			}
			keep = append(keep, t)
		}
		// An id the rule does not have is not an error on AWS either: it
		// is simply not there afterwards.
		r.Targets = keep
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &eventsapi.RemoveTargetsResponse{FailedEntryCount: ptr(int32(len(failed))), FailedEntries: append([]eventsapi.RemoveTargetsResultEntry{}, failed...)}, nil
}

func (s *Service) ListTargetsByRule(ctx context.Context, in *eventsapi.ListTargetsByRuleRequest) (*eventsapi.ListTargetsByRuleResponse, error) {
	bus := s.busName(in.EventBusName)
	r, _, err := s.getRule(ctx, bus, *in.Rule)
	if err != nil {
		return nil, err
	}
	// Targets keep the order they were added in; the token is an index.
	start := 0
	if in.NextToken != nil {
		var pos struct {
			I int `json:"i"`
		}
		if err := decodeToken(*in.NextToken, &pos); err != nil {
			return nil, err
		}
		start = min(pos.I, len(r.Targets))
	}
	n := int(deref(in.Limit))
	if n <= 0 {
		n = 100
	}
	end := min(start+n, len(r.Targets))
	out := &eventsapi.ListTargetsByRuleResponse{Targets: append([]eventsapi.Target{}, r.Targets[start:end]...)}
	if end < len(r.Targets) {
		out.NextToken = ptr(encodeToken(struct {
			I int `json:"i"`
		}{end}))
	}
	return out, nil
}

func (s *Service) ListRuleNamesByTarget(ctx context.Context, in *eventsapi.ListRuleNamesByTargetRequest) (*eventsapi.ListRuleNamesByTargetResponse, error) {
	bus := s.busName(in.EventBusName)
	all, _, err := listJSON[ruleRecord](ctx, s.st, rulesPrefix(bus))
	if err != nil {
		return nil, err
	}
	var hits []ruleRecord
	for _, r := range all {
		for _, t := range r.Targets {
			if *t.Arn == *in.TargetArn {
				hits = append(hits, r)
				break
			}
		}
	}
	page, next, err := paginate(hits, func(r ruleRecord) string { return r.Name }, "", in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := &eventsapi.ListRuleNamesByTargetResponse{RuleNames: []string{}, NextToken: next}
	for _, r := range page {
		out.RuleNames = append(out.RuleNames, r.Name)
	}
	return out, nil
}
