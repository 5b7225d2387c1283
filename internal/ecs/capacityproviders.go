package ecs

import (
	"context"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

// Capacity providers (docs/fargate.md). Berth has the two AWS-managed
// providers, FARGATE and FARGATE_SPOT, which every cluster may associate
// (PutClusterCapacityProviders, CreateCluster); both run tasks on the
// Fargate hosts, and a FARGATE_SPOT task may be interrupted (spot.go).
// Auto Scaling group providers (CreateCapacityProvider ...) are not
// implemented: those operations answer the front door's not-implemented
// error.

// The AWS-managed capacity providers.
const (
	ProviderFargate     = "FARGATE"
	ProviderFargateSpot = "FARGATE_SPOT"
)

func managedProvider(name string) bool { return name == ProviderFargate || name == ProviderFargateSpot }

// checkClusterProviders applies ECS's rules to a cluster's providers and
// default strategy.
func checkClusterProviders(providers []string, strategy []ecsapi.CapacityProviderStrategyItem) error {
	seen := map[string]bool{}
	for _, p := range providers {
		// Auto Scaling group providers: Service.checkASGProviders.
		if seen[p] {
			return errs.R(errs.Invalid, reasonInvalidParameter, "The specified capacity providers contain duplicates: %s.", p)
		}
		seen[p] = true
	}
	if len(strategy) > 0 {
		return checkStrategy(strategy, providers)
	}
	return nil
}

// checkStrategy applies ECS's rules to a capacity provider strategy whose
// providers must be among the cluster's.
func checkStrategy(strategy []ecsapi.CapacityProviderStrategyItem, associated []string) error {
	if len(strategy) > 20 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "The capacity provider strategy can contain at most 20 capacity providers.")
	}
	if err := checkNotMixed(strategy); err != nil { // asgplacement.go
		return err
	}
	bases, weights := 0, 0
	seen := map[string]bool{}
	for _, it := range strategy {
		name := deref(it.CapacityProvider)
		if !slices.Contains(associated, name) {
			return errs.R(errs.Invalid, reasonInvalidParameter,
				"The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.")
		}
		if seen[name] {
			return errs.R(errs.Invalid, reasonInvalidParameter, "The specified capacity provider strategy contains duplicate capacity providers: %s.", name)
		}
		seen[name] = true
		b, w := deref(it.Base), deref(it.Weight)
		if b < 0 || b > 100000 {
			return errs.R(errs.Invalid, reasonInvalidParameter, "The base of a capacity provider must be between 0 and 100000.")
		}
		if w < 0 || w > 1000 {
			return errs.R(errs.Invalid, reasonInvalidParameter, "The weight of a capacity provider must be between 0 and 1000.")
		}
		if b > 0 {
			bases++
		}
		weights += int(w)
	}
	if bases > 1 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "Only one capacity provider in a capacity provider strategy can have a base defined.")
	}
	if weights == 0 {
		return errs.R(errs.Invalid, reasonInvalidParameter, "At least one capacity provider in a capacity provider strategy must have a weight greater than zero.")
	}
	return nil
}

// resolveStrategy decides the strategy a RunTask or CreateService uses:
// the request's, or the cluster's default when the request names neither
// a launch type nor a strategy. It returns nil for an EC2 launch.
func resolveStrategy(c *clusterRecord, lt *ecsapi.LaunchType, strategy []ecsapi.CapacityProviderStrategyItem) ([]ecsapi.CapacityProviderStrategyItem, error) {
	if len(strategy) > 0 && deref(lt) != "" {
		return nil, errs.R(errs.Invalid, reasonInvalidParameter, "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	}
	if len(strategy) == 0 {
		if deref(lt) != "" {
			return nil, nil
		}
		strategy = c.DefaultStrategy
	}
	if len(strategy) == 0 {
		return nil, nil
	}
	if err := checkStrategy(strategy, c.CapacityProviders); err != nil {
		return nil, err
	}
	return strategy, nil
}

// PutClusterCapacityProviders sets a cluster's capacity providers and
// default strategy. A provider a live task or service still uses cannot
// be removed.
func (s *Service) PutClusterCapacityProviders(ctx context.Context, in *ecsapi.PutClusterCapacityProvidersRequest) (*ecsapi.PutClusterCapacityProvidersResponse, error) {
	if err := checkClusterProviders(in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	name, err := s.clusterName(in.Cluster)
	if err != nil {
		return nil, err
	}
	inUse, err := s.providersInUse(ctx, name)
	if err != nil {
		return nil, err
	}
	for p := range inUse {
		if !slices.Contains(in.CapacityProviders, p) {
			return nil, errs.R(errs.Conflict, "ecs.resource_in_use",
				"The specified capacity provider is in use and cannot be removed: %s.", p)
		}
	}
	c, err := s.putClusterProviders(ctx, name, in) // asgproviders.go
	if err != nil {
		return nil, err
	}
	return &ecsapi.PutClusterCapacityProvidersResponse{Cluster: &c}, nil
}

// providersInUse are the providers of a cluster's live Fargate tasks.
func (s *Service) providersInUse(ctx context.Context, cluster string) (map[string]bool, error) {
	snap, err := s.readSnapshot(ctx, cluster, true)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for i := range snap.All {
		t := &snap.All[i]
		if t.Fargate != nil && t.Fargate.CapacityProvider != "" && liveTask(t) {
			out[t.Fargate.CapacityProvider] = true
		}
		if t.CapacityProvider != "" && liveTask(t) {
			out[t.CapacityProvider] = true
		}
	}
	return out, s.strategiesInUse(ctx, cluster, out) // asgplacement.go
}

// strategyString is a strategy for logs.
func strategyString(strategy []ecsapi.CapacityProviderStrategyItem) string {
	var b strings.Builder
	for i, it := range strategy {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(deref(it.CapacityProvider))
	}
	return b.String()
}
