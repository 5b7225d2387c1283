package servicectl

import (
	"context"
	"math/rand/v2"
	"slices"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/capacityprovider"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
	"github.com/berthdev/berth/internal/placement"
)

// A Fargate service's tasks: the pass reads the Fargate hosts, the
// decision sees them, starts place on them (docs/fargate.md).

// fargatePass reads the Fargate hosts for a pass over a cluster with a
// Fargate service.
func (c *controller) fargatePass(ctx context.Context, cp *clusterPass, services []listedService) error {
	for _, ls := range services {
		if ls.rec.Fargate != nil {
			snap, err := tasklife.FargateSnapshot(ctx, c.st)
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
	for _, v := range cp.fargate.Instances {
		if cp.snap.ByID[v.Rec.ID] != nil {
			continue
		}
		pi := v.PlacementInstance()
		out = append(out, deploy.Instance{ID: v.Rec.ID, EC2InstanceID: v.Rec.Ec2InstanceID, Status: v.Rec.Status, Connected: v.Connected,
			Attributes: pi.Attributes, FreeCPU: pi.Remaining.CPU, FreeMemory: pi.Remaining.Memory})
	}
	return out
}

// startFargate places a Start's tasks of a Fargate service on the Fargate
// hosts, a transaction's worth at a time, each on a fresh snapshot.
func (c *controller) startFargate(ctx context.Context, r *ecsstate.ServiceRecord, spec *tasklife.Spec, deployment string, count int) ([]string, string, error) {
	var ids []string
	failed := false
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	if st := r.Fargate.Strategy; st != nil {
		// The strategy applies to the deployment's own tasks: a new
		// deployment meets the base again while the old one drains.
		tasks, err := tasklife.GroupTasks(ctx, c.st, r.Cluster, "service:"+r.Name)
		if err != nil {
			return nil, "", err
		}
		tasks = slices.DeleteFunc(tasks, func(t ecsstate.TaskRecord) bool { return t.StartedBy != deployment })
		items := tasklife.StrategyItems(st)
		spec.Providers = nil
		for _, i := range capacityprovider.Split(items, tasklife.ProviderCounts(st, tasks), count) {
			spec.Providers = append(spec.Providers, items[i].Provider)
		}
	}
	for count > 0 {
		n := min(count, tasklife.MaxBatchTasks(c.st))
		p, err := tasklife.ApplyPlanOn(ctx, c.st, r.Cluster, c.fargateSnapshot, func(snap *tasklife.Snapshot) (*tasklife.Plan, error) {
			return c.tasks.PlanFargate(snap, r.Cluster, spec, n, func(insts []placement.Instance, k int) ([]placement.Placement, []placement.Failure) {
				return placement.Place(insts, spec.Req, k, rng)
			})
		})
		if err != nil {
			return ids, "", err
		}
		if p == nil {
			break
		}
		for _, t := range p.Tasks {
			ids = append(ids, t.Rec.ID)
		}
		spec.Providers = spec.Providers[min(len(spec.Providers), len(p.Tasks)):]
		c.started.Add(int64(len(p.Tasks)))
		c.cfg.Observer.TasksPlaced(len(p.Tasks))
		count -= len(p.Tasks)
		if len(p.Failures) > 0 || len(p.Tasks) == 0 {
			failed = true
			break
		}
	}
	msg := ""
	if failed {
		msg = "(service " + r.Name + ") was unable to place a task. Reason: " + tasklife.ReasonFargateCapacity + "."
		c.cfg.Observer.PlacementFailed("FARGATE CAPACITY")
	}
	if len(ids) > 0 {
		c.log.Info("service tasks started", "cluster", r.Cluster, "service", r.Name, "launchType", "FARGATE", "count", len(ids))
	}
	return ids, msg, nil
}

// launchInput fills a service task's launch fields.
func launchInput(r *ecsstate.ServiceRecord, in *tasklife.TaskInput) {
	if r.Fargate == nil {
		return
	}
	in.LaunchType = ptr(ecsapi.LaunchTypeFargate)
	in.PlatformVersion = ptr(r.Fargate.PlatformVersion)
	in.Network = r.NetworkConfiguration
	in.CapacityProvider = r.Fargate.CapacityProvider
}

// fargateSnapshot reads the Fargate hosts (tasklife.FargateSnapshot).
func (c *controller) fargateSnapshot(ctx context.Context) (*tasklife.Snapshot, error) {
	return tasklife.FargateSnapshot(ctx, c.st)
}
