package ecs

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// The service controller: the thin shell around deploy.Decide. It watches
// everything under /berth/ecs/ (services, tasks, instances, agent
// presence) with a periodic resync as a safety net, and on a change (a
// burst of changes coalesced into one pass) reconciles each service: it
// reads each cluster once (instances, all tasks, agent presence: one
// snapshot), reads the service, calls deploy.Decide with `now`, stops
// tasks through stopTaskRecord, starts tasks through the applier
// (commitPlan, which re-checks capacity at commit) in batches that fit one
// transaction, planned on the pass's snapshot (kept current by each
// commit, read again on contention), and writes the deployments, counts
// and events back under a compare on the service record.
// docs/services.md.

// ServiceControllerConfig tunes the service controller.
type ServiceControllerConfig struct {
	// Resync is how often every service is reconciled without a change
	// (time-based decisions: DAEMON eligibility, back-off). Default 2 s.
	Resync time.Duration
	// DisconnectGrace is how long an instance's agent may be disconnected
	// before the instance is unreachable: its service tasks are then
	// started elsewhere (the old ones are left running), and it is no
	// longer eligible for DAEMON tasks (lostinstances.go). Default
	// DefaultDisconnectGrace.
	DisconnectGrace time.Duration
	// Observer is told about the controller's work (metrics); nil: none.
	Observer SchedulerObserver
}

// SchedulerObserver is told about the service controller's work. Its
// methods are called from the controller's goroutines, so they must be safe
// for concurrent use, cheap, and must not block.
type SchedulerObserver interface {
	// ServicePass reports one reconciliation pass over every service: how
	// long it took and whether it failed.
	ServicePass(took time.Duration, err error)
	// TasksPlaced reports n service tasks placed and committed.
	TasksPlaced(n int)
	// PlacementFailed reports a Start that could not place (all) its tasks,
	// with placement's reason (placement.Reason* constants).
	PlacementFailed(reason string)
}

// nopSchedulerObserver is the Observer when none is configured.
type nopSchedulerObserver struct{}

func (nopSchedulerObserver) ServicePass(time.Duration, error) {}
func (nopSchedulerObserver) TasksPlaced(int)                  {}
func (nopSchedulerObserver) PlacementFailed(string)           {}

// defaultServiceStrategies is the placement of a REPLICA service without
// strategies: spread across Availability Zones, then across instances
// (ECS's "AZ balanced spread").
var defaultServiceStrategies = []placement.Strategy{
	{Type: placement.Spread, Field: "attribute:ecs.availability-zone"},
	{Type: placement.Spread, Field: placement.FieldInstanceID},
}

type serviceController struct {
	s   *Service
	cfg ServiceControllerConfig
	rng *rand.Rand
	// reach times each instance's disconnections (decideReachable), per
	// cluster; mu guards it.
	mu    sync.Mutex
	reach map[string]reachClock
	// started counts the tasks passes have started.
	started atomic.Int64
	// failing rate-limits error logs.
	failing bool
}

// RunServiceController runs the service controller until ctx ends.
func (s *Service) RunServiceController(ctx context.Context, cfg ServiceControllerConfig) {
	if cfg.Resync <= 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.DisconnectGrace <= 0 {
		cfg.DisconnectGrace = DefaultDisconnectGrace
	}
	if cfg.Observer == nil {
		cfg.Observer = nopSchedulerObserver{}
	}
	c := &serviceController{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), reach: map[string]reachClock{}}
	kick := make(chan struct{}, 1)
	go kickOnChange(ctx, s.st, "/berth/ecs/", skipForServices, kick)
	tick := time.NewTicker(cfg.Resync)
	defer tick.Stop()
	var retry <-chan time.Time
	var lastPass time.Duration
	placed := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		case <-retry:
		}
		// Coalesce a burst of changes into one pass: wait 20 ms after a
		// pass that started tasks (services created meanwhile wait for
		// the next pass: go on placing), otherwise half as long as the
		// last pass took (at most 500 ms), so that a busy cluster, where
		// every task report is a change, does not spend all its time
		// re-reading itself.
		wait := 20 * time.Millisecond
		if !placed {
			wait = min(max(wait, lastPass/2), 500*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		select {
		case <-kick:
		default:
		}
		t0 := time.Now()
		before := c.started.Load()
		after, err := c.pass(ctx)
		lastPass = time.Since(t0)
		placed = c.started.Load() != before
		if ctx.Err() == nil {
			cfg.Observer.ServicePass(lastPass, err)
		}
		s.log.Debug("service controller pass", "took", lastPass)
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

// skipForServices tells which changes under /berth/ecs/ the service
// controller ignores: assignment index entries (they move with their
// tasks) and client tokens.
func skipForServices(key string) bool {
	return strings.HasPrefix(key, keyAssign) || strings.HasPrefix(key, keyClientTokens)
}

// kickOnChange sends on kick (without blocking) whenever a key under
// prefix changes, except keys skip (when set) reports; it re-opens the
// watch after errors, with back-off, until ctx ends.
func kickOnChange(ctx context.Context, st store.Store, prefix string, skip func(string) bool, kick chan<- struct{}) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		for wr := range st.Watch(ctx, prefix, 0) {
			if wr.Err != nil {
				break
			}
			backoff = 100 * time.Millisecond
			for _, e := range wr.Events {
				if skip != nil && skip(e.KV.Key) {
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
	byCluster := map[string][]listedService{}
	var order []string
	for _, kv := range res.KVs {
		var r serviceRecord
		if json.Unmarshal(kv.Value, &r) != nil || r.Status == deploy.ServiceInactive {
			continue
		}
		cluster, name, ok := strings.Cut(strings.TrimPrefix(kv.Key, keyServices), "/")
		if !ok {
			continue
		}
		if _, seen := byCluster[cluster]; !seen {
			order = append(order, cluster)
		}
		byCluster[cluster] = append(byCluster[cluster], listedService{name: name, rec: r, rev: kv.ModRevision})
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

// listedService is a service record as a pass listed it.
type listedService struct {
	name string
	rec  serviceRecord
	rev  int64
}

func (c *serviceController) reconcileCluster(ctx context.Context, cluster string, services []listedService) (time.Duration, error) {
	snap, err := c.s.readSnapshot(ctx, cluster, true)
	if err != nil {
		return 0, err
	}
	now := c.s.now().UTC()
	view := make([]instancePresence, 0, len(snap.instances))
	for _, v := range snap.instances {
		view = append(view, instancePresence{ID: v.rec.ID, Cluster: v.rec.Cluster, Status: v.rec.Status, Connected: v.connected})
	}
	c.mu.Lock()
	var unreachable map[string]bool
	var wake time.Duration
	c.reach[cluster], unreachable, wake = decideReachable(view, c.reach[cluster], now, c.cfg.DisconnectGrace)
	c.mu.Unlock()
	tasksByGroup := map[string][]taskRecord{}
	for _, t := range snap.all {
		if !strings.HasPrefix(t.Group, "service:") || !strings.HasPrefix(t.StartedBy, "ecs-svc/") {
			continue
		}
		tasksByGroup[t.Group] = append(tasksByGroup[t.Group], t)
	}
	snap.all = nil
	cp := &clusterPass{cluster: cluster, snap: snap}
	if err := c.s.fargatePass(ctx, cp, services); err != nil {
		return 0, err
	}
	var (
		mu       sync.Mutex
		next     = wake // look again when an instance's reachability changes
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan listedService)
	for range min(serviceWorkers, len(services)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ls := range work {
				after, err := c.reconcileService(ctx, cluster, ls, cp, tasksByGroup["service:"+ls.name], unreachable, now)
				if err != nil {
					c.s.log.Debug("service reconcile failed", "cluster", cluster, "service", ls.name, "err", err)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if after > 0 && (next == 0 || after < next) {
					next = after
				}
				mu.Unlock()
			}
		}()
	}
	for _, ls := range services {
		work <- ls
	}
	close(work)
	wg.Wait()
	return next, firstErr
}

// serviceWorkers is how many services of a cluster a pass reconciles at
// once. Placement itself is one at a time (clusterPass.mu); the workers
// overlap the rest, the store round trips that read and write a service.
const serviceWorkers = 8

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

// clusterPass is what a pass shares between the services of a cluster:
// the snapshot placement plans on. Commits keep it current for the
// instances they write; on contention it is read again.
type clusterPass struct {
	cluster string
	// mu serialises the use of snap: deciding on it, and placing and
	// committing on it (each commit updates it).
	mu   sync.Mutex
	snap *clusterSnapshot
	// fargate holds the Fargate hosts when the cluster has a Fargate
	// service (fargate_service.go).
	fargate *clusterSnapshot
}

// reconcileService decides on the service record the pass listed (ls)
// and, when the decision starts or stops tasks, on the record read again
// just before acting. The write-back compares on the revision decided on
// (and falls back to changeService's read-modify-write when the record
// moved); a decision that changes nothing writes nothing. So a service
// with nothing to do costs no store round trip.
func (c *serviceController) reconcileService(ctx context.Context, cluster string, ls listedService, cp *clusterPass, tasks []taskRecord, unreachable map[string]bool, now time.Time) (time.Duration, error) {
	name := ls.name
	r, rev := ls.rec, ls.rev
	if r.Status == deploy.ServiceInactive {
		return 0, nil
	}
	dec, cons, strat, err := c.decide(ctx, cluster, &r, cp, tasks, unreachable, now)
	if err != nil {
		return 0, err
	}
	if len(dec.Start) > 0 || len(dec.Stop) > 0 {
		fresh, frev, err := c.s.getService(ctx, cluster, name)
		if err != nil {
			return 0, err
		}
		if frev != rev {
			r, rev = fresh, frev
			if r.Status == deploy.ServiceInactive {
				return 0, nil
			}
			if dec, cons, strat, err = c.decide(ctx, cluster, &r, cp, tasks, unreachable, now); err != nil {
				return 0, err
			}
		}
	}
	return c.act(ctx, cluster, name, cp, r, rev, dec, cons, strat, now)
}

// decide runs deploy.Decide for a service on the pass's snapshot.
func (c *serviceController) decide(ctx context.Context, cluster string, rp *serviceRecord, cp *clusterPass, tasks []taskRecord, unreachable map[string]bool, now time.Time) (deploy.Decision, []placement.Constraint, []placement.Strategy, error) {
	r := *rp
	cons, strat, err := serviceRules(&r)
	if err != nil {
		return deploy.Decision{}, nil, nil, err
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
	lbTargets, lbStates, err := c.serviceTargetHealth(ctx, &r, cp, tasks)
	if err != nil {
		return deploy.Decision{}, nil, nil, err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, v := range cp.snap.instances {
		pi := v.placementInstance()
		inst := deploy.Instance{
			ID: v.rec.ID, EC2InstanceID: v.rec.Ec2InstanceID, Status: v.rec.Status, Connected: v.connected,
			Unreachable: unreachable[v.rec.ID],
			Attributes:  pi.Attributes, FreeCPU: pi.Remaining.CPU, FreeMemory: pi.Remaining.Memory,
		}
		// A DAEMON task's instance stays eligible while its agent is
		// disconnected for less than the grace.
		if eligReq != nil && v.rec.Status == InstanceActive && !inst.Unreachable {
			pi.AgentConnected = true
			pi.Tasks = nil
			pi.Remaining = pi.Registered
			pi.DynamicPortsInUse = 0
			inst.Eligible = placement.Check(pi, *eligReq) == nil
		}
		in.Instances = append(in.Instances, inst)
	}
	in.Instances = append(in.Instances, cp.fargateInstances()...)
	for _, t := range tasks {
		in.Tasks = append(in.Tasks, deploy.Task{
			ID: t.ID, DeploymentID: t.StartedBy, InstanceID: t.InstanceID, LastStatus: t.LastStatus,
			DesiredStatus: t.DesiredStatus, Health: t.HealthStatus, StopCode: t.StopCode, CreatedAt: t.CreatedAt,
			StartedAt: t.StartedAt, StoppingAt: t.StoppingAt, StoppedAt: t.StoppedAt,
		})
	}
	providerDeployInput(&r, &in, tasks) // asgproviders.go
	return decideWithTargets(in, r.LoadBalancers, lbTargets, lbStates), cons, strat, nil
}

// act carries out a decision on service r (read at revision rev): stops,
// starts, and the write-back of what the controller owns.
func (c *serviceController) act(ctx context.Context, cluster, name string, cp *clusterPass, r serviceRecord, rev int64, dec deploy.Decision, cons []placement.Constraint, strat []placement.Strategy, now time.Time) (time.Duration, error) {
	events := dec.Events
	drain := c.drainFunc(ctx, &r)
	for _, st := range dec.Stop {
		if _, err := c.s.stopTaskHeld(ctx, cluster, st.TaskID, ecsapi.TaskStopCode(st.StopCode), st.Reason, drain); err != nil && !errs.Is(err, errs.NotFound) {
			return 0, err
		}
	}
	if len(dec.Stop) > 0 {
		c.s.log.Info("service tasks stopping", "cluster", cluster, "service", name, "count", len(dec.Stop))
	}
	for _, st := range dec.Start {
		started, failMsg, err := c.start(ctx, cp, &r, st, cons, strat)
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
	change := func(cur *serviceRecord) error {
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
			if cur.Status == deploy.ServiceInactive && cur.InactiveAt == nil {
				cur.InactiveAt = &now
			}
		}
		cur.RunningCount, cur.PendingCount = int32(dec.RunningCount), int32(dec.PendingCount)
		cur.Events = deploy.AppendEvents(cur.Events, events, now, newEventID)
		after, _ := json.Marshal(cur)
		if string(before) == string(after) {
			return errUnchanged
		}
		return nil
	}
	err := c.writeService(ctx, cluster, name, r, rev, change)
	if dec.ServiceStatus == deploy.ServiceInactive && r.Status != deploy.ServiceInactive {
		c.s.log.Info("service inactive", "cluster", cluster, "service", name)
	}
	return dec.RetryAfter, err
}

// writeService applies change to r, the service record as read at rev,
// and writes it under a compare on rev; when the record moved meanwhile it
// falls back to changeService (read, change, compare-and-swap). A change
// that returns errUnchanged writes nothing.
func (c *serviceController) writeService(ctx context.Context, cluster, name string, r serviceRecord, rev int64, change func(*serviceRecord) error) error {
	b, err := json.Marshal(r)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode service")
	}
	var cur serviceRecord // a deep copy: change may modify what it is given
	if err := json.Unmarshal(b, &cur); err != nil {
		return errs.Wrap(errs.Internal, err, "decode service")
	}
	if err := change(&cur); err != nil {
		if err == errUnchanged {
			return nil
		}
		return err
	}
	cur.Version++
	nb, _ := json.Marshal(cur)
	key := serviceKey(cluster, name)
	res, err := c.s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, rev)}, store.Put(key, nb))
	if err != nil {
		return err
	}
	if res.Succeeded {
		return nil
	}
	if _, err = c.s.changeService(ctx, cluster, name, change); err == errUnchanged {
		err = nil
	}
	return err
}

// errUnchanged aborts a service write that would change nothing.
var errUnchanged = errs.E(errs.Conflict, "unchanged")

// start places and commits the tasks of one Start, in batches of at most
// maxBatchTasks (one transaction each), planned on the pass's snapshot. It
// returns the started task ids and, when some could not be placed, ECS's
// event for that.
func (c *serviceController) start(ctx context.Context, cp *clusterPass, r *serviceRecord, st deploy.Start, cons []placement.Constraint, strat []placement.Strategy) ([]string, string, error) {
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
	r.launchInput(&in)
	spec, err := c.s.buildSpec(ctx, r.Cluster, in)
	if err != nil {
		return nil, "", err
	}
	if spec.fargate != nil {
		return c.startFargate(ctx, r, spec, st.DeploymentID, st.Count)
	}
	tdc, err := placement.TaskDefinitionConstraintsFromWire(spec.td.PlacementConstraints)
	if err != nil {
		return nil, "", err
	}
	spec.req.Constraints = append(tdc, cons...)
	spec.req.Strategies = strat
	if err := c.s.serviceConnectSpec(ctx, r, st.DeploymentID, spec); err != nil {
		return nil, "", err
	}
	ids, failure, err := c.placeStrategy(ctx, cp, r, st, spec) // asgproviders.go; placeAll without a strategy
	if err != nil {
		return ids, "", err
	}
	msg := ""
	if failure != nil {
		msg = placement.UnableToPlaceMessage(r.Name, *failure)
		c.cfg.Observer.PlacementFailed(failure.Reason)
	}
	if len(ids) > 0 {
		c.s.log.Info("service tasks started", "cluster", r.Cluster, "service", r.Name, "deployment", st.DeploymentID, "count", len(ids))
	}
	return ids, msg, nil
}

// placeAll places a Start's tasks batch by batch until all are placed or
// the cluster is full for them (failure says why); on contention it reads
// the cluster again and plans the rest on it.
func (c *serviceController) placeAll(ctx context.Context, cp *clusterPass, cluster string, st deploy.Start, spec *taskSpec) ([]string, *placement.Failure, error) {
	var failure *placement.Failure
	var ids []string
	remaining := st.Count
	if st.InstanceID != "" {
		remaining = 1
	}
	for attempt := 0; remaining > 0; {
		placed, f, ok, err := c.placeBatch(ctx, cp, cluster, st.InstanceID, spec, remaining)
		if err != nil {
			return ids, nil, err
		}
		failure = f
		if ok {
			ids = append(ids, placed...)
			remaining -= len(placed)
			if failure != nil || len(placed) == 0 {
				break // the cluster is full for this service
			}
			continue
		}
		// Contention (or an instance changed): read the cluster again and
		// plan the rest on it, with a little back-off.
		attempt++
		if attempt >= maxPlanAttempts {
			return ids, nil, errs.E(errs.Unavailable, "too many concurrent placements on cluster %s; retry", cluster)
		}
		d := time.Duration(rand.IntN(attempt)+1) * 3 * time.Millisecond
		select {
		case <-ctx.Done():
			return ids, nil, errs.Wrap(errs.Unavailable, ctx.Err(), "placement interrupted")
		case <-time.After(d):
		}
		fresh, err := c.s.snapshot(ctx, cluster)
		if err != nil {
			return ids, nil, err
		}
		cp.mu.Lock()
		cp.snap = fresh
		cp.mu.Unlock()
	}
	return ids, failure, nil
}

// placeBatch places and commits at most one transaction's worth of a
// Start's remaining tasks on the pass's snapshot, holding it for the
// whole plan and commit. ok false means the commit lost a compare (plan
// again on a fresh snapshot); ok true with no task placed means nothing
// fits (failure says why).
func (c *serviceController) placeBatch(ctx context.Context, cp *clusterPass, cluster, instanceID string, spec *taskSpec, remaining int) ([]string, *placement.Failure, bool, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	snap := cp.snap
	p := &plan{}
	now := c.s.now().UTC()
	var failure *placement.Failure
	if instanceID != "" {
		v := snap.byID[instanceID]
		if v == nil {
			return nil, nil, true, nil
		}
		if err := placement.Check(v.placementInstance(), spec.req); err != nil {
			if f, ok := failureOf(err); ok {
				return nil, &f, true, nil
			}
			return nil, nil, false, err
		}
		p.tasks = append(p.tasks, placedTask{rec: c.s.newTask(cluster, spec, v, now), req: &spec.req})
	} else {
		insts := make([]placement.Instance, 0, len(snap.instances))
		for _, v := range snap.instances {
			if spec.inPool(v) { // asgproviders.go
				insts = append(insts, v.placementInstance())
			}
		}
		placements, failures := placement.Place(insts, spec.req, min(remaining, c.s.maxBatchTasks()), c.rng)
		if len(failures) > 0 {
			f := spec.poolFailure(failures[0])
			failure = &f
		}
		for _, pl := range placements {
			p.tasks = append(p.tasks, placedTask{rec: c.s.newTask(cluster, spec, snap.byID[pl.InstanceID], now), req: &spec.req})
		}
	}
	if len(p.tasks) == 0 {
		return nil, failure, true, nil
	}
	ok, err := c.s.commitPlan(ctx, snap, p)
	if err != nil && errs.ReasonOf(err) != placement.Unplaceable {
		return nil, nil, false, err
	}
	if !ok {
		return nil, failure, false, nil
	}
	c.started.Add(int64(len(p.tasks)))
	c.cfg.Observer.TasksPlaced(len(p.tasks))
	ids := make([]string, len(p.tasks))
	for i, t := range p.tasks {
		ids[i] = t.rec.ID
	}
	return ids, failure, true, nil
}
