// Package servicectl is ECS's service controller: the thin shell around
// deploy.Decide. It watches everything under /berth/ecs/ (services, tasks,
// instances, agent presence) with a periodic resync as a safety net, and
// on a change (a burst of changes coalesced into one pass) reconciles each
// service: it reads each cluster once (instances, all tasks, agent
// presence: one snapshot, tasklife.ReadSnapshot), reads the service, calls
// deploy.Decide with `now`, stops tasks through the handlers' stop path
// (Tasks.StopTask), starts tasks through the applier (tasklife.CommitPlan,
// which re-checks capacity at commit) in batches that fit one
// transaction, planned on the pass's snapshot (kept current by each
// commit, read again on contention), and writes the deployments, counts
// and events back under a compare on the service record.
// docs/services.md; docs/ecs.md, "Package layout".
package servicectl

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/placement"
	"github.com/berthdev/berth/internal/store"
)

// Config configures the service controller.
type Config struct {
	// Store holds ECS's records (package ecsstate). Required.
	Store store.Store
	// Tasks is the task lifecycle the controller shares with ECS's API
	// handlers. Required.
	Tasks Tasks
	// Log is where the controller logs; nil: nowhere.
	Log *slog.Logger
	// Resync is how often every service is reconciled without a change
	// (time-based decisions: DAEMON eligibility, back-off). Default 2 s.
	Resync time.Duration
	// DisconnectGrace is how long an instance's agent may be disconnected
	// before the instance is unreachable: its service tasks are then
	// started elsewhere (the old ones are left running), and it is no
	// longer eligible for DAEMON tasks (ecsstate.DecideReachable). Default
	// ecsstate.DefaultDisconnectGrace.
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

// The controller's steps, in the order a pass takes them (each a function
// with its input and output; the pure ones take `now` and touch no store):
//
//	run            loop: wait for a change, the resync or a back-off; coalesce (coalesceWait); pass; report (observePass)
//	pass           list the services (groupServices, pure), reconcile each cluster, keep the soonest back-off
//	reconcileCluster  read the cluster once; reachability (presenceOf, ecsstate.DecideReachable: pure);
//	               the services' tasks (tasksByService, pure); Fargate hosts; reconcile its services in parallel
//	reconcileService  decide on the listed record; act on it, or on the record read again when the decision moves tasks
//	decide         placement rules (serviceRules), DAEMON eligibility, target health;
//	               the decision's input (deployInput, pure) and deploy.Decide
//	act            stop (stopTasks), start (startTasks), write back (applyDecision, pure; writeService)
//	start          the task spec (serviceTaskInput, pure); place all (placeAll: placeBatch per transaction,
//	               planBatch pure but for the random spread; refreshSnapshot on contention); the outcome's event
type controller struct {
	st    store.Store
	tasks Tasks
	log   *slog.Logger
	cfg   Config
	rng   *rand.Rand
	// reach times each instance's disconnections (ecsstate.DecideReachable), per
	// cluster; mu guards it.
	mu    sync.Mutex
	reach map[string]ecsstate.ReachClock
	// started counts the tasks passes have started.
	started atomic.Int64
	// failing rate-limits error logs.
	failing bool
}

// Run runs the service controller until ctx ends.
func Run(ctx context.Context, cfg Config) {
	newController(cfg).run(ctx)
}

// newController applies cfg's defaults.
func newController(cfg Config) *controller {
	if cfg.Resync <= 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.DisconnectGrace <= 0 {
		cfg.DisconnectGrace = ecsstate.DefaultDisconnectGrace
	}
	if cfg.Observer == nil {
		cfg.Observer = nopSchedulerObserver{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &controller{st: cfg.Store, tasks: cfg.Tasks, log: cfg.Log, cfg: cfg,
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), reach: map[string]ecsstate.ReachClock{}}
}

// run passes on every change under /berth/ecs/ (but skipForServices),
// every Resync, and when a service asked to be looked at again.
func (c *controller) run(ctx context.Context) {
	kick := make(chan struct{}, 1)
	go ecsstate.KickOnChange(ctx, c.st, "/berth/ecs/", skipForServices, kick)
	tick := time.NewTicker(c.cfg.Resync)
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
		select {
		case <-ctx.Done():
			return
		case <-time.After(coalesceWait(placed, lastPass)):
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
		c.observePass(ctx, lastPass, err)
		retry = nil
		if after > 0 {
			retry = time.After(after)
		}
	}
}

// coalesceWait is how long a pass waits after its trigger so that a burst
// of changes makes one pass: 20 ms after a pass that started tasks
// (services created meanwhile wait for the next pass: go on placing),
// otherwise half as long as the last pass took (at most 500 ms), so that a
// busy cluster, where every task report is a change, does not spend all
// its time re-reading itself.
func coalesceWait(placed bool, lastPass time.Duration) time.Duration {
	wait := 20 * time.Millisecond
	if !placed {
		wait = min(max(wait, lastPass/2), 500*time.Millisecond)
	}
	return wait
}

// observePass tells the observer about a pass and logs a failure once
// until a pass succeeds again.
func (c *controller) observePass(ctx context.Context, took time.Duration, err error) {
	if ctx.Err() == nil {
		c.cfg.Observer.ServicePass(took, err)
	}
	c.log.Debug("service controller pass", "took", took)
	switch {
	case err != nil && ctx.Err() == nil:
		if !c.failing {
			c.log.Warn("service controller pass failed", "err", err)
		}
		c.failing = true
	case err == nil:
		if c.failing {
			c.log.Info("service controller recovered")
		}
		c.failing = false
	}
}

// skipForServices tells which changes under /berth/ecs/ the service
// controller ignores: assignment index entries (they move with their
// tasks) and client tokens.
func skipForServices(key string) bool {
	return strings.HasPrefix(key, ecsstate.KeyAssign) || strings.HasPrefix(key, ecsstate.KeyClientTokens)
}

// pass reconciles every service once. It returns how soon a service
// asked to be looked at again (back-off), 0 for the next resync.
func (c *controller) pass(ctx context.Context) (time.Duration, error) {
	res, err := c.st.List(ctx, ecsstate.KeyServices, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	order, byCluster := groupServices(res.KVs)
	var next time.Duration
	var firstErr error
	for _, cluster := range order {
		after, err := c.reconcileCluster(ctx, cluster, byCluster[cluster])
		if err != nil && firstErr == nil {
			firstErr = err
		}
		next = soonest(next, after)
	}
	return next, firstErr
}

// listedService is a service record as a pass listed it.
type listedService struct {
	name string
	rec  ecsstate.ServiceRecord
	rev  int64
}

// groupServices groups the listed service records that are not INACTIVE
// by cluster, clusters in the order first seen.
func groupServices(kvs []store.KV) (order []string, byCluster map[string][]listedService) {
	byCluster = map[string][]listedService{}
	for _, kv := range kvs {
		var r ecsstate.ServiceRecord
		if json.Unmarshal(kv.Value, &r) != nil || r.Status == deploy.ServiceInactive {
			continue
		}
		cluster, name, ok := strings.Cut(strings.TrimPrefix(kv.Key, ecsstate.KeyServices), "/")
		if !ok {
			continue
		}
		if _, seen := byCluster[cluster]; !seen {
			order = append(order, cluster)
		}
		byCluster[cluster] = append(byCluster[cluster], listedService{name: name, rec: r, rev: kv.ModRevision})
	}
	return order, byCluster
}

// soonest is the sooner of two back-offs, 0 meaning none.
func soonest(a, b time.Duration) time.Duration {
	if b > 0 && (a == 0 || b < a) {
		return b
	}
	return a
}

// reconcileCluster reconciles the services of one cluster on one read of
// the cluster.
func (c *controller) reconcileCluster(ctx context.Context, cluster string, services []listedService) (time.Duration, error) {
	snap, err := tasklife.ReadSnapshot(ctx, c.st, c.log, cluster, true)
	if err != nil {
		return 0, err
	}
	now := c.tasks.Now().UTC()
	unreachable, wake := c.reachability(cluster, snap, now)
	tasksByGroup := tasksByService(snap.All)
	snap.All = nil
	cp := &clusterPass{cluster: cluster, snap: snap}
	if err := c.fargatePass(ctx, cp, services); err != nil {
		return 0, err
	}
	next, err := c.reconcileServices(ctx, cp, services, tasksByGroup, unreachable, now)
	return soonest(wake, next), err // look again when an instance's reachability changes
}

// reachability advances the cluster's reachability clock on snap: the
// instances unreachable now, and when that next changes.
func (c *controller) reachability(cluster string, snap *tasklife.Snapshot, now time.Time) (map[string]bool, time.Duration) {
	view := presenceOf(snap)
	c.mu.Lock()
	defer c.mu.Unlock()
	var unreachable map[string]bool
	var wake time.Duration
	c.reach[cluster], unreachable, wake = ecsstate.DecideReachable(view, c.reach[cluster], now, c.cfg.DisconnectGrace)
	return unreachable, wake
}

// presenceOf is the presence of a snapshot's instances.
func presenceOf(snap *tasklife.Snapshot) []ecsstate.InstancePresence {
	view := make([]ecsstate.InstancePresence, 0, len(snap.Instances))
	for _, v := range snap.Instances {
		view = append(view, ecsstate.InstancePresence{ID: v.Rec.ID, Cluster: v.Rec.Cluster, Status: v.Rec.Status, Connected: v.Connected})
	}
	return view
}

// tasksByService groups the tasks that services started by their group
// ("service:<name>").
func tasksByService(all []ecsstate.TaskRecord) map[string][]ecsstate.TaskRecord {
	byGroup := map[string][]ecsstate.TaskRecord{}
	for _, t := range all {
		if !strings.HasPrefix(t.Group, "service:") || !strings.HasPrefix(t.StartedBy, "ecs-svc/") {
			continue
		}
		byGroup[t.Group] = append(byGroup[t.Group], t)
	}
	return byGroup
}

// reconcileServices reconciles a cluster's services, serviceWorkers at a
// time; it returns the soonest back-off asked for and the first error.
func (c *controller) reconcileServices(ctx context.Context, cp *clusterPass, services []listedService, tasksByGroup map[string][]ecsstate.TaskRecord, unreachable map[string]bool, now time.Time) (time.Duration, error) {
	var (
		mu       sync.Mutex
		next     time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan listedService)
	for range min(serviceWorkers, len(services)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ls := range work {
				after, err := c.reconcileService(ctx, cp.cluster, ls, cp, tasksByGroup["service:"+ls.name], unreachable, now)
				if err != nil {
					c.log.Debug("service reconcile failed", "cluster", cp.cluster, "service", ls.name, "err", err)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				next = soonest(next, after)
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
func serviceRules(r *ecsstate.ServiceRecord) ([]placement.Constraint, []placement.Strategy, error) {
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
	snap *tasklife.Snapshot
	// fargate holds the Fargate hosts when the cluster has a Fargate
	// service (fargate_service.go).
	fargate *tasklife.Snapshot
}

// reconcileService decides on the service record the pass listed (ls)
// and, when the decision starts or stops tasks, on the record read again
// just before acting. The write-back compares on the revision decided on
// (and falls back to changeService's read-modify-write when the record
// moved); a decision that changes nothing writes nothing. So a service
// with nothing to do costs no store round trip.
func (c *controller) reconcileService(ctx context.Context, cluster string, ls listedService, cp *clusterPass, tasks []ecsstate.TaskRecord, unreachable map[string]bool, now time.Time) (time.Duration, error) {
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
		fresh, frev, err := tasklife.GetService(ctx, c.st, cluster, name)
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
func (c *controller) decide(ctx context.Context, cluster string, rp *ecsstate.ServiceRecord, cp *clusterPass, tasks []ecsstate.TaskRecord, unreachable map[string]bool, now time.Time) (deploy.Decision, []placement.Constraint, []placement.Strategy, error) {
	r := *rp
	cons, strat, err := serviceRules(&r)
	if err != nil {
		return deploy.Decision{}, nil, nil, err
	}
	eligReq := c.daemonEligibility(ctx, cluster, &r, cons)
	lbTargets, lbStates, err := c.serviceTargetHealth(ctx, &r, cp, tasks)
	if err != nil {
		return deploy.Decision{}, nil, nil, err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	in := deployInput(&r, strat, eligReq, cp.snap.Instances, cp.fargateInstances(), tasks, unreachable, now, tasklife.NewDeploymentID())
	providerDeployInput(&r, &in, tasks) // asgplacement.go
	return decideWithTargets(in, r.LoadBalancers, lbTargets, lbStates), cons, strat, nil
}

// daemonEligibility is what makes an instance eligible for a DAEMON
// service's tasks: its task definition's required attributes and the
// service's constraints; nil for other services (or when the task
// definition cannot be read).
func (c *controller) daemonEligibility(ctx context.Context, cluster string, r *ecsstate.ServiceRecord, cons []placement.Constraint) *placement.Request {
	if r.SchedulingStrategy != deploy.Daemon || len(r.Deployments) == 0 {
		return nil
	}
	spec, err := c.tasks.BuildSpec(ctx, cluster, tasklife.TaskInput{TaskDefinition: r.Deployments[0].TaskDefinition})
	if err != nil {
		return nil
	}
	tdc, _ := placement.TaskDefinitionConstraintsFromWire(spec.TD.PlacementConstraints)
	return &placement.Request{RequiredAttributes: spec.Req.RequiredAttributes, Constraints: append(tdc, cons...)}
}

// deployInput is deploy.Decide's input for service r: the service, its
// tasks, the cluster's instances (with their eligibility for a DAEMON
// service when eligReq is set) and Fargate hosts, at now; newDepID names a
// deployment the decision may start. Pure.
func deployInput(r *ecsstate.ServiceRecord, strat []placement.Strategy, eligReq *placement.Request, instances []*tasklife.InstanceView, fargate []deploy.Instance, tasks []ecsstate.TaskRecord, unreachable map[string]bool, now time.Time, newDepID string) deploy.Input {
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
		NewDeploymentID: newDepID,
	}
	for _, st := range strat {
		in.Service.Strategies = append(in.Service.Strategies, deploy.Strategy{Type: string(st.Type), Field: st.Field})
	}
	for _, v := range instances {
		pi := v.PlacementInstance()
		inst := deploy.Instance{
			ID: v.Rec.ID, EC2InstanceID: v.Rec.Ec2InstanceID, Status: v.Rec.Status, Connected: v.Connected,
			Unreachable: unreachable[v.Rec.ID],
			Attributes:  pi.Attributes, FreeCPU: pi.Remaining.CPU, FreeMemory: pi.Remaining.Memory,
		}
		// A DAEMON task's instance stays eligible while its agent is
		// disconnected for less than the grace.
		if eligReq != nil && v.Rec.Status == ecsstate.InstanceActive && !inst.Unreachable {
			pi.AgentConnected = true
			pi.Tasks = nil
			pi.Remaining = pi.Registered
			pi.DynamicPortsInUse = 0
			inst.Eligible = placement.Check(pi, *eligReq) == nil
		}
		in.Instances = append(in.Instances, inst)
	}
	in.Instances = append(in.Instances, fargate...)
	for _, t := range tasks {
		in.Tasks = append(in.Tasks, deploy.Task{
			ID: t.ID, DeploymentID: t.StartedBy, InstanceID: t.InstanceID, LastStatus: t.LastStatus,
			DesiredStatus: t.DesiredStatus, Health: t.HealthStatus, StopCode: t.StopCode, CreatedAt: t.CreatedAt,
			StartedAt: t.StartedAt, StoppingAt: t.StoppingAt, StoppedAt: t.StoppedAt,
		})
	}
	return in
}

// act carries out a decision on service r (read at revision rev): stops,
// starts, and the write-back of what the controller owns.
func (c *controller) act(ctx context.Context, cluster, name string, cp *clusterPass, r ecsstate.ServiceRecord, rev int64, dec deploy.Decision, cons []placement.Constraint, strat []placement.Strategy, now time.Time) (time.Duration, error) {
	if err := c.stopTasks(ctx, cluster, name, &r, dec.Stop); err != nil {
		return 0, err
	}
	events := append(dec.Events, c.startTasks(ctx, cp, name, &r, dec.Start, cons, strat)...)
	err := c.writeService(ctx, cluster, name, r, rev, func(cur *ecsstate.ServiceRecord) error {
		if !applyDecision(cur, &r, dec, events, now) {
			return errUnchanged
		}
		return nil
	})
	if dec.ServiceStatus == deploy.ServiceInactive && r.Status != deploy.ServiceInactive {
		c.log.Info("service inactive", "cluster", cluster, "service", name)
	}
	return dec.RetryAfter, err
}

// stopTasks stops the tasks a decision stops (held DEACTIVATING while
// their targets drain); tasks already gone are skipped.
func (c *controller) stopTasks(ctx context.Context, cluster, name string, r *ecsstate.ServiceRecord, stops []deploy.Stop) error {
	drain := c.drainFunc(ctx, r)
	for _, st := range stops {
		if _, err := tasklife.StopTask(ctx, c.st, c.log, c.tasks.Now, cluster, st.TaskID, tasklife.Stop{Code: ecsapi.TaskStopCode(st.StopCode), Reason: st.Reason, Drain: drain}); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	if len(stops) > 0 {
		c.log.Info("service tasks stopping", "cluster", cluster, "service", name, "count", len(stops))
	}
	return nil
}

// startTasks carries out a decision's starts; it returns the service
// events they make (tasks started, tasks that could not be placed or
// launched).
func (c *controller) startTasks(ctx context.Context, cp *clusterPass, name string, r *ecsstate.ServiceRecord, starts []deploy.Start, cons []placement.Constraint, strat []placement.Strategy) []string {
	var events []string
	for _, st := range starts {
		started, failMsg, err := c.start(ctx, cp, r, st, cons, strat)
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
	return events
}

// applyDecision writes what the controller owns of decision dec, decided
// on record decided, into cur, the record as it is now, with events
// appended at now. When a concurrent UpdateService, DeleteService or
// deployment moved the record (its status, primary deployment or number
// of deployments differ), only the counts and events are written: the
// next pass decides on the new record. It reports whether cur changed.
// Pure but for the new events' random ids.
func applyDecision(cur, decided *ecsstate.ServiceRecord, dec deploy.Decision, events []string, now time.Time) bool {
	before, _ := json.Marshal(cur)
	decidedPrimary, curPrimary := "", ""
	if len(decided.Deployments) > 0 {
		decidedPrimary = decided.Deployments[0].ID
	}
	if len(cur.Deployments) > 0 {
		curPrimary = cur.Deployments[0].ID
	}
	if cur.Status == decided.Status && curPrimary == decidedPrimary && len(cur.Deployments) == len(decided.Deployments) {
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
	cur.Events = deploy.AppendEvents(cur.Events, events, now, tasklife.NewEventID)
	after, _ := json.Marshal(cur)
	return string(before) != string(after)
}

// writeService applies change to r, the service record as read at rev,
// and writes it under a compare on rev; when the record moved meanwhile it
// falls back to changeService (read, change, compare-and-swap). A change
// that returns errUnchanged writes nothing.
func (c *controller) writeService(ctx context.Context, cluster, name string, r ecsstate.ServiceRecord, rev int64, change func(*ecsstate.ServiceRecord) error) error {
	b, err := json.Marshal(r)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "encode service")
	}
	var cur ecsstate.ServiceRecord // a deep copy: change may modify what it is given
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
	key := ecsstate.ServiceKey(cluster, name)
	res, err := c.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, rev)}, store.Put(key, nb))
	if err != nil {
		return err
	}
	if res.Succeeded {
		return nil
	}
	if _, err = tasklife.ChangeService(ctx, c.st, cluster, name, change); err == errUnchanged {
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
func (c *controller) start(ctx context.Context, cp *clusterPass, r *ecsstate.ServiceRecord, st deploy.Start, cons []placement.Constraint, strat []placement.Strategy) ([]string, string, error) {
	spec, err := c.tasks.BuildSpec(ctx, r.Cluster, serviceTaskInput(r, st))
	if err != nil {
		return nil, "", err
	}
	if spec.Fargate != nil {
		return c.startFargate(ctx, r, spec, st.DeploymentID, st.Count)
	}
	tdc, err := placement.TaskDefinitionConstraintsFromWire(spec.TD.PlacementConstraints)
	if err != nil {
		return nil, "", err
	}
	spec.Req.Constraints = append(tdc, cons...)
	spec.Req.Strategies = strat
	if err := c.tasks.ServiceConnectSpec(ctx, r, st.DeploymentID, spec); err != nil {
		return nil, "", err
	}
	ids, failure, err := c.placeStrategy(ctx, cp, r, st, spec) // asgplacement.go; placeAll without a strategy
	if err != nil {
		return ids, "", err
	}
	msg := ""
	if failure != nil {
		msg = placement.UnableToPlaceMessage(r.Name, *failure)
		c.cfg.Observer.PlacementFailed(failure.Reason)
	}
	if len(ids) > 0 {
		c.log.Info("service tasks started", "cluster", r.Cluster, "service", r.Name, "deployment", st.DeploymentID, "count", len(ids))
	}
	return ids, msg, nil
}

// serviceTaskInput is the task a Start of service r launches: its task
// definition, group, deployment, tags and launch fields. Pure.
func serviceTaskInput(r *ecsstate.ServiceRecord, st deploy.Start) tasklife.TaskInput {
	in := tasklife.TaskInput{
		TaskDefinition: st.TaskDefinition, Group: "service:" + r.Name, StartedBy: st.DeploymentID,
		ManagedTags: r.EnableECSManagedTags,
	}
	switch ecsapi.PropagateTags(r.PropagateTags) {
	case ecsapi.PropagateTagsService:
		in.Tags = r.Tags
	case ecsapi.PropagateTagsTaskDefinition:
		in.PropagateTags = ptr(ecsapi.PropagateTagsTaskDefinition)
	}
	launchInput(r, &in)
	return in
}

// placeAll places a Start's tasks batch by batch until all are placed or
// the cluster is full for them (failure says why); on contention it reads
// the cluster again and plans the rest on it.
func (c *controller) placeAll(ctx context.Context, cp *clusterPass, cluster string, st deploy.Start, spec *tasklife.Spec) ([]string, *placement.Failure, error) {
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
		attempt++
		if err := c.refreshSnapshot(ctx, cp, cluster, attempt); err != nil {
			return ids, nil, err
		}
	}
	return ids, failure, nil
}

// refreshSnapshot reads the cluster again for the pass after a lost
// commit, with a little back-off that grows with attempt; it gives up
// after tasklife.MaxPlanAttempts.
func (c *controller) refreshSnapshot(ctx context.Context, cp *clusterPass, cluster string, attempt int) error {
	if attempt >= tasklife.MaxPlanAttempts {
		return errs.E(errs.Unavailable, "too many concurrent placements on cluster %s; retry", cluster)
	}
	d := time.Duration(rand.IntN(attempt)+1) * 3 * time.Millisecond
	select {
	case <-ctx.Done():
		return errs.Wrap(errs.Unavailable, ctx.Err(), "placement interrupted")
	case <-time.After(d):
	}
	fresh, err := tasklife.ReadSnapshot(ctx, c.st, c.log, cluster, false)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	cp.snap = fresh
	cp.mu.Unlock()
	return nil
}

// placeBatch places and commits at most one transaction's worth of a
// Start's remaining tasks on the pass's snapshot, holding it for the
// whole plan and commit. ok false means the commit lost a compare (plan
// again on a fresh snapshot); ok true with no task placed means nothing
// fits (failure says why).
func (c *controller) placeBatch(ctx context.Context, cp *clusterPass, cluster, instanceID string, spec *tasklife.Spec, remaining int) ([]string, *placement.Failure, bool, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	p, failure, err := c.planBatch(cp.snap, cluster, instanceID, spec, remaining, c.tasks.Now().UTC())
	if err != nil {
		return nil, nil, false, err
	}
	if len(p.Tasks) == 0 {
		return nil, failure, true, nil
	}
	ok, err := tasklife.CommitPlan(ctx, c.st, cp.snap, p)
	if err != nil && errs.ReasonOf(err) != placement.Unplaceable {
		return nil, nil, false, err
	}
	if !ok {
		return nil, failure, false, nil
	}
	c.started.Add(int64(len(p.Tasks)))
	c.cfg.Observer.TasksPlaced(len(p.Tasks))
	ids := make([]string, len(p.Tasks))
	for i, t := range p.Tasks {
		ids[i] = t.Rec.ID
	}
	return ids, failure, true, nil
}

// planBatch plans at most one transaction's worth of tasks on snap: on
// instanceID when set (a DAEMON task), else where placement puts them.
// An empty plan comes with the failure that explains it (none when the
// instance is gone). It touches no store; placement's spread draws from
// the controller's random source.
func (c *controller) planBatch(snap *tasklife.Snapshot, cluster, instanceID string, spec *tasklife.Spec, remaining int, now time.Time) (*tasklife.Plan, *placement.Failure, error) {
	p := &tasklife.Plan{}
	if instanceID != "" {
		v := snap.ByID[instanceID]
		if v == nil {
			return p, nil, nil
		}
		if err := placement.Check(v.PlacementInstance(), spec.Req); err != nil {
			if f, ok := tasklife.FailureOf(err); ok {
				return p, &f, nil
			}
			return nil, nil, err
		}
		p.Tasks = append(p.Tasks, tasklife.PlacedTask{Rec: c.tasks.NewTask(cluster, spec, v, now), Req: &spec.Req})
		return p, nil, nil
	}
	insts := make([]placement.Instance, 0, len(snap.Instances))
	for _, v := range snap.Instances {
		if spec.InPool(v) { // asgplacement.go
			insts = append(insts, v.PlacementInstance())
		}
	}
	var failure *placement.Failure
	placements, failures := placement.Place(insts, spec.Req, min(remaining, tasklife.MaxBatchTasks(c.st)), c.rng)
	if len(failures) > 0 {
		f := spec.PoolFailure(failures[0])
		failure = &f
	}
	for _, pl := range placements {
		p.Tasks = append(p.Tasks, tasklife.PlacedTask{Rec: c.tasks.NewTask(cluster, spec, snap.ByID[pl.InstanceID], now), Req: &spec.Req})
	}
	return p, failure, nil
}
