package ecs

import (
	"context"
	"encoding/json"
	"math/rand/v2"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// How an Auto Scaling group provider strategy places tasks
// (docs/capacity-providers.md, "Placement"): RunTask's plan (planEC2) and
// the service controller's starts (servicectl, placeStrategy) put each provider's
// share of the tasks on its pool; the deployment decision gets each
// task's provider for scale-in (providerDeployInput).

// asgStrategy reports whether a checked strategy (never mixed) is of Auto
// Scaling group providers.
func asgStrategy(strategy []ecsapi.CapacityProviderStrategyItem) bool {
	return len(strategy) > 0 && !managedProvider(deref(strategy[0].CapacityProvider))
}

// checkNotMixed refuses a strategy mixing Fargate and Auto Scaling group
// providers, with ECS's message.
func checkNotMixed(strategy []ecsapi.CapacityProviderStrategyItem) error {
	names := make([]string, len(strategy))
	for i, it := range strategy {
		names[i] = deref(it.CapacityProvider)
	}
	if capacityprovider.Mixed(names) {
		return errs.R(errs.Invalid, reasonInvalidParameter,
			"The specified capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.")
	}
	return nil
}

// strategyPools maps each provider of an ASG strategy to its pool.
func (s *Service) strategyPools(ctx context.Context, strategy []ecsapi.CapacityProviderStrategyItem) (map[string]string, error) {
	out := map[string]string{}
	for _, it := range strategy {
		name := deref(it.CapacityProvider)
		p, _, err := s.getProvider(ctx, name)
		if errs.Is(err, errs.NotFound) {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter,
				"The specified capacity provider '%s' is not in an ACTIVE state. Specify a valid capacity provider and try again.", name)
		}
		if err != nil {
			return nil, err
		}
		out[name] = p.Pool
	}
	return out, nil
}

// pinsOf turns a strategy's split into one pin per task.
func pinsOf(providers []string, pools map[string]string) []asgPin {
	out := make([]asgPin, len(providers))
	for i, p := range providers {
		out[i] = asgPin{Provider: p, Pool: pools[p]}
	}
	return out
}

// planEC2 places count EC2 tasks of spec on a cluster snapshot: all with
// the placement engine, or, for an ASG strategy (spec.pins), each
// provider's share on that provider's pool.
func (s *Service) planEC2(snap *clusterSnapshot, cluster string, spec *taskSpec, count int, rng *rand.Rand) (*plan, error) {
	now := s.now().UTC()
	p := &plan{Failures: []ecsapi.Failure{}}
	if spec.Pins == nil {
		insts := make([]placement.Instance, 0, len(snap.Instances))
		for _, v := range snap.Instances {
			insts = append(insts, v.PlacementInstance())
		}
		placements, failures := placement.Place(insts, spec.Req, count, rng)
		if len(placements) == 0 && len(failures) > 0 && failures[0].Reason == placement.ReasonNoInstances {
			return nil, errs.R(errs.Invalid, reasonInvalidParameter, "No Container Instances were found in your cluster.")
		}
		for _, pl := range placements {
			p.Tasks = append(p.Tasks, placedTask{Rec: s.newTask(cluster, spec, snap.ByID[pl.InstanceID], now), Req: &spec.Req})
		}
		for _, f := range failures {
			p.Failures = append(p.Failures, f.Wire())
		}
		return p, nil
	}
	// Each provider's share, in the strategy's order of first use.
	var order []asgPin
	share := map[asgPin]int{}
	for _, pin := range spec.Pins[:min(count, len(spec.Pins))] {
		if share[pin] == 0 {
			order = append(order, pin)
		}
		share[pin]++
	}
	for _, pin := range order {
		sp := *spec
		sp.ASG = &pin
		insts := make([]placement.Instance, 0, len(snap.Instances))
		for _, v := range snap.Instances {
			if sp.InPool(v) {
				insts = append(insts, v.PlacementInstance())
			}
		}
		placements, failures := placement.Place(insts, sp.Req, share[pin], rng)
		for _, pl := range placements {
			p.Tasks = append(p.Tasks, placedTask{Rec: s.newTask(cluster, &sp, snap.ByID[pl.InstanceID], now), Req: &spec.Req})
		}
		for _, f := range failures {
			p.Failures = append(p.Failures, sp.PoolFailure(f).Wire())
		}
	}
	return p, nil
}

// serviceASG is a CreateService's Auto Scaling group provider strategy
// (the request's or the cluster's default), nil for any other launch.
func serviceASG(c *clusterRecord, in *ecsapi.CreateServiceRequest) *asgLaunch {
	strategy, err := resolveStrategy(c, in.LaunchType, in.CapacityProviderStrategy)
	if err != nil || !asgStrategy(strategy) {
		return nil
	}
	return &asgLaunch{Strategy: strategy}
}

// updateASG applies an UpdateService's capacityProviderStrategy and
// platformVersion to a service with (or moving to) an Auto Scaling group
// provider strategy; handled is false for other services.
func (s *Service) updateASG(ctx context.Context, r *serviceRecord, strategy []ecsapi.CapacityProviderStrategyItem, pv *string) (handled, changed bool, err error) {
	if r.ASG == nil && (r.Fargate != nil || !asgStrategy(strategy)) {
		return false, false, nil
	}
	if pv != nil {
		return true, false, invalid("The platform version must be null when specifying an EC2 launch type.")
	}
	if strategy == nil {
		return true, false, nil
	}
	c, _, err := s.getCluster(ctx, r.Cluster, false)
	if err != nil {
		return true, false, err
	}
	if err := checkStrategy(strategy, c.CapacityProviders); err != nil {
		return true, false, err
	}
	if !asgStrategy(strategy) {
		return true, false, invalid("Berth cannot move a service from Auto Scaling group capacity providers to Fargate: the task definition's network mode and size rules differ. Create a new service with the Fargate strategy.")
	}
	if r.ASG != nil && jsonEqual(strategy, r.ASG.Strategy) {
		return true, false, nil
	}
	r.ASG = &asgLaunch{Strategy: strategy}
	return true, true, nil
}

// asgServiceOut shows a service's ASG strategy (such a service has no
// launch type).
func asgServiceOut(r *serviceRecord, out *ecsapi.Service) {
	out.LaunchType = nil
	out.CapacityProviderStrategy = r.ASG.Strategy
	for i := range out.Deployments {
		out.Deployments[i].LaunchType = nil
		out.Deployments[i].CapacityProviderStrategy = r.ASG.Strategy
	}
}

// strategiesInUse adds to out the providers the capacity provider
// strategies of a cluster's services name (a service keeps its provider
// while it exists, as on ECS).
func (s *Service) strategiesInUse(ctx context.Context, cluster string, out map[string]bool) error {
	res, err := s.st.List(ctx, keyServices+cluster+"/", store.ListOptions{})
	if err != nil {
		return err
	}
	for _, kv := range res.KVs {
		var r serviceRecord
		if json.Unmarshal(kv.Value, &r) != nil || r.Status == deploy.ServiceInactive {
			continue
		}
		for _, it := range serviceStrategy(&r) {
			out[deref(it.CapacityProvider)] = true
		}
	}
	return nil
}
