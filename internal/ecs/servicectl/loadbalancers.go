package servicectl

import (
	"context"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
)

// A load-balanced service's tasks: the targets' health gates the
// deployment, and stopped tasks drain (docs/services.md, "Load balancers").

// lbTaskHealth lays the targets' health over the tasks of a load-balanced
// service before deploy.Decide sees them: a RUNNING task counts as healthy
// only once its targets are healthy in every target group (and its
// container health check passes, where there is one); a task whose target
// is unhealthy after the grace period is stopped with ECS's reason and
// event. Every deployment of such a service is health checked. Pure;
// returns the stops to make and events to post.
func lbTaskHealth(in *deploy.Input, lbs []ecsapi.LoadBalancer, targets map[string][]tasklife.TaskTarget, states map[string]map[string]tasklife.TargetState) (stops []deploy.Stop, events []string) {
	checked := map[string]bool{}
	for i := range in.Deployments {
		checked[in.Deployments[i].ID] = in.Deployments[i].HealthChecked
		in.Deployments[i].HealthChecked = true
	}
	for i := range in.Tasks {
		t := &in.Tasks[i]
		if t.LastStatus != "RUNNING" || t.DesiredStatus != "RUNNING" {
			continue
		}
		ts, ok := targets[t.ID]
		var h tasklife.TargetsHealth
		if ok {
			h = tasklife.CombineTargetHealth(ts, states)
		}
		container := t.Health
		switch {
		case container == "UNHEALTHY":
			// deploy.Decide stops it for its container health check.
		case h.UnhealthyIn != "" && t.StartedAt != nil && in.Now.Sub(*t.StartedAt) >= in.Service.HealthCheckGrace:
			t.Health = "UNHEALTHY"
			t.DesiredStatus = "STOPPED"
			t.StopCode = deploy.StopCodeScheduler
			stops = append(stops, deploy.Stop{TaskID: t.ID, StopCode: deploy.StopCodeScheduler, Reason: tasklife.ELBUnhealthyReason(h.UnhealthyIn)})
			events = append(events, tasklife.ELBUnhealthyEvent(in.Service.Name, t.ID, h.UnhealthyIn))
		case h.Healthy && (!checked[t.DeploymentID] || container == "HEALTHY"):
			t.Health = "HEALTHY"
		default:
			t.Health = "UNKNOWN"
		}
	}
	return stops, events
}

// serviceTargetHealth reads the targets' states for a load-balanced
// service and computes its tasks' targets; nil maps when the service has
// no load balancers.
func (c *controller) serviceTargetHealth(ctx context.Context, r *ecsstate.ServiceRecord, cp *clusterPass, tasks []ecsstate.TaskRecord) (map[string][]tasklife.TaskTarget, map[string]map[string]tasklife.TargetState, error) {
	if len(r.LoadBalancers) == 0 || c.tasks.LoadBalancing() == nil {
		return nil, nil, nil
	}
	states, err := c.tasks.LoadBalancing().TargetStates(ctx, tasklife.TargetGroupARNs(r.LoadBalancers))
	if err != nil {
		return nil, nil, err
	}
	targets := map[string][]tasklife.TaskTarget{}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i := range tasks {
		t := &tasks[i]
		if t.LastStatus != "RUNNING" {
			continue
		}
		ec2 := ""
		if v := cp.snap.ByID[t.InstanceID]; v != nil {
			ec2 = v.Rec.Ec2InstanceID
		}
		if ts, ok := tasklife.TaskTargets(r.LoadBalancers, tasklife.RecordContainers(t), ec2); ok {
			targets[t.ID] = ts
		}
	}
	return targets, states, nil
}

// drainFunc gives the drain gate's delay for the tasks of service r that
// the controller stops (read once, on the first stop of a RUNNING task);
// nil for a service without load balancers: no gate at all.
func (c *controller) drainFunc(ctx context.Context, r *ecsstate.ServiceRecord) func(*ecsstate.TaskRecord) (time.Duration, error) {
	if len(r.LoadBalancers) == 0 || c.tasks.LoadBalancing() == nil {
		return nil
	}
	var (
		d    time.Duration
		read bool
	)
	return func(t *ecsstate.TaskRecord) (time.Duration, error) {
		if t.LastStatus != "RUNNING" {
			return 0, nil
		}
		if !read {
			var err error
			if d, err = tasklife.DrainDelay(ctx, c.tasks.LoadBalancing(), r.LoadBalancers); err != nil {
				return 0, err
			}
			read = true
		}
		return d, nil
	}
}

// decideWithTargets is deploy.Decide with the targets' health laid over a
// load-balanced service's tasks (lbTaskHealth); states nil: plain Decide.
func decideWithTargets(in deploy.Input, lbs []ecsapi.LoadBalancer, targets map[string][]tasklife.TaskTarget, states map[string]map[string]tasklife.TargetState) deploy.Decision {
	if states == nil {
		return deploy.Decide(in)
	}
	in.Deployments = slices.Clone(in.Deployments)
	in.Tasks = slices.Clone(in.Tasks)
	checked := map[string]bool{}
	for _, d := range in.Deployments {
		checked[d.ID] = d.HealthChecked
	}
	stops, events := lbTaskHealth(&in, lbs, targets, states)
	dec := deploy.Decide(in)
	// HealthChecked stays what the task definition says (the targets'
	// health is laid over at every decision, not stored).
	for i := range dec.Deployments {
		if v, ok := checked[dec.Deployments[i].ID]; ok {
			dec.Deployments[i].HealthChecked = v
		} else { // a rollback's new deployment: as the one it returns to
			dec.Deployments[i].HealthChecked = checked[in.Service.LastCompletedDepID]
		}
	}
	dec.Stop = append(stops, dec.Stop...)
	dec.Events = append(events, dec.Events...)
	return dec
}
