package ecs

import (
	"context"
	"math/rand/v2"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/placement"
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

// launchInput fills a service task's launch fields.
func (r *serviceRecord) launchInput(in *taskInput) {
	if r.Fargate == nil {
		return
	}
	in.launchType = ptr(ecsapi.LaunchTypeFargate)
	in.platformVersion = ptr(r.Fargate.PlatformVersion)
	in.network = r.NetworkConfiguration
	in.capacityProvider = r.Fargate.CapacityProvider
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
	if r.Fargate == nil {
		return
	}
	out.PlatformVersion, out.PlatformFamily = ptr(r.Fargate.PlatformVersion), ptr(r.Fargate.PlatformFamily)
	for i := range out.Deployments {
		d := &out.Deployments[i]
		d.LaunchType = out.LaunchType
		d.PlatformVersion, d.PlatformFamily = out.PlatformVersion, out.PlatformFamily
	}
}

// fargatePass reads the Fargate hosts for a pass over a cluster with a
// Fargate service.
func (s *Service) fargatePass(ctx context.Context, cp *clusterPass, services []listedService) error {
	for _, ls := range services {
		if ls.rec.Fargate != nil {
			snap, err := s.fargateSnapshot(ctx)
			if err != nil {
				return err
			}
			cp.fargate = snap
			return nil
		}
	}
	return nil
}

// fargateInstances are the Fargate hosts a pass knows that are not
// instances of its cluster, as the deployment decision sees them.
func (cp *clusterPass) fargateInstances() []deploy.Instance {
	if cp.fargate == nil {
		return nil
	}
	var out []deploy.Instance
	for _, v := range cp.fargate.instances {
		if cp.snap.byID[v.rec.ID] != nil {
			continue
		}
		pi := v.placementInstance()
		out = append(out, deploy.Instance{ID: v.rec.ID, EC2InstanceID: v.rec.Ec2InstanceID, Status: v.rec.Status, Connected: v.connected,
			Attributes: pi.Attributes, FreeCPU: pi.Remaining.CPU, FreeMemory: pi.Remaining.Memory})
	}
	return out
}

// startFargate places a Start's tasks of a Fargate service on the Fargate
// hosts, a transaction's worth at a time, each on a fresh snapshot.
func (c *serviceController) startFargate(ctx context.Context, r *serviceRecord, spec *taskSpec, count int) ([]string, string, error) {
	var ids []string
	failed := false
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	for count > 0 {
		n := min(count, c.s.maxBatchTasks())
		p, err := c.s.applyPlanOn(ctx, r.Cluster, c.s.fargateSnapshot, func(snap *clusterSnapshot) (*plan, error) {
			return c.s.planFargate(snap, r.Cluster, spec, n, func(insts []placement.Instance, k int) ([]placement.Placement, []placement.Failure) {
				return placement.Place(insts, spec.req, k, rng)
			})
		})
		if err != nil {
			return ids, "", err
		}
		if p == nil {
			break
		}
		for _, t := range p.tasks {
			ids = append(ids, t.rec.ID)
		}
		c.started.Add(int64(len(p.tasks)))
		c.cfg.Observer.TasksPlaced(len(p.tasks))
		count -= len(p.tasks)
		if len(p.failures) > 0 || len(p.tasks) == 0 {
			failed = true
			break
		}
	}
	msg := ""
	if failed {
		msg = "(service " + r.Name + ") was unable to place a task. Reason: " + reasonFargateCapacity + "."
		c.cfg.Observer.PlacementFailed("FARGATE CAPACITY")
	}
	if len(ids) > 0 {
		c.s.log.Info("service tasks started", "cluster", r.Cluster, "service", r.Name, "launchType", "FARGATE", "count", len(ids))
	}
	return ids, msg, nil
}
