package elbv2

import (
	"context"
	"strconv"

	"github.com/berthdev/berth/internal/alb"
	"github.com/berthdev/berth/internal/api/elbv2api"
)

// AWS's wording for the states the API itself decides.
const (
	descNotRegistered = "Target is not registered to the target group"
	descNotInUse      = "Target group is not configured to receive traffic from the load balancer"
	descRegistering   = "Target registration is in progress"
	descHCDisabled    = "Health checks are disabled"
)

// DescribeTargetHealth answers the health of a group's targets (or of the
// targets named) as the data plane sees it: registered targets of a group
// no load balancer uses are unused, targets being drained after their
// deregistration are draining, targets not registered are unused.
func (s *Service) DescribeTargetHealth(ctx context.Context, in *elbv2api.DescribeTargetHealthInput) (*elbv2api.DescribeTargetHealthOutput, error) {
	st, err := loadState(ctx, s.st)
	if err != nil {
		return nil, err
	}
	tg, err := st.tg(deref(in.TargetGroupArn))
	if err != nil {
		return nil, err
	}
	type key struct {
		id   string
		port int32
	}
	plane := map[key]alb.TargetHealth{}
	if s.plane != nil {
		for _, h := range s.plane.TargetHealth(*tg.TG.TargetGroupArn) {
			plane[key{h.ID, int32(h.Port)}] = h
		}
	}
	registered := map[key]bool{}
	for _, t := range tg.Targets {
		registered[key{t.ID, t.Port}] = true
	}
	var want []key
	if len(in.Targets) > 0 {
		for _, t := range in.Targets {
			k := key{deref(t.Id), deref(tg.TG.Port)}
			if t.Port != nil {
				k.port = *t.Port
			}
			want = append(want, k)
		}
	} else {
		for _, t := range tg.Targets {
			want = append(want, key{t.ID, t.Port})
		}
		// Deregistered targets still draining are described too.
		for k, h := range plane {
			if !registered[k] && h.State == string(elbv2api.TargetHealthStateEnumDraining) {
				want = append(want, k)
			}
		}
	}
	inUse := len(st.tgLoadBalancers(*tg.TG.TargetGroupArn)) > 0
	out := &elbv2api.DescribeTargetHealthOutput{TargetHealthDescriptions: []elbv2api.TargetHealthDescription{}}
	for _, k := range want {
		state, reason, desc := "", "", ""
		h, seen := plane[k]
		switch {
		case !registered[k] && seen && h.State == string(elbv2api.TargetHealthStateEnumDraining):
			state, reason, desc = h.State, h.Reason, h.Description
		case !registered[k]:
			state, reason, desc = "unused", "Target.NotRegistered", descNotRegistered
		case !inUse:
			state, reason, desc = "unused", "Target.NotInUse", descNotInUse
		case !deref(tg.TG.HealthCheckEnabled):
			state, reason, desc = "unavailable", "Target.HealthCheckDisabled", descHCDisabled
		case seen:
			state, reason, desc = h.State, h.Reason, h.Description
		default:
			state, reason, desc = "initial", "Elb.RegistrationInProgress", descRegistering
		}
		hp := deref(tg.TG.HealthCheckPort)
		if hp == healthTrafficPort {
			hp = strconv.Itoa(int(k.port))
		}
		th := &elbv2api.TargetHealth{State: ptr(elbv2api.TargetHealthStateEnum(state))}
		if reason != "" {
			th.Reason = ptr(elbv2api.TargetHealthReasonEnum(reason))
			th.Description = ptr(desc)
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, elbv2api.TargetHealthDescription{
			Target:          &elbv2api.TargetDescription{Id: ptr(k.id), Port: ptr(k.port)},
			HealthCheckPort: ptr(hp),
			TargetHealth:    th,
		})
	}
	return out, nil
}
