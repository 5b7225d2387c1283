package servicectl

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
	"github.com/berthdev/berth/internal/placement"
)

// Tasks is the part of the task lifecycle the service controller shares
// with ECS's API handlers that is still in package ecs, which implements
// it (ecs.Service.ServiceTasks): resolving a task definition into a spec,
// making a task's record, Service Connect and Fargate placement, Auto
// Scaling group pools, ELBv2 and the clock. The rest (snapshots, the
// applier, stopping a task with the drain gate, the service and task
// records) it calls in package tasklife directly.
type Tasks interface {
	// Now is the clock.
	Now() time.Time
	// BuildSpec resolves and checks a task request against its task
	// definition, as RunTask does.
	BuildSpec(ctx context.Context, cluster string, in tasklife.TaskInput) (*tasklife.Spec, error)
	// NewTask makes the record of a task of spec placed on an instance.
	NewTask(cluster string, spec *tasklife.Spec, inst *tasklife.InstanceView, now time.Time) ecsstate.TaskRecord
	// LoadBalancing is ELBv2; nil: none.
	LoadBalancing() tasklife.LoadBalancing
	// ServiceConnectSpec adds a service deployment's Service Connect
	// configuration to spec.
	ServiceConnectSpec(ctx context.Context, r *ecsstate.ServiceRecord, deploymentID string, spec *tasklife.Spec) error
	// PlanFargate places count tasks of a Fargate spec on a snapshot of
	// the Fargate hosts.
	PlanFargate(snap *tasklife.Snapshot, cluster string, spec *tasklife.Spec, count int, plc func(insts []placement.Instance, n int) ([]placement.Placement, []placement.Failure)) (*tasklife.Plan, error)
	// StrategyPools maps an Auto Scaling group strategy's providers to
	// their pools.
	StrategyPools(ctx context.Context, strategy []ecsapi.CapacityProviderStrategyItem) (map[string]string, error)
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
