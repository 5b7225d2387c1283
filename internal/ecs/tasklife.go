package ecs

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/ecs/tasklife"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// The task lifecycle the handlers share with the service controller lives
// in package tasklife (docs/ecs.md, "Package layout"): cluster snapshots,
// the plan applier, task specs, load balancing's types and rules, strategy
// arithmetic. These aliases and wrappers keep the handlers' code as it was
// written; new code may name tasklife directly.
type (
	instanceView    = tasklife.InstanceView
	clusterSnapshot = tasklife.Snapshot
	placedTask      = tasklife.PlacedTask
	plan            = tasklife.Plan
	usage           = tasklife.Usage
	taskInput       = tasklife.TaskInput
	taskSpec        = tasklife.Spec
	asgPin          = tasklife.ASGPin

	// LoadBalancing is what ECS needs of ELBv2.
	LoadBalancing = tasklife.LoadBalancing
	// TargetGroupInfo is what service validation and the drain gate need
	// to know of a target group.
	TargetGroupInfo = tasklife.TargetGroupInfo
	// TargetState is one target's health as the data plane saw it.
	TargetState = tasklife.TargetState
	// TaskTarget is where a task is registered in one target group.
	TaskTarget = tasklife.TaskTarget
)

// TaskTargets computes a task's targets for a service's load balancers
// (tasklife.TaskTargets).
func TaskTargets(lbs []ecsapi.LoadBalancer, containers []ecsapi.Container, ec2InstanceID string) ([]TaskTarget, bool) {
	return tasklife.TaskTargets(lbs, containers, ec2InstanceID)
}

// reasonNoPoolInstances is ECS's reason when a provider's group has no
// container instance.
const reasonNoPoolInstances = tasklife.ReasonNoPoolInstances

// FargateCapability is the attribute of an instance that offers Fargate
// capacity.
const FargateCapability = tasklife.FargateCapability

func liveTask(t *taskRecord) bool                         { return tasklife.LiveTask(t) }
func allAttributes(rec *instanceRecord) map[string]string { return tasklife.AllAttributes(rec) }
func taskUsage(tasks []taskRecord) usage                  { return tasklife.TaskUsage(tasks) }
func reserve(pi *placement.Instance, req *placement.Request, taskARN string) {
	tasklife.Reserve(pi, req, taskARN)
}
func failureOf(err error) (placement.Failure, bool) { return tasklife.FailureOf(err) }

// readSnapshot is snapshot; with all it also keeps every task of the
// cluster in the snapshot's All, read even when there is no instance.
func (s *Service) readSnapshot(ctx context.Context, cluster string, all bool) (*clusterSnapshot, error) {
	return tasklife.ReadSnapshot(ctx, s.st, s.log, cluster, all)
}

// fargateSnapshot reads every instance that offers Fargate capacity with
// its live tasks (tasklife.FargateSnapshot).
func (s *Service) fargateSnapshot(ctx context.Context) (*clusterSnapshot, error) {
	return tasklife.FargateSnapshot(ctx, s.st)
}

// maxBatchTasks is the most tasks one plan may hold.
func (s *Service) maxBatchTasks() int { return tasklife.MaxBatchTasks(s.st) }

// applyPlanOn is applyPlan on the snapshots read reads.
func (s *Service) applyPlanOn(ctx context.Context, cluster string, read func(context.Context) (*clusterSnapshot, error), planner func(*clusterSnapshot) (*plan, error)) (*plan, error) {
	return tasklife.ApplyPlanOn(ctx, s.st, cluster, read, planner)
}

// commitPlan is tasklife.CommitPlan.
func (s *Service) commitPlan(ctx context.Context, snap *clusterSnapshot, p *plan) (bool, error) {
	return tasklife.CommitPlan(ctx, s.st, snap, p)
}

const reasonFargateCapacity = tasklife.ReasonFargateCapacity

func strategyItems(strategy []ecsapi.CapacityProviderStrategyItem) []capacityprovider.Item {
	return tasklife.StrategyItems(strategy)
}
func newDeploymentID() string { return tasklife.NewDeploymentID() }
func newEventID() string      { return tasklife.NewEventID() }

func serviceStrategy(r *serviceRecord) []ecsapi.CapacityProviderStrategyItem {
	return tasklife.ServiceStrategy(r)
}

type drainRecord = tasklife.DrainRecord

func drainKey(cluster, id string) string { return tasklife.DrainKey(cluster, id) }

func (s *Service) getTask(ctx context.Context, cluster, id string) (taskRecord, int64, error) {
	return tasklife.GetTask(ctx, s.st, cluster, id)
}

// stopTaskRecordWith is stopTaskHeld; change, when set, may refuse the
// task (its error is returned) or change it further in the same write
// (tasklife.StopTask).
func (s *Service) stopTaskRecordWith(ctx context.Context, cluster, id string, code ecsapi.TaskStopCode, reason string, change func(*taskRecord) error, drain func(*taskRecord) (time.Duration, error)) (taskRecord, error) {
	return tasklife.StopTask(ctx, s.st, s.log, s.now, cluster, id, tasklife.Stop{Code: code, Reason: reason, Change: change, Drain: drain})
}

// drainDelay is tasklife.DrainDelay with this service's ELBv2.
func (s *Service) drainDelay(ctx context.Context, lbs []ecsapi.LoadBalancer) (time.Duration, error) {
	return tasklife.DrainDelay(ctx, s.loadBalancing(), lbs)
}

func (s *Service) getService(ctx context.Context, cluster, name string) (serviceRecord, int64, error) {
	return tasklife.GetService(ctx, s.st, cluster, name)
}

func (s *Service) changeService(ctx context.Context, cluster, name string, change func(*serviceRecord) error) (serviceRecord, error) {
	return tasklife.ChangeService(ctx, s.st, cluster, name, change)
}

func (s *Service) readIndexed(ctx context.Context, idx []store.KV, target func(string) string) ([]store.KV, error) {
	return tasklife.ReadIndexed(ctx, s.st, idx, target)
}
