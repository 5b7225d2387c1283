package servicectl

import (
	"context"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
)

// An Auto Scaling group provider strategy's starts: each provider's share
// of the tasks goes to its pool (docs/capacity-providers.md, "Placement").

// asgCounts are a strategy's providers' counts among a deployment's live
// tasks.
func asgCounts(strategy []ecsapi.CapacityProviderStrategyItem, tasks []ecsstate.TaskRecord, deployment string) []int {
	counts := make([]int, len(strategy))
	for i := range tasks {
		t := &tasks[i]
		if t.StartedBy != deployment || t.DesiredStatus != ecsstate.DesiredRunning {
			continue
		}
		for j, it := range strategy {
			if deref(it.CapacityProvider) == t.CapacityProvider {
				counts[j]++
			}
		}
	}
	return counts
}

// placeStrategy places a Start's tasks (after start has built the spec).
// For a service with an Auto Scaling group provider strategy the strategy
// splits them, counting the deployment's own live tasks (so replacements
// go where the split is short), and each provider's share is placed by
// placeAll on its pool, with the service's placement constraints and
// strategies; other services' tasks go straight to placeAll.
func (c *controller) placeStrategy(ctx context.Context, cp *clusterPass, r *ecsstate.ServiceRecord, st deploy.Start, spec *tasklife.Spec) ([]string, *placement.Failure, error) {
	if r.ASG == nil || st.InstanceID != "" {
		return c.placeAll(ctx, cp, r.Cluster, st, spec)
	}
	strategy := r.ASG.Strategy
	pools, err := c.tasks.StrategyPools(ctx, strategy)
	if err != nil {
		return nil, &placement.Failure{Reason: errs.MessageOf(err)}, nil
	}
	tasks, err := tasklife.GroupTasks(ctx, c.st, r.Cluster, "service:"+r.Name)
	if err != nil {
		return nil, nil, err
	}
	items := tasklife.StrategyItems(strategy)
	share := make([]int, len(items))
	for _, i := range capacityprovider.Split(items, asgCounts(strategy, tasks, st.DeploymentID), st.Count) {
		share[i]++
	}
	var ids []string
	var failure *placement.Failure
	for i, it := range items {
		if share[i] == 0 {
			continue
		}
		sp := *spec
		sp.ASG = &tasklife.ASGPin{Provider: it.Provider, Pool: pools[it.Provider]}
		sti := st
		sti.Count = share[i]
		got, f, err := c.placeAll(ctx, cp, r.Cluster, sti, &sp)
		ids = append(ids, got...)
		if err != nil {
			return ids, nil, err
		}
		if failure == nil {
			failure = f
		}
	}
	return ids, failure, nil
}

// providerDeployInput gives the deployment decision a service's capacity
// provider strategy (Fargate's or an Auto Scaling group one) and each
// task's provider, so that scale-in keeps the split. tasks are in.Tasks'
// records, in order.
func providerDeployInput(r *ecsstate.ServiceRecord, in *deploy.Input, tasks []ecsstate.TaskRecord) {
	strategy := tasklife.ServiceStrategy(r)
	if len(strategy) == 0 {
		return
	}
	in.Service.Providers = tasklife.StrategyItems(strategy)
	for i := range tasks {
		if i >= len(in.Tasks) || in.Tasks[i].ID != tasks[i].ID {
			return
		}
		p := tasks[i].CapacityProvider
		if tasks[i].Fargate != nil {
			p = tasks[i].Fargate.CapacityProvider
		}
		in.Tasks[i].Provider = p
	}
}
