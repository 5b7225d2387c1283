package ecs

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/placement"
)

// ServiceTasks is the task lifecycle the service controller (package
// servicectl) shares with the handlers: the part of it that is still in
// this package (docs/ecs.md, "Package layout"). It implements
// servicectl.Tasks; the daemon wires it.
type ServiceTasks struct{ s *Service }

// ServiceTasks returns the lifecycle the service controller uses.
func (s *Service) ServiceTasks() ServiceTasks { return ServiceTasks{s} }

// Now is the service's clock.
func (t ServiceTasks) Now() time.Time { return t.s.now() }

// BuildSpec resolves and checks a task request, as RunTask does.
func (t ServiceTasks) BuildSpec(ctx context.Context, cluster string, in taskInput) (*taskSpec, error) {
	return t.s.buildSpec(ctx, cluster, in)
}

// NewTask makes the record of a task of spec placed on an instance.
func (t ServiceTasks) NewTask(cluster string, spec *taskSpec, inst *instanceView, now time.Time) taskRecord {
	return t.s.newTask(cluster, spec, inst, now)
}

// StopTask stops a task as StopTask does, held while drain says.
func (t ServiceTasks) StopTask(ctx context.Context, cluster, id string, code ecsapi.TaskStopCode, reason string, drain func(*taskRecord) (time.Duration, error)) (taskRecord, error) {
	return t.s.stopTaskHeld(ctx, cluster, id, code, reason, drain)
}

// DrainDelay is the drain gate's delay for a service's load balancers.
func (t ServiceTasks) DrainDelay(ctx context.Context, lbs []ecsapi.LoadBalancer) (time.Duration, error) {
	return t.s.drainDelay(ctx, lbs)
}

// LoadBalancing is ELBv2, nil when not installed.
func (t ServiceTasks) LoadBalancing() LoadBalancing { return t.s.loadBalancing() }

// ServiceConnectSpec adds a deployment's Service Connect configuration.
func (t ServiceTasks) ServiceConnectSpec(ctx context.Context, r *serviceRecord, deploymentID string, spec *taskSpec) error {
	return t.s.serviceConnectSpec(ctx, r, deploymentID, spec)
}

// PlanFargate places Fargate tasks on a snapshot of the Fargate hosts.
func (t ServiceTasks) PlanFargate(snap *clusterSnapshot, cluster string, spec *taskSpec, count int, plc func(insts []placement.Instance, n int) ([]placement.Placement, []placement.Failure)) (*plan, error) {
	return t.s.planFargate(snap, cluster, spec, count, plc)
}

// StrategyPools maps an Auto Scaling group strategy's providers to pools.
func (t ServiceTasks) StrategyPools(ctx context.Context, strategy []ecsapi.CapacityProviderStrategyItem) (map[string]string, error) {
	return t.s.strategyPools(ctx, strategy)
}

// GroupTasks reads the tasks of a group.
func (t ServiceTasks) GroupTasks(ctx context.Context, cluster, group string) ([]taskRecord, error) {
	return t.s.groupTasks(ctx, cluster, group)
}

// GetService reads a service record and its revision.
func (t ServiceTasks) GetService(ctx context.Context, cluster, name string) (serviceRecord, int64, error) {
	return t.s.getService(ctx, cluster, name)
}

// ChangeService read-modify-writes a service record.
func (t ServiceTasks) ChangeService(ctx context.Context, cluster, name string, change func(*serviceRecord) error) (serviceRecord, error) {
	return t.s.changeService(ctx, cluster, name, change)
}
