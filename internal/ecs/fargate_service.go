package ecs

import (
	"context"

	"github.com/berthdev/berth/internal/api/ecsapi"
)

// Fargate services (docs/fargate.md): the API records the service's
// platform (serviceRecord.Fargate); the controller places its tasks on
// the Fargate hosts and counts those hosts among the instances it decides
// on, so that a task there is not taken for one on a lost instance.

// serviceLaunch checks a CreateService request's launch type against the
// task definition and returns the Fargate platform, nil for EC2.
func serviceLaunch(lt *ecsapi.LaunchType, pv *string, nc *ecsapi.NetworkConfiguration, td *ecsapi.TaskDefinition, cons []ecsapi.PlacementConstraint, strat []ecsapi.PlacementStrategy) (*fargateLaunch, error) {
	if err := checkLaunchType(lt); err != nil {
		return nil, err
	}
	if !isFargateLaunch(lt) {
		if pv != nil {
			return nil, invalid("The platform version must be null when specifying an EC2 launch type.")
		}
		if !supportsEC2(td) {
			return nil, invalid("Task definition does not support launch_type EC2.")
		}
		return nil, checkNetworkConfiguration(nc, deref(td.NetworkMode), false)
	}
	if len(cons) > 0 || len(strat) > 0 {
		return nil, errFargateRules()
	}
	return resolveFargate(td, pv, nc)
}

// serviceLaunchOf decides a CreateService's launch: EC2, FARGATE, or a
// capacity provider strategy (the request's or the cluster's default),
// which runs on the Fargate hosts.
func (s *Service) serviceLaunchOf(c *clusterRecord, in *ecsapi.CreateServiceRequest, td *ecsapi.TaskDefinition) (*fargateLaunch, error) {
	strategy, err := resolveStrategy(c, in.LaunchType, in.CapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	if strategy != nil && deref(in.SchedulingStrategy) == ecsapi.SchedulingStrategyDaemon {
		return nil, invalid("Specifying a capacity provider strategy is not supported when you create a service using the DAEMON scheduling strategy.")
	}
	lt := in.LaunchType
	if strategy != nil && !asgStrategy(strategy) {
		lt = ptr(ecsapi.LaunchTypeFargate)
	}
	fl, err := serviceLaunch(lt, in.PlatformVersion, in.NetworkConfiguration, td, in.PlacementConstraints, in.PlacementStrategy)
	if err != nil || fl == nil {
		return fl, err
	}
	fl.Strategy = strategy
	return fl, nil
}

// updateFargate applies an UpdateService's platformVersion and
// capacityProviderStrategy to r; true when one changed (a new
// deployment).
func (s *Service) updateFargate(ctx context.Context, r *serviceRecord, strategy []ecsapi.CapacityProviderStrategyItem, pv *string) (bool, error) {
	if handled, changed, err := s.updateASG(ctx, r, strategy, pv); handled { // asgplacement.go
		return changed, err
	}
	changed := false
	if pv != nil {
		if r.Fargate == nil {
			return false, invalid("The platform version must be null when specifying an EC2 launch type.")
		}
		tdRec, _, err := s.findTaskDef(ctx, r.TaskDefinition)
		if err != nil {
			return false, err
		}
		fl, err := resolveFargate(&tdRec.TaskDefinition, pv, r.NetworkConfiguration)
		if err != nil {
			return false, err
		}
		if fl.PlatformVersion != r.Fargate.PlatformVersion {
			c := *r.Fargate
			c.PlatformVersion = fl.PlatformVersion
			r.Fargate = &c
			changed = true
		}
	}
	if strategy == nil {
		return changed, nil
	}
	if r.Fargate == nil {
		return false, invalid("Berth cannot move a service of launch type EC2 to a capacity provider strategy; create a new service with the strategy.")
	}
	c, _, err := s.getCluster(ctx, r.Cluster, false)
	if err != nil {
		return false, err
	}
	if err := checkStrategy(strategy, c.CapacityProviders); err != nil {
		return false, err
	}
	if jsonEqual(strategy, r.Fargate.Strategy) {
		return changed, nil
	}
	fl := *r.Fargate
	fl.Strategy = strategy
	r.Fargate = &fl
	return true, nil
}

// checkServiceTaskDef checks a new task definition of service r.
func checkServiceTaskDef(r *serviceRecord, td *ecsapi.TaskDefinition) error {
	if r.Fargate == nil {
		if !supportsEC2(td) {
			return invalid("Task definition does not support launch_type EC2.")
		}
		return nil
	}
	_, err := resolveFargate(td, ptr(r.Fargate.PlatformVersion), r.NetworkConfiguration)
	return err
}

// serviceLaunchType is a service's launch type on the wire.
func serviceLaunchType(r *serviceRecord) *ecsapi.LaunchType {
	if r.Fargate != nil {
		return ptr(ecsapi.LaunchTypeFargate)
	}
	return ptr(ecsapi.LaunchTypeEc2)
}

// fargateServiceOut adds a Fargate service's platform to its output.
func fargateServiceOut(r *serviceRecord, out *ecsapi.Service) {
	out.LaunchType = serviceLaunchType(r)
	if r.ASG != nil {
		asgServiceOut(r, out) // asgplacement.go
		return
	}
	if r.Fargate == nil {
		return
	}
	out.PlatformVersion, out.PlatformFamily = ptr(r.Fargate.PlatformVersion), ptr(r.Fargate.PlatformFamily)
	if r.Fargate.Strategy != nil {
		out.LaunchType = nil // a service with a strategy has no launch type
		out.CapacityProviderStrategy = r.Fargate.Strategy
	}
	for i := range out.Deployments {
		d := &out.Deployments[i]
		d.LaunchType = out.LaunchType
		d.CapacityProviderStrategy = out.CapacityProviderStrategy
		d.PlatformVersion, d.PlatformFamily = out.PlatformVersion, out.PlatformFamily
	}
}
