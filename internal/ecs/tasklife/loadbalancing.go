package tasklife

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
)

// What ECS's handlers and its service controller need of ELBv2, and the
// pure rules that tie a service's tasks to its target groups
// (docs/services.md, "Load balancers").

// LoadBalancing is what ECS needs of ELBv2.
type LoadBalancing interface {
	// TargetGroup describes a target group for a service's
	// loadBalancers; NotFound when there is none with that ARN.
	TargetGroup(ctx context.Context, arn string) (TargetGroupInfo, error)
	// TargetStates gives, per target group ARN asked for, the state of each
	// target ("<id>:<port>") as the data plane serving it last recorded:
	// healthy, unhealthy (with the reason), initial, unused, unavailable.
	TargetStates(ctx context.Context, targetGroupARNs []string) (map[string]map[string]TargetState, error)
}

// TargetGroupInfo is what service validation and the drain gate need to
// know of a target group.
type TargetGroupInfo struct {
	ARN        string
	TargetType string // instance | ip
	// LoadBalancers are the ARNs of the load balancers forwarding to it.
	LoadBalancers []string
	// DeregistrationDelay is deregistration_delay.timeout_seconds.
	DeregistrationDelay time.Duration
}

// TargetState is one target's health as the data plane saw it.
type TargetState struct {
	State  string `json:"s"`
	Reason string `json:"r,omitempty"`
}

// TargetGroupARNs lists the distinct target groups of loadBalancers.
func TargetGroupARNs(lbs []ecsapi.LoadBalancer) []string {
	var out []string
	for _, lb := range lbs {
		if a := deref(lb.TargetGroupArn); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// TaskTarget is where a task is registered in one target group.
type TaskTarget struct {
	TargetGroupARN string
	ID             string // an EC2 instance id (bridge, host) or an IPv4 address (awsvpc)
	Port           int32
}

// Key is the target as ELBv2 names it: "<id>:<port>".
func (t TaskTarget) Key() string { return fmt.Sprintf("%s:%d", t.ID, t.Port) }

// TaskTargets computes a task's targets for a service's load balancers: in
// awsvpc mode (the container reports a network interface) the task's own
// address and the container port; in bridge and host modes the container
// instance's EC2 instance id and the host port bound to the container
// port. ok is false when a target cannot be known yet (bindings or
// address not reported). Pure.
func TaskTargets(lbs []ecsapi.LoadBalancer, containers []ecsapi.Container, ec2InstanceID string) ([]TaskTarget, bool) {
	var out []TaskTarget
	for _, lb := range lbs {
		name, port := deref(lb.ContainerName), deref(lb.ContainerPort)
		var c *ecsapi.Container
		for i := range containers {
			if deref(containers[i].Name) == name {
				c = &containers[i]
			}
		}
		if c == nil {
			return nil, false
		}
		ip := ""
		for _, ni := range c.NetworkInterfaces {
			if v := deref(ni.PrivateIpv4Address); v != "" && ip == "" {
				ip = v
			}
		}
		t := TaskTarget{TargetGroupARN: deref(lb.TargetGroupArn)}
		if ip != "" {
			t.ID, t.Port = ip, port
		} else {
			if ec2InstanceID == "" {
				return nil, false
			}
			t.ID = ec2InstanceID
			for _, b := range c.NetworkBindings {
				if deref(b.ContainerPort) == port && deref(b.HostPort) != 0 && (b.Protocol == nil || *b.Protocol == ecsapi.TransportProtocolTcp) {
					t.Port = deref(b.HostPort)
					break
				}
			}
			if t.Port == 0 {
				return nil, false
			}
		}
		out = append(out, t)
	}
	return out, true
}

// RecordContainers shapes a task record's reported containers as far as
// TaskTargets reads them.
func RecordContainers(t *ecsstate.TaskRecord) []ecsapi.Container {
	out := make([]ecsapi.Container, len(t.Containers))
	for i, c := range t.Containers {
		out[i] = ecsapi.Container{Name: ptr(c.Name), NetworkBindings: c.NetworkBindings, NetworkInterfaces: c.NetworkInterfaces}
	}
	return out
}

// ELBUnhealthyEvent is ECS's service event for a task whose target turned
// unhealthy.
func ELBUnhealthyEvent(service, taskID, tgARN string) string {
	return fmt.Sprintf("(service %s) (task %s) is unhealthy in (target-group %s) due to (reason Health checks failed).", service, taskID, tgARN)
}

// ELBUnhealthyReason is the stop reason of such a task.
func ELBUnhealthyReason(tgARN string) string {
	return "Task failed ELB health checks in (target-group " + tgARN + ")"
}

// TargetsHealth is the health of one task's targets, combined over its
// target groups. Pure.
type TargetsHealth struct {
	// Healthy: every target is healthy (or its group does not check:
	// unavailable).
	Healthy bool
	// UnhealthyIn is the first target group where a target is unhealthy.
	UnhealthyIn string
}

// CombineTargetHealth combines a task's targets' states.
func CombineTargetHealth(targets []TaskTarget, states map[string]map[string]TargetState) TargetsHealth {
	h := TargetsHealth{Healthy: len(targets) > 0}
	for _, t := range targets {
		st := states[t.TargetGroupARN][t.Key()]
		switch st.State {
		case "healthy", "unavailable":
		case "unhealthy":
			h.Healthy = false
			if h.UnhealthyIn == "" {
				h.UnhealthyIn = t.TargetGroupARN
			}
		default:
			h.Healthy = false
		}
	}
	return h
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
