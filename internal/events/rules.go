package events

import (
	"context"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/eventpattern"
	"github.com/berthdev/berth/internal/schedule"
	"github.com/berthdev/berth/internal/store"
)

func (s *Service) ruleARN(bus, name string) string {
	if bus == DefaultBus {
		return s.arns.Service("events", "rule/"+name)
	}
	return s.arns.Service("events", "rule/"+bus+"/"+name)
}

func errRuleNotFound(name, bus string) error {
	return errs.E(errs.NotFound, "Rule %s does not exist on EventBus %s.", name, bus)
}

// compilePattern checks a rule's or TestEventPattern's pattern with the
// matcher; a bad pattern is an InvalidEventPatternException naming why.
func compilePattern(p string) (*eventpattern.Pattern, error) {
	pat, err := eventpattern.Compile([]byte(p))
	if err != nil {
		// The matcher's message is EventBridge's ("Event pattern is not
		// valid. Reason: ... at [Source: ...]").
		msg := err.Error()
		if !strings.HasPrefix(msg, "Event pattern is not valid.") {
			msg = "Event pattern is not valid. Reason: " + msg
		}
		return nil, errs.R(errs.Invalid, reasonInvalidPattern, "%s", msg)
	}
	return pat, nil
}

// parseSchedule accepts the rate and cron expressions of EventBridge rules
// (evaluated in UTC); at() is EventBridge Scheduler's, not the rules'.
func parseSchedule(expr string) (schedule.Schedule, error) {
	if !strings.HasPrefix(expr, "rate(") && !strings.HasPrefix(expr, "cron(") {
		return nil, errs.E(errs.Invalid, "Parameter ScheduleExpression is not valid.")
	}
	sch, err := schedule.Parse(expr, time.UTC)
	if err != nil {
		return nil, errs.E(errs.Invalid, "Parameter ScheduleExpression is not valid.")
	}
	return sch, nil
}

func (s *Service) getRule(ctx context.Context, bus, name string) (ruleRecord, int64, error) {
	var r ruleRecord
	rev, err := getJSON(ctx, s.st, ruleKey(bus, name), &r)
	if err != nil {
		return r, 0, err
	}
	if rev == 0 {
		return r, 0, errRuleNotFound(name, bus)
	}
	return r, rev, nil
}

func (s *Service) PutRule(ctx context.Context, in *eventsapi.PutRuleRequest) (*eventsapi.PutRuleResponse, error) {
	bus := s.busName(in.EventBusName)
	name := *in.Name
	pattern, sched := deref(in.EventPattern), deref(in.ScheduleExpression)
	if pattern == "" && sched == "" {
		return nil, errs.E(errs.Invalid, "Parameter(s) EventPattern or ScheduleExpression must be specified.")
	}
	if pattern != "" {
		if _, err := compilePattern(pattern); err != nil {
			return nil, err
		}
	}
	if sched != "" {
		if bus != DefaultBus {
			return nil, errs.E(errs.Invalid, "ScheduleExpression is supported only on the default event bus.")
		}
		if _, err := parseSchedule(sched); err != nil {
			return nil, err
		}
	}
	if in.State != nil && *in.State == eventsapi.RuleStateEnabledWithAllCloudtrailManagementEvents {
		return nil, errs.E(errs.Invalid, "State ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS is only valid for rules that match CloudTrail events.")
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	if _, _, err := s.getBus(ctx, bus); err != nil {
		return nil, err
	}
	for {
		old, rev, err := s.getRule(ctx, bus, name)
		if err != nil && !errs.Is(err, errs.NotFound) {
			return nil, err
		}
		cmps := []store.Cmp{store.ModRevisionIs(ruleKey(bus, name), rev)}
		r := old
		if rev == 0 {
			res, err := s.st.List(ctx, rulesPrefix(bus), store.ListOptions{KeysOnly: true})
			if err != nil {
				return nil, err
			}
			if len(res.KVs) >= MaxRulesPerBus {
				return nil, errs.E(errs.LimitExceeded, "The requested resource exceeds the maximum number allowed.")
			}
			r = ruleRecord{Name: name, Bus: bus, Created: s.now().UTC(), Tags: in.Tags}
		}
		// PutRule replaces the rule's definition; what it omits is cleared,
		// the state defaults to ENABLED, and the targets stay.
		r.Pattern, r.Schedule = pattern, sched
		r.Description, r.RoleArn = deref(in.Description), deref(in.RoleArn)
		r.State = string(eventsapi.RuleStateEnabled)
		if in.State != nil {
			r.State = string(*in.State)
		}
		res, err := s.st.Txn(ctx, cmps, store.Put(ruleKey(bus, name), mustJSON(r)))
		if err != nil {
			return nil, err
		}
		if res.Succeeded {
			return &eventsapi.PutRuleResponse{RuleArn: ptr(s.ruleARN(bus, name))}, nil
		}
	}
}

func (s *Service) ruleOut(r ruleRecord) eventsapi.Rule {
	out := eventsapi.Rule{Name: ptr(r.Name), Arn: ptr(s.ruleARN(r.Bus, r.Name)), EventBusName: ptr(r.Bus),
		State: ptr(eventsapi.RuleState(r.State))}
	if r.Pattern != "" {
		out.EventPattern = ptr(r.Pattern)
	}
	if r.Schedule != "" {
		out.ScheduleExpression = ptr(r.Schedule)
	}
	if r.Description != "" {
		out.Description = ptr(r.Description)
	}
	if r.RoleArn != "" {
		out.RoleArn = ptr(r.RoleArn)
	}
	return out
}

func (s *Service) DescribeRule(ctx context.Context, in *eventsapi.DescribeRuleRequest) (*eventsapi.DescribeRuleResponse, error) {
	bus := s.busName(in.EventBusName)
	r, _, err := s.getRule(ctx, bus, *in.Name)
	if err != nil {
		return nil, err
	}
	o := s.ruleOut(r)
	return &eventsapi.DescribeRuleResponse{Name: o.Name, Arn: o.Arn, EventBusName: o.EventBusName, State: o.State,
		EventPattern: o.EventPattern, ScheduleExpression: o.ScheduleExpression, Description: o.Description,
		RoleArn: o.RoleArn, CreatedBy: ptr(s.cfg.Account)}, nil
}

func (s *Service) ListRules(ctx context.Context, in *eventsapi.ListRulesRequest) (*eventsapi.ListRulesResponse, error) {
	bus := s.busName(in.EventBusName)
	if _, _, err := s.getBus(ctx, bus); err != nil {
		return nil, err
	}
	all, _, err := listJSON[ruleRecord](ctx, s.st, rulesPrefix(bus))
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(all, func(r ruleRecord) string { return r.Name }, deref(in.NamePrefix), in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := &eventsapi.ListRulesResponse{Rules: []eventsapi.Rule{}, NextToken: next}
	for _, r := range page {
		out.Rules = append(out.Rules, s.ruleOut(r))
	}
	return out, nil
}

func (s *Service) DeleteRule(ctx context.Context, in *eventsapi.DeleteRuleRequest) (*eventsapi.DeleteRuleResponse, error) {
	bus := s.busName(in.EventBusName)
	r, rev, err := s.getRule(ctx, bus, *in.Name)
	if errs.Is(err, errs.NotFound) {
		return &eventsapi.DeleteRuleResponse{}, nil // deleting a missing rule succeeds, as on AWS
	}
	if err != nil {
		return nil, err
	}
	if len(r.Targets) > 0 {
		return nil, errs.E(errs.Invalid, "Rule can't be deleted since it has targets.")
	}
	if err := commit(ctx, s.st, []store.Cmp{store.ModRevisionIs(ruleKey(bus, r.Name), rev)},
		store.Delete(ruleKey(bus, r.Name)), store.Delete(scheduleKey(bus, r.Name)), store.DeletePrefix(deliveriesPrefix(bus, r.Name))); err != nil {
		return nil, err
	}
	return &eventsapi.DeleteRuleResponse{}, nil
}

func (s *Service) setState(ctx context.Context, busP *string, name string, state eventsapi.RuleState) error {
	bus := s.busName(busP)
	return s.updateRule(ctx, bus, name, func(r *ruleRecord) error {
		r.State = string(state)
		return nil
	})
}

// updateRule applies change to the rule in a compare-and-swap loop.
func (s *Service) updateRule(ctx context.Context, bus, name string, change func(*ruleRecord) error) error {
	for {
		r, rev, err := s.getRule(ctx, bus, name)
		if err != nil {
			return err
		}
		if err := change(&r); err != nil {
			return err
		}
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(ruleKey(bus, name), rev)}, store.Put(ruleKey(bus, name), mustJSON(r)))
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
}

func (s *Service) EnableRule(ctx context.Context, in *eventsapi.EnableRuleRequest) (*eventsapi.EnableRuleResponse, error) {
	if err := s.setState(ctx, in.EventBusName, *in.Name, eventsapi.RuleStateEnabled); err != nil {
		return nil, err
	}
	return &eventsapi.EnableRuleResponse{}, nil
}

func (s *Service) DisableRule(ctx context.Context, in *eventsapi.DisableRuleRequest) (*eventsapi.DisableRuleResponse, error) {
	if err := s.setState(ctx, in.EventBusName, *in.Name, eventsapi.RuleStateDisabled); err != nil {
		return nil, err
	}
	return &eventsapi.DisableRuleResponse{}, nil
}

func (s *Service) TestEventPattern(ctx context.Context, in *eventsapi.TestEventPatternRequest) (*eventsapi.TestEventPatternResponse, error) {
	pat, err := compilePattern(*in.EventPattern)
	if err != nil {
		return nil, err
	}
	if err := checkTestEvent([]byte(*in.Event)); err != nil {
		return nil, err
	}
	ok, err := pat.Match([]byte(*in.Event))
	if err != nil {
		return nil, errs.E(errs.Invalid, "Parameter Event is not valid.")
	}
	return &eventsapi.TestEventPatternResponse{Result: ptr(ok)}, nil
}
