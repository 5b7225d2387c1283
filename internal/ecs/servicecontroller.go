package ecs

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// The service controller: the thin shell around deploy.Decide. It watches
// everything under /berth/ecs/ (services, tasks, instances, agent
// presence) with a periodic resync as a safety net, and on every change
// reconciles each service: it reads the service, its tasks and the
// cluster's instances, calls deploy.Decide with `now`, stops tasks through
// stopTaskRecord, starts tasks through the applier (applyPlan, which
// re-checks capacity at commit), and writes the deployments, counts and
// events back under a compare on the service record. docs/services.md.

// ServiceControllerConfig tunes the service controller.
type ServiceControllerConfig struct {
	// Resync is how often every service is reconciled without a change
	// (time-based decisions: lost instances, back-off). Default 2 s.
	Resync time.Duration
	// LostAfter is how long an instance's agent may stay disconnected
	// before its service tasks are stopped and replaced. Default 5 s: with
	// the presence lease of 10 s a crashed agent is noticed within 15 s,
	// an agent that stops cleanly within 5 s.
	LostAfter time.Duration
}

// defaultServiceStrategies is the placement of a REPLICA service without
// strategies: spread across Availability Zones, then across instances
// (ECS's "AZ balanced spread").
var defaultServiceStrategies = []placement.Strategy{
	{Type: placement.Spread, Field: "attribute:ecs.availability-zone"},
	{Type: placement.Spread, Field: placement.FieldInstanceID},
}

type serviceController struct {
	s    *Service
	cfg  ServiceControllerConfig
	rng  *rand.Rand
	disc map[string]time.Time // instance id -> first seen disconnected
	// failing rate-limits error logs.
	failing bool
}

// RunServiceController runs the service controller until ctx ends.
func (s *Service) RunServiceController(ctx context.Context, cfg ServiceControllerConfig) {
	if cfg.Resync <= 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.LostAfter <= 0 {
		cfg.LostAfter = 5 * time.Second
	}
	c := &serviceController{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), disc: map[string]time.Time{}}
	kick := make(chan struct{}, 1)
	go c.watch(ctx, kick)
	tick := time.NewTicker(cfg.Resync)
	defer tick.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		case <-retry:
		}
		// Coalesce a burst of changes into one pass.
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		select {
		case <-kick:
		default:
		}
		after, err := c.pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if !c.failing {
				s.log.Warn("service controller pass failed", "err", err)
			}
			c.failing = true
		case err == nil:
			if c.failing {
				s.log.Info("service controller recovered")
			}
			c.failing = false
		}
		retry = nil
		if after > 0 {
			retry = time.After(after)
		}
	}
}

// watch sends on kick whenever something under /berth/ecs/ changes; it
// re-opens the watch after errors, with back-off.
func (c *serviceController) watch(ctx context.Context, kick chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		for wr := range c.s.st.Watch(ctx, "/berth/ecs/", 0) {
			if wr.Err != nil {
				break
			}
			backoff = 100 * time.Millisecond
			for _, e := range wr.Events {
				if strings.HasPrefix(e.KV.Key, keyAssign) || strings.HasPrefix(e.KV.Key, keyClientTokens) {
					continue
				}
				select {
				case kick <- struct{}{}:
				default:
				}
				break
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)))):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// pass reconciles every service once. It returns how soon a service
// asked to be looked at again (back-off), 0 for the next resync.
func (c *serviceController) pass(ctx context.Context) (time.Duration, error) {
	res, err := c.s.st.List(ctx, keyServices, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	byCluster := map[string][]string{}
	var order []string
	for _, kv := range res.KVs {
		var p statusPeek
		if json.Unmarshal(kv.Value, &p) != nil || p.Status == deploy.ServiceInactive {
			continue
		}
		cluster, name, ok := strings.Cut(strings.TrimPrefix(kv.Key, keyServices), "/")
		if !ok {
			continue
		}
		if _, seen := byCluster[cluster]; !seen {
			order = append(order, cluster)
		}
		byCluster[cluster] = append(byCluster[cluster], name)
	}
	var next time.Duration
	var firstErr error
	for _, cluster := range order {
		after, err := c.reconcileCluster(ctx, cluster, byCluster[cluster])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if after > 0 && (next == 0 || after < next) {
			next = after
		}
	}
	return next, firstErr
}

func (c *serviceController) reconcileCluster(ctx context.Context, cluster string, names []string) (time.Duration, error) {
	snap, err := c.s.snapshot(ctx, cluster)
	if err != nil {
		return 0, err
	}
	now := c.s.now().UTC()
	for _, v := range snap.instances {
		if v.connected {
			delete(c.disc, v.rec.ID)
		} else if _, ok := c.disc[v.rec.ID]; !ok {
			c.disc[v.rec.ID] = now
		}
	}
	tres, err := c.s.st.List(ctx, keyTasks+cluster+"/", store.ListOptions{})
	if err != nil {
		return 0, err
	}
	tasksByGroup := map[string][]taskRecord{}
	for _, kv := range tres.KVs {
		var t taskRecord
		if json.Unmarshal(kv.Value, &t) != nil || !strings.HasPrefix(t.Group, "service:") || !strings.HasPrefix(t.StartedBy, "ecs-svc/") {
			continue
		}
		tasksByGroup[t.Group] = append(tasksByGroup[t.Group], t)
	}
	var next time.Duration
	var firstErr error
	for _, name := range names {
		after, err := c.reconcileService(ctx, cluster, name, snap, tasksByGroup["service:"+name], now)
		if err != nil {
			c.s.log.Debug("service reconcile failed", "cluster", cluster, "service", name, "err", err)
			if firstErr == nil {
				firstErr = err
			}
		}
		if after > 0 && (next == 0 || after < next) {
			next = after
		}
	}
	return next, firstErr
}

// serviceRules are a service's placement rules, parsed.
func serviceRules(r *serviceRecord) ([]placement.Constraint, []placement.Strategy, error) {
	cons, err := placement.ConstraintsFromWire(r.PlacementConstraints)
	if err != nil {
		return nil, nil, err
	}
	strat, err := placement.StrategiesFromWire(r.PlacementStrategy)
	if err != nil {
		return nil, nil, err
	}
	if len(strat) == 0 && r.SchedulingStrategy != deploy.Daemon {
		strat = defaultServiceStrategies
	}
	return cons, strat, nil
}

func (c *serviceController) reconcileService(ctx context.Context, cluster, name string, snap *clusterSnapshot, tasks []taskRecord, now time.Time) (time.Duration, error) {
	r, _, err := c.s.getService(ctx, cluster, name)
	if err != nil {
		return 0, err
	}
	if r.Status == deploy.ServiceInactive {
		return 0, nil
	}
	cons, strat, err := serviceRules(&r)
	if err != nil {
		return 0, err
	}
	in := deploy.Input{
		Service: deploy.Service{
			Name: r.Name, Status: r.Status, Scheduling: r.SchedulingStrategy, DesiredCount: int(r.DesiredCount),
			MinHealthyPercent: int(r.MinHealthyPercent), MaxPercent: int(r.MaxPercent),
			CircuitBreaker:     r.CircuitBreaker != nil && deref(r.CircuitBreaker.Enable),
			Rollback:           r.CircuitBreaker != nil && deref(r.CircuitBreaker.Rollback),
			HealthCheckGrace:   time.Duration(r.HealthCheckGracePeriod) * time.Second,
			LastCompletedDepID: r.LastCompletedDeployment, LastCompletedTD: r.LastCompletedTaskDef,
			Steady: r.Steady,
		},
		Deployments:     r.Deployments,
		Now:             now,
		LostAfter:       c.cfg.LostAfter,
		NewDeploymentID: newDeploymentID(),
	}
	for _, st := range strat {
		in.Service.Strategies = append(in.Service.Strategies, deploy.Strategy{Type: string(st.Type), Field: st.Field})
	}
	// Eligibility of instances for a DAEMON service: the task definition's
	// required attributes and the service's constraints.
	var eligReq *placement.Request
	if r.SchedulingStrategy == deploy.Daemon && len(r.Deployments) > 0 {
		if spec, err := c.s.buildSpec(ctx, cluster, taskInput{taskDefinition: r.Deployments[0].TaskDefinition}); err == nil {
			tdc, _ := placement.TaskDefinitionConstraintsFromWire(spec.td.PlacementConstraints)
			eligReq = &placement.Request{RequiredAttributes: spec.req.RequiredAttributes, Constraints: append(tdc, cons...)}
		}
	}
	for _, v := range snap.instances {
		pi := v.placementInstance()
		inst := deploy.Instance{
			ID: v.rec.ID, EC2InstanceID: v.rec.Ec2InstanceID, Status: v.rec.Status, Connected: v.connected,
			DisconnectedSince: c.disc[v.rec.ID], Attributes: pi.Attributes,
			FreeCPU: pi.Remaining.CPU, FreeMemory: pi.Remaining.Memory,
		}
		if eligReq != nil && v.rec.Status == InstanceActive &&
			(v.connected || now.Sub(c.disc[v.rec.ID]) < c.cfg.LostAfter) {
			pi.AgentConnected = true
			pi.Tasks = nil
			pi.Remaining = pi.Registered
			pi.DynamicPortsInUse = 0
			inst.Eligible = placement.Check(pi, *eligReq) == nil
		}
		in.Instances = append(in.Instances, inst)
	}
	for _, t := range tasks {
		in.Tasks = append(in.Tasks, deploy.Task{
			ID: t.ID, DeploymentID: t.StartedBy, InstanceID: t.InstanceID, LastStatus: t.LastStatus,
			DesiredStatus: t.DesiredStatus, Health: t.HealthStatus, StopCode: t.StopCode, CreatedAt: t.CreatedAt,
			StartedAt: t.StartedAt, StoppingAt: t.StoppingAt, StoppedAt: t.StoppedAt,
		})
	}
	dec := deploy.Decide(in)

	events := dec.Events
	for _, st := range dec.Stop {
		if _, err := c.s.stopTaskRecord(ctx, cluster, st.TaskID, ecsapi.TaskStopCode(st.StopCode), st.Reason); err != nil && !errs.Is(err, errs.NotFound) {
			return 0, err
		}
	}
	if len(dec.Stop) > 0 {
		c.s.log.Info("service tasks stopping", "cluster", cluster, "service", name, "count", len(dec.Stop))
	}
	for _, st := range dec.Start {
		started, failMsg, err := c.start(ctx, &r, st, cons, strat)
		if err != nil {
			failMsg = "(service " + name + ") failed to launch a task: " + errs.MessageOf(err)
		}
		if len(started) > 0 {
			events = append(events, deploy.StartedMessage(name, started))
		}
		if failMsg != "" {
			events = append(events, failMsg)
		}
	}

	// Write back what the controller owns.
	decidedPrimary := ""
	if len(r.Deployments) > 0 {
		decidedPrimary = r.Deployments[0].ID
	}
	_, err = c.s.changeService(ctx, cluster, name, func(cur *serviceRecord) error {
		before, _ := json.Marshal(cur)
		curPrimary := ""
		if len(cur.Deployments) > 0 {
			curPrimary = cur.Deployments[0].ID
		}
		if cur.Status == r.Status && curPrimary == decidedPrimary && len(cur.Deployments) == len(r.Deployments) {
			deps := dec.Deployments
			if len(deps) > 0 && cur.SchedulingStrategy != deploy.Daemon && deps[0].ID == curPrimary {
				deps[0].DesiredCount = int(cur.DesiredCount) // a concurrent UpdateService wins
			}
			cur.Deployments = deps
			if dec.RolledBackTo != "" {
				cur.TaskDefinition = dec.RolledBackTo
			}
			if dec.CompletedDepID != "" {
				cur.LastCompletedDeployment, cur.LastCompletedTaskDef = dec.CompletedDepID, dec.CompletedTD
			}
			if cur.SchedulingStrategy == deploy.Daemon && cur.Status == deploy.ServiceActive {
				cur.DesiredCount = int32(dec.DesiredCount)
			}
			cur.Steady = dec.Steady
			cur.Status = dec.ServiceStatus
		}
		cur.RunningCount, cur.PendingCount = int32(dec.RunningCount), int32(dec.PendingCount)
		cur.Events = deploy.AppendEvents(cur.Events, events, now, newEventID)
		after, _ := json.Marshal(cur)
		if string(before) == string(after) {
			return errUnchanged
		}
		return nil
	})
	if err == errUnchanged {
		err = nil
	}
	if dec.ServiceStatus == deploy.ServiceInactive && r.Status != deploy.ServiceInactive {
		c.s.log.Info("service inactive", "cluster", cluster, "service", name)
	}
	return dec.RetryAfter, err
}

// errUnchanged aborts a service write that would change nothing.
var errUnchanged = errs.E(errs.Conflict, "unchanged")

// start places and commits the tasks of one Start. It returns the started
// task ids and, when some could not be placed, ECS's event for that.
func (c *serviceController) start(ctx context.Context, r *serviceRecord, st deploy.Start, cons []placement.Constraint, strat []placement.Strategy) ([]string, string, error) {
	in := taskInput{
		taskDefinition: st.TaskDefinition, group: "service:" + r.Name, startedBy: st.DeploymentID,
		managedTags: r.EnableECSManagedTags,
	}
	switch ecsapi.PropagateTags(r.PropagateTags) {
	case ecsapi.PropagateTagsService:
		in.tags = r.Tags
	case ecsapi.PropagateTagsTaskDefinition:
		in.propagateTags = ptr(ecsapi.PropagateTagsTaskDefinition)
	}
	spec, err := c.s.buildSpec(ctx, r.Cluster, in)
	if err != nil {
		return nil, "", err
	}
	tdc, err := placement.TaskDefinitionConstraintsFromWire(spec.td.PlacementConstraints)
	if err != nil {
		return nil, "", err
	}
	spec.req.Constraints = append(tdc, cons...)
	spec.req.Strategies = strat
	var failure *placement.Failure
	p, err := c.s.applyPlan(ctx, r.Cluster, func(snap *clusterSnapshot) (*plan, error) {
		failure = nil
		p := &plan{}
		now := c.s.now().UTC()
		if st.InstanceID != "" {
			v := snap.byID[st.InstanceID]
			if v == nil {
				return p, nil
			}
			if err := placement.Check(v.placementInstance(), spec.req); err != nil {
				if f, ok := failureOf(err); ok {
					failure = &f
					return p, nil
				}
				return nil, err
			}
			p.tasks = append(p.tasks, placedTask{rec: c.s.newTask(r.Cluster, spec, v, now), req: &spec.req})
			return p, nil
		}
		insts := make([]placement.Instance, 0, len(snap.instances))
		for _, v := range snap.instances {
			insts = append(insts, v.placementInstance())
		}
		placements, failures := placement.Place(insts, spec.req, st.Count, c.rng)
		if len(failures) > 0 {
			failure = &failures[0]
		}
		for _, pl := range placements {
			p.tasks = append(p.tasks, placedTask{rec: c.s.newTask(r.Cluster, spec, snap.byID[pl.InstanceID], now), req: &spec.req})
		}
		return p, nil
	})
	if err != nil {
		return nil, "", err
	}
	var ids []string
	for _, t := range p.tasks {
		ids = append(ids, t.rec.ID)
	}
	msg := ""
	if failure != nil {
		msg = placement.UnableToPlaceMessage(r.Name, *failure)
	}
	if len(ids) > 0 {
		c.s.log.Info("service tasks started", "cluster", r.Cluster, "service", r.Name, "deployment", st.DeploymentID, "count", len(ids))
	}
	return ids, msg, nil
}
