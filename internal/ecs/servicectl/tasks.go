package servicectl

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
	"github.com/berthdev/berth/internal/placement"
)

// Tasks is what the service controller needs of the task lifecycle that
// ECS's API handlers also use and that package ecs implements
// (ecs.Service.ServiceTasks): resolving a task definition into a spec,
// making a task's record, stopping a task through StopTask's path (with
// the load balancer drain gate), Service Connect and Fargate placement,
// and the service records' reads and read-modify-writes. The snapshots
// and the applier it calls directly (package tasklife).
type Tasks interface {
	// Now is the clock.
	Now() time.Time
	// BuildSpec resolves and checks a task request against its task
	// definition, as RunTask does.
	BuildSpec(ctx context.Context, cluster string, in tasklife.TaskInput) (*tasklife.Spec, error)
	// NewTask makes the record of a task of spec placed on an instance.
	NewTask(cluster string, spec *tasklife.Spec, inst *tasklife.InstanceView, now time.Time) ecsstate.TaskRecord
	// StopTask stops a task as StopTask does, held DEACTIVATING for as
	// long as drain says (nil: not held).
	StopTask(ctx context.Context, cluster, id string, code ecsapi.TaskStopCode, reason string, drain func(*ecsstate.TaskRecord) (time.Duration, error)) (ecsstate.TaskRecord, error)
	// DrainDelay is how long a task of a service with these load
	// balancers is held after desired STOPPED.
	DrainDelay(ctx context.Context, lbs []ecsapi.LoadBalancer) (time.Duration, error)
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
	// GroupTasks reads the tasks of a group ("service:<name>").
	GroupTasks(ctx context.Context, cluster, group string) ([]ecsstate.TaskRecord, error)
	// GetService reads a service record and its revision.
	GetService(ctx context.Context, cluster, name string) (ecsstate.ServiceRecord, int64, error)
	// ChangeService applies change to a service record (read, change,
	// compare-and-swap, again on contention).
	ChangeService(ctx context.Context, cluster, name string, change func(*ecsstate.ServiceRecord) error) (ecsstate.ServiceRecord, error)
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
