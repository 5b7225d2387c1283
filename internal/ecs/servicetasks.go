package ecs

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/placement"
)

// ServiceTasks is the part of the task lifecycle the service controller
// (package servicectl) shares with the handlers that is still in this
// package (docs/ecs.md, "Package layout"). It implements servicectl.Tasks;
// the daemon wires it.
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
