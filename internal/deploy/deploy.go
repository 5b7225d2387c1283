// Package deploy decides what ECS's service scheduler does next for one
// service: which tasks to start (per deployment), which to stop and why,
// how the deployments change (PRIMARY / ACTIVE / INACTIVE, rollout state,
// counts) and which service events to post.
//
// Decide is a pure function in the manner of Nomad's reconciler: it takes
// the service, its deployments, its tasks, the cluster's instances and
// `now`, and does no I/O. The shell in internal/ecs/servicectl
// reads the store, calls Decide, places the tasks to start with package
// placement, and commits through the ECS applier. docs/services.md
// describes the algorithm.
package deploy

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/capacityprovider"
)

// Scheduling strategies.
const (
	Replica = "REPLICA"
	Daemon  = "DAEMON"
)

// Deployment statuses and rollout states, as ECS names them.
const (
	StatusPrimary  = "PRIMARY"
	StatusActive   = "ACTIVE"
	StatusInactive = "INACTIVE"

	RolloutInProgress = "IN_PROGRESS"
	RolloutCompleted  = "COMPLETED"
	RolloutFailed     = "FAILED"
)

// Service statuses.
const (
	ServiceActive   = "ACTIVE"
	ServiceDraining = "DRAINING"
	ServiceInactive = "INACTIVE"
)

// Stop codes the scheduler uses, and the ones agents report that count as
// a failed start.
const (
	StopCodeScheduler      = "ServiceSchedulerInitiated"
	StopCodeFailedToStart  = "TaskFailedToStart"
	StopCodeEssentialExit  = "EssentialContainerExited"
	ReasonHealthCheck      = "Task failed container health checks"
	ReasonInstanceDraining = "Container instance is DRAINING"
	// ReasonDeregistered is the reason a task still desired RUNNING on an
	// instance that is INACTIVE (deregistered with force) or gone is
	// stopped with: DeregisterContainerInstance's own.
	ReasonDeregistered = "Container instance deregistered"
)

// Tuning of self-healing.
const (
	// BackoffBase is the delay before replacing tasks once BackoffAfter
	// tasks failed in a row; it doubles with each further failure up to
	// BackoffCap.
	BackoffBase  = 2 * time.Second
	BackoffCap   = 5 * time.Minute
	BackoffAfter = 3
	// FailureWindow bounds how far back failures count for back-off.
	FailureWindow = 15 * time.Minute
	// QuickExit: a task whose essential container exits (without anyone
	// asking) within this long of reaching RUNNING failed to start, for
	// the circuit breaker and the back-off. On Docker a container that
	// crashes at once is observed running for an instant, so "stopped
	// before RUNNING" alone would let a crash loop run unchecked.
	QuickExit = 10 * time.Second
)

// Strategy is a placement strategy (type binpack|spread|random, field);
// Decide uses it to choose which tasks to stop on scale-in.
type Strategy struct{ Type, Field string }

// Service is the desired state of a service.
type Service struct {
	Name       string
	Status     string // ACTIVE | DRAINING (deleted)
	Scheduling string // REPLICA | DAEMON
	// DesiredCount is the REPLICA count; DAEMON services derive theirs from
	// the eligible instances.
	DesiredCount       int
	MinHealthyPercent  int
	MaxPercent         int
	CircuitBreaker     bool
	Rollback           bool
	HealthCheckGrace   time.Duration
	Strategies         []Strategy
	LastCompletedDepID string // last deployment that reached COMPLETED
	LastCompletedTD    string // its task definition
	Steady             bool   // the service was in a steady state after the last decision
	// Providers is the service's capacity provider strategy, if any:
	// scale-in stops tasks so that the survivors keep its split
	// (capacityprovider.ScaleIn).
	Providers []capacityprovider.Item
}

// Deployment is one deployment of a service. The JSON form is what the
// ECS service record stores.
type Deployment struct {
	ID                 string    `json:"id"`
	Status             string    `json:"status"`
	TaskDefinition     string    `json:"taskDefinition"`
	DesiredCount       int       `json:"desiredCount"`
	PendingCount       int       `json:"pendingCount"`
	RunningCount       int       `json:"runningCount"`
	FailedTasks        int       `json:"failedTasks"`
	RolloutState       string    `json:"rolloutState"`
	RolloutStateReason string    `json:"rolloutStateReason"`
	CreatedAt          time.Time `json:"createdAt"`
	UpdatedAt          time.Time `json:"updatedAt"`
	// HealthChecked: the task definition has a container health check on
	// an essential container, so a task is healthy only when HEALTHY.
	HealthChecked bool `json:"healthChecked,omitempty"`
}

// Task is one of the service's tasks.
type Task struct {
	ID            string
	DeploymentID  string // startedBy
	InstanceID    string
	LastStatus    string
	DesiredStatus string
	Health        string // HEALTHY | UNHEALTHY | UNKNOWN | ""
	StopCode      string
	CreatedAt     time.Time
	StartedAt     *time.Time
	StoppingAt    *time.Time
	StoppedAt     *time.Time
	// Provider is the capacity provider a strategy put the task on.
	Provider string
}

// Instance is a container instance of the service's cluster.
type Instance struct {
	ID            string
	EC2InstanceID string
	Status        string // ACTIVE | DRAINING | INACTIVE ...
	// Connected: the agent's presence key exists.
	Connected bool
	// Unreachable: the agent has been away for the shell's grace (or came
	// back too recently for its reports to be in). Decide leaves the tasks
	// on such an instance as they are, neither stopped nor counted towards
	// the desired count or maximumPercent, so the service's tasks are
	// started elsewhere while the old ones keep running; they are shown in
	// the running and pending counts. Once the instance is reachable again
	// its tasks count again, and a surplus is stopped like any scale-in.
	// (The lost-instance monitor in internal/ecs writes them STOPPED if
	// the agent stays away for good.)
	Unreachable bool
	// Eligible (DAEMON): ACTIVE, meets the service's constraints and the
	// task definition's required attributes, and connected (or
	// disconnected but not yet Unreachable).
	Eligible   bool
	Attributes map[string]string
	// Free CPU units and memory, for binpack scale-in.
	FreeCPU, FreeMemory int
}

// Input is everything Decide looks at.
type Input struct {
	Service     Service
	Deployments []Deployment // PRIMARY first
	Tasks       []Task
	Instances   []Instance
	Now         time.Time
	// NewDeploymentID is the id a rollback deployment gets.
	NewDeploymentID string
}

// Start asks for Count tasks of a deployment. For DAEMON services each
// Start names the instance (Count 1).
type Start struct {
	DeploymentID   string
	TaskDefinition string
	Count          int
	InstanceID     string
}

// Stop stops one task.
type Stop struct {
	TaskID   string
	StopCode string
	Reason   string
	// Lost: the task's instance is deregistered or gone; it will never
	// report again.
	Lost bool
}

// Decision is what Decide returns.
type Decision struct {
	Start       []Start
	Stop        []Stop
	Deployments []Deployment // the new list, PRIMARY first
	// Events are new service events, oldest first, without the ones
	// Starts cause (the shell knows the task ids only after placing).
	Events         []string
	DesiredCount   int // DAEMON: the eligible instances
	RunningCount   int
	PendingCount   int
	Steady         bool
	ServiceStatus  string // INACTIVE once a DRAINING service has no task left
	RolledBackTo   string // task definition of a rollback deployment
	CompletedDepID string // a deployment that reached COMPLETED now
	CompletedTD    string
	// RetryAfter > 0: starts were held back (back-off); decide again then.
	RetryAfter time.Duration
}

// MinHealthy is ceil(desired × minimumHealthyPercent / 100).
func MinHealthy(desired, pct int) int {
	return int(math.Ceil(float64(desired) * float64(pct) / 100))
}

// MaxTasks is floor(desired × maximumPercent / 100).
func MaxTasks(desired, pct int) int { return desired * pct / 100 }

// FailureThreshold is the circuit breaker's: max(3, min(200, ceil(0.5 × desired))).
func FailureThreshold(desired int) int {
	return max(3, min(200, int(math.Ceil(0.5*float64(desired)))))
}

// ScaleReason is the stoppedReason of a task the scheduler stops.
func ScaleReason(depID string) string {
	return "Scaling activity initiated by (deployment " + depID + ")"
}

// failedTask reports whether a stopped task counts as a failure: it failed
// to start, its essential container exited before reaching RUNNING or
// within QuickExit of it without the scheduler asking, or it failed its
// health checks. Other stop codes are not failures: UserInitiated,
// ServiceSchedulerInitiated (but for failed health checks), and
// TerminationNotice (its instance was lost).
func failedTask(t *Task) bool {
	if t.DesiredStatus != "STOPPED" {
		return false
	}
	switch t.StopCode {
	case StopCodeFailedToStart:
		return true
	case StopCodeEssentialExit:
		if t.StartedAt == nil {
			return true
		}
		end := t.StoppingAt
		if end == nil {
			end = t.StoppedAt
		}
		return end != nil && end.Sub(*t.StartedAt) < QuickExit
	case StopCodeScheduler:
		return t.Health == "UNHEALTHY"
	}
	return false
}

func stopped(t *Task) bool { return t.LastStatus == "STOPPED" }

// Decide decides the service scheduler's next step for one service.
func Decide(in Input) Decision {
	d := decider{in: in, insts: map[string]*Instance{}}
	for i := range in.Instances {
		d.insts[in.Instances[i].ID] = &in.Instances[i]
	}
	return d.decide()
}

type decider struct {
	in    Input
	insts map[string]*Instance
	out   Decision
	// stopping marks tasks this decision stops.
	stopping map[string]bool
	deps     map[string]*Deployment
}

// lostInstance reports whether tasks on an instance are lost: it was
// deregistered (with force: its tasks are desired STOPPED but no agent
// will report them stopped) or is gone. An instance whose agent stopped
// reporting is not lost here: its tasks are left running and, once the
// instance is Unreachable, set aside and replaced elsewhere.
func (d *decider) lostInstance(id string) bool {
	inst := d.insts[id]
	return inst == nil || inst.Status == "INACTIVE" || inst.Status == "DEREGISTERING"
}

func (d *decider) stop(t *Task, code, reason string, lost bool) {
	if d.stopping[t.ID] {
		return
	}
	d.stopping[t.ID] = true
	d.out.Stop = append(d.out.Stop, Stop{TaskID: t.ID, StopCode: code, Reason: reason, Lost: lost})
}

// live reports whether a task counts: desired RUNNING and not being
// stopped by this decision.
func (d *decider) live(t *Task) bool { return t.DesiredStatus == "RUNNING" && !d.stopping[t.ID] }

func (d *decider) decide() Decision {
	in := d.in
	d.stopping = map[string]bool{}
	d.out.ServiceStatus = in.Service.Status
	deps := slices.Clone(in.Deployments)
	var primary *Deployment
	if len(deps) > 0 {
		primary = &deps[0]
	}
	d.deps = map[string]*Deployment{}
	for i := range in.Deployments {
		d.deps[in.Deployments[i].ID] = &in.Deployments[i]
	}

	// Tasks on deregistered or gone instances: stop them (they never
	// report again) and forget them. Tasks on unreachable instances are
	// set aside (away): left as they are, counted only as running or
	// pending.
	var tasks, away []*Task
	for i := range in.Tasks {
		t := &in.Tasks[i]
		if d.lostInstance(t.InstanceID) && !stopped(t) {
			if t.DesiredStatus == "RUNNING" {
				d.stop(t, StopCodeScheduler, ReasonDeregistered, true)
			}
			continue
		}
		if inst := d.insts[t.InstanceID]; inst != nil && inst.Unreachable && !stopped(t) {
			away = append(away, t)
			continue
		}
		tasks = append(tasks, t)
	}

	// Failures per deployment: monotone (stopped tasks are collected).
	failed := map[string]int{}
	for _, t := range tasks {
		if failedTask(t) {
			failed[t.DeploymentID]++
		}
	}
	for i := range deps {
		deps[i].FailedTasks = max(deps[i].FailedTasks, failed[deps[i].ID])
	}

	desired := in.Service.DesiredCount
	if in.Service.Scheduling == Daemon {
		desired = 0
		for _, inst := range in.Instances {
			if inst.Eligible {
				desired++
			}
		}
	}
	if in.Service.Status != ServiceActive {
		desired = 0
	}
	d.out.DesiredCount = desired
	minHealthy := MinHealthy(desired, in.Service.MinHealthyPercent)
	maxTasks := MaxTasks(desired, in.Service.MaxPercent)

	// Unhealthy tasks past the grace period are replaced.
	for _, t := range tasks {
		if d.live(t) && t.LastStatus == "RUNNING" && t.Health == "UNHEALTHY" && t.StartedAt != nil &&
			in.Now.Sub(*t.StartedAt) >= in.Service.HealthCheckGrace {
			d.stop(t, StopCodeScheduler, ReasonHealthCheck, false)
		}
	}

	// Circuit breaker.
	if primary != nil && in.Service.CircuitBreaker && primary.RolloutState == RolloutInProgress &&
		primary.FailedTasks >= FailureThreshold(desired) {
		primary.RolloutState = RolloutFailed
		primary.RolloutStateReason = "ECS deployment circuit breaker: tasks failed to start."
		primary.UpdatedAt = in.Now
		if in.Service.Rollback && in.Service.LastCompletedTD != "" && in.NewDeploymentID != "" {
			primary.Status = StatusActive
			primary.RolloutStateReason = fmt.Sprintf("ECS deployment circuit breaker: rolling back to deploymentId %s.", in.Service.LastCompletedDepID)
			nd := Deployment{ID: in.NewDeploymentID, Status: StatusPrimary, TaskDefinition: in.Service.LastCompletedTD,
				DesiredCount: desired, RolloutState: RolloutInProgress, CreatedAt: in.Now, UpdatedAt: in.Now,
				RolloutStateReason: fmt.Sprintf("ECS deployment circuit breaker: rolling back to deploymentId %s.", in.Service.LastCompletedDepID)}
			for _, od := range deps {
				if od.ID == in.Service.LastCompletedDepID {
					nd.HealthChecked = od.HealthChecked
				}
			}
			deps = append([]Deployment{nd}, deps...)
			primary = &deps[0]
			d.out.RolledBackTo = nd.TaskDefinition
			d.out.Events = append(d.out.Events, fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start. Rolling back to (deployment %s).",
				in.Service.Name, deps[1].ID, in.Service.LastCompletedDepID))
		} else {
			d.out.Events = append(d.out.Events, fmt.Sprintf("(service %s) (deployment %s) deployment failed: tasks failed to start.", in.Service.Name, primary.ID))
		}
	}

	if primary == nil {
		for _, t := range tasks {
			if d.live(t) {
				d.stop(t, StopCodeScheduler, ScaleReason(t.DeploymentID), false)
			}
		}
	} else if in.Service.Scheduling == Daemon {
		d.daemon(primary, tasks, minHealthy, maxTasks)
	} else {
		d.replica(primary, tasks, desired, minHealthy, maxTasks)
	}

	// Counts, deployment states, old deployments leaving.
	d.finish(deps, tasks, away, desired)
	return d.out
}

// healthy reports whether a live task counts towards minimumHealthyPercent.
func (d *decider) healthy(t *Task, deps map[string]*Deployment) bool {
	if !d.live(t) || t.LastStatus != "RUNNING" {
		return false
	}
	if t.Health == "UNHEALTHY" {
		return false
	}
	if dep := deps[t.DeploymentID]; dep != nil && dep.HealthChecked {
		return t.Health == "HEALTHY"
	}
	return true
}

// occupying reports whether a task counts against maximumPercent: any task
// not yet STOPPED (pending, running, or stopping).
func occupying(t *Task) bool { return !stopped(t) }

// backoff returns how long to hold back new tasks because the primary
// deployment's tasks keep failing, and emits the event ECS posts then. A
// new deployment (an update, a rollback) starts with a clean slate: an
// earlier deployment's failures do not hold its tasks back.
func (d *decider) backoff(primary *Deployment, tasks []*Task) time.Duration {
	var lastOK time.Time
	for _, t := range tasks {
		if t.DeploymentID != primary.ID {
			continue
		}
		if t.LastStatus == "RUNNING" && t.DesiredStatus == "RUNNING" && t.StartedAt != nil && t.StartedAt.After(lastOK) {
			lastOK = *t.StartedAt
		}
	}
	n := 0
	var last time.Time
	for _, t := range tasks {
		if t.DeploymentID != primary.ID || !failedTask(t) {
			continue
		}
		at := t.CreatedAt
		if t.StoppingAt != nil {
			at = *t.StoppingAt
		}
		if at.Before(lastOK) || d.in.Now.Sub(at) > FailureWindow {
			continue
		}
		n++
		if at.After(last) {
			last = at
		}
	}
	if n < BackoffAfter {
		return 0
	}
	delay := BackoffBase << min(n-BackoffAfter, 20)
	delay = min(delay, BackoffCap)
	wait := last.Add(delay).Sub(d.in.Now)
	if wait <= 0 {
		return 0
	}
	d.out.Events = append(d.out.Events, fmt.Sprintf("(service %s) is unable to consistently start tasks successfully.", d.in.Service.Name))
	return wait
}

func (d *decider) replica(primary *Deployment, tasks []*Task, desired, minHealthy, maxTasks int) {
	in := d.in
	depByID := map[string]*Deployment{primary.ID: primary}
	for i := range in.Deployments {
		if _, ok := depByID[in.Deployments[i].ID]; !ok {
			depByID[in.Deployments[i].ID] = &in.Deployments[i]
		}
	}
	var mine, old []*Task
	for _, t := range tasks {
		if !d.live(t) {
			continue
		}
		// Tasks on a DRAINING instance are replaced like an old
		// deployment's, within the same bounds.
		if inst := d.insts[t.InstanceID]; t.DeploymentID == primary.ID && (inst == nil || inst.Status != "DRAINING") {
			mine = append(mine, t)
		} else {
			old = append(old, t)
		}
	}
	// 1. Primary above desired: stop the excess (pending first, then by
	// the placement strategy).
	if n := len(mine) - desired; n > 0 {
		for _, t := range d.pickScaleIn(mine, tasks, n) {
			d.stop(t, StopCodeScheduler, ScaleReason(primary.ID), false)
		}
	}
	healthy := 0
	for _, t := range tasks {
		if d.healthy(t, depByID) {
			healthy++
		}
	}
	// 2. Old deployments: pending ones go at once; running ones while
	// enough healthy tasks remain.
	var oldRunning []*Task
	for _, t := range old {
		if t.LastStatus == "RUNNING" {
			oldRunning = append(oldRunning, t)
		} else {
			d.stop(t, StopCodeScheduler, ScaleReason(primary.ID), false)
		}
	}
	if n := min(len(oldRunning), healthy-minHealthy); n > 0 {
		for _, t := range d.pickScaleIn(oldRunning, tasks, n) {
			if d.healthy(t, depByID) {
				healthy--
			}
			d.stop(t, StopCodeScheduler, ScaleReason(primary.ID), false)
		}
	}
	// 3. Start the primary's missing tasks within maximumPercent.
	if primary.RolloutState == RolloutFailed || in.Service.Status != ServiceActive {
		return
	}
	live := 0
	for _, t := range mine {
		if d.live(t) {
			live++
		}
	}
	occupied := 0
	for _, t := range tasks {
		if occupying(t) {
			occupied++
		}
	}
	n := min(desired-live, maxTasks-occupied)
	if n <= 0 {
		return
	}
	if wait := d.backoff(primary, tasks); wait > 0 {
		d.out.RetryAfter = wait
		return
	}
	d.out.Start = append(d.out.Start, Start{DeploymentID: primary.ID, TaskDefinition: primary.TaskDefinition, Count: n})
}

func (d *decider) daemon(primary *Deployment, tasks []*Task, minHealthy, maxTasks int) {
	in := d.in
	// A deleted (DRAINING) daemon service loses every task, eligible
	// instances included.
	if in.Service.Status != ServiceActive {
		for _, t := range tasks {
			if d.live(t) {
				d.stop(t, StopCodeScheduler, ScaleReason(primary.ID), false)
			}
		}
		return
	}
	depByID := map[string]*Deployment{primary.ID: primary}
	byInst := map[string][]*Task{}
	for _, t := range tasks {
		byInst[t.InstanceID] = append(byInst[t.InstanceID], t)
	}
	// Ineligible instances (DRAINING, no longer matching) lose their
	// tasks. One whose agent is away keeps them: the agent could not act
	// on a stop, and a disconnected instance may come back (past the
	// grace it is Unreachable and ineligible, and its task set aside).
	for _, t := range tasks {
		inst := d.insts[t.InstanceID]
		if d.live(t) && (inst == nil || (!inst.Eligible && inst.Connected)) {
			reason := ScaleReason(primary.ID)
			d.stop(t, StopCodeScheduler, reason, false)
		}
	}
	healthy := 0
	for _, t := range tasks {
		if d.healthy(t, depByID) {
			healthy++
		}
	}
	// Tasks on instances that lose theirs do not hold back new ones.
	occupied := 0
	for _, t := range tasks {
		if inst := d.insts[t.InstanceID]; occupying(t) && inst != nil && inst.Eligible {
			occupied++
		}
	}
	ids := make([]string, 0, len(d.insts))
	for id, inst := range d.insts {
		if inst.Eligible {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var starts []string
	for _, id := range ids {
		var mine, old []*Task
		busy := false
		for _, t := range byInst[id] {
			if occupying(t) {
				busy = true
			}
			if !d.live(t) {
				continue
			}
			if t.DeploymentID == primary.ID {
				mine = append(mine, t)
			} else {
				old = append(old, t)
			}
		}
		for _, t := range mine[min(1, len(mine)):] {
			d.stop(t, StopCodeScheduler, ScaleReason(primary.ID), false)
		}
		for _, t := range old {
			if d.healthy(t, depByID) {
				if healthy-1 < minHealthy {
					continue
				}
				healthy--
			}
			d.stop(t, StopCodeScheduler, ScaleReason(primary.ID), false)
		}
		if len(mine) == 0 && !busy {
			starts = append(starts, id)
		}
	}
	if primary.RolloutState == RolloutFailed || in.Service.Status != ServiceActive || len(starts) == 0 {
		return
	}
	if wait := d.backoff(primary, tasks); wait > 0 {
		d.out.RetryAfter = wait
		return
	}
	for _, id := range starts {
		if occupied >= maxTasks {
			break
		}
		occupied++
		d.out.Start = append(d.out.Start, Start{DeploymentID: primary.ID, TaskDefinition: primary.TaskDefinition, Count: 1, InstanceID: id})
	}
}

// pickScaleIn chooses n of cands to stop: pending before running, then
// unhealthy, then by the reverse of the placement strategies (spread: from
// the most crowded value; binpack: from the emptiest instance), then the
// newest. all are the service's tasks (for the spread counts).
func (d *decider) pickScaleIn(cands, all []*Task, n int) []*Task {
	counts := map[string]map[string]int{} // field -> value -> live tasks
	value := func(field string, t *Task) string {
		if field == "instanceId" || field == "host" {
			return t.InstanceID
		}
		if inst := d.insts[t.InstanceID]; inst != nil {
			return inst.Attributes[strings.TrimPrefix(field, "attribute:")]
		}
		return ""
	}
	strategies := d.in.Service.Strategies
	for _, s := range strategies {
		if s.Type != "spread" {
			continue
		}
		m := map[string]int{}
		for _, t := range all {
			if d.live(t) {
				m[value(s.Field, t)]++
			}
		}
		counts[s.Field] = m
	}
	rest := slices.Clone(cands)
	var out []*Task
	for len(out) < n && len(rest) > 0 {
		// With a capacity provider strategy, the provider furthest above
		// its share loses a task first; a task on a provider the strategy
		// no longer names goes before any.
		over := d.providerOver(rest)
		slices.SortStableFunc(rest, func(a, b *Task) int {
			if c := cmp.Compare(over(a), over(b)); c != 0 {
				return c
			}
			if c := cmp.Compare(d.rank(a), d.rank(b)); c != 0 {
				return c
			}
			for _, s := range strategies {
				switch s.Type {
				case "spread":
					m := counts[s.Field]
					if c := cmp.Compare(m[value(s.Field, b)], m[value(s.Field, a)]); c != 0 {
						return c
					}
				case "binpack":
					ia, ib := d.insts[a.InstanceID], d.insts[b.InstanceID]
					if ia != nil && ib != nil {
						fa, fb := ia.FreeMemory, ib.FreeMemory
						if s.Field == "cpu" {
							fa, fb = ia.FreeCPU, ib.FreeCPU
						}
						if c := cmp.Compare(fb, fa); c != 0 {
							return c
						}
					}
				}
			}
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		t := rest[0]
		rest = rest[1:]
		out = append(out, t)
		for _, s := range strategies {
			if m := counts[s.Field]; m != nil {
				m[value(s.Field, t)]--
			}
		}
	}
	return out
}

// providerOver ranks scale-in candidates by capacity provider: 0 for a
// task on a provider the strategy does not name, 1 on the provider
// capacityprovider.ScaleIn picks among cands, 2 on the others.
func (d *decider) providerOver(cands []*Task) func(*Task) int {
	items := d.in.Service.Providers
	if len(items) == 0 {
		return func(*Task) int { return 0 }
	}
	index := map[string]int{}
	for i, it := range items {
		index[it.Provider] = i
	}
	counts := make([]int, len(items))
	for _, t := range cands {
		if i, ok := index[t.Provider]; ok {
			counts[i]++
		}
	}
	pick := capacityprovider.ScaleIn(items, counts)
	return func(t *Task) int {
		i, ok := index[t.Provider]
		switch {
		case !ok:
			return 0
		case i == pick:
			return 1
		}
		return 2
	}
}

// rank orders scale-in candidates: pending, then running but not
// healthy, then healthy ones.
func (d *decider) rank(t *Task) int {
	switch {
	case t.LastStatus != "RUNNING":
		return 0
	case !d.healthy(t, d.deps):
		return 1
	}
	return 2
}

// finish computes counts, rollout states, steady state and which old
// deployments leave the list. away are the tasks on unreachable
// instances: in the running and pending counts (DescribeTasks shows them
// so), and keeping their deployment in the list, but not live: they do
// not complete a deployment.
func (d *decider) finish(deps []Deployment, tasks, away []*Task, desired int) {
	in := d.in
	type counts struct{ running, pending, occupying, live, liveRunning int }
	per := map[string]*counts{}
	for i := range deps {
		per[deps[i].ID] = &counts{}
	}
	count := func(t *Task, accounted bool) {
		c := per[t.DeploymentID]
		if c == nil {
			c = &counts{}
			per[t.DeploymentID] = c
		}
		if occupying(t) {
			c.occupying++
		}
		if t.LastStatus == "RUNNING" {
			c.running++
			d.out.RunningCount++
		} else if d.live(t) && !stopped(t) {
			c.pending++
			d.out.PendingCount++
		}
		if accounted && d.live(t) {
			c.live++
			if t.LastStatus == "RUNNING" {
				c.liveRunning++
			}
		}
	}
	for _, t := range tasks {
		count(t, true)
	}
	for _, t := range away {
		count(t, false)
	}
	var kept []Deployment
	othersBusy := false
	for i := range deps {
		if i > 0 && per[deps[i].ID].occupying > 0 {
			othersBusy = true
		}
	}
	for i := range deps {
		dep := deps[i]
		c := per[dep.ID]
		before := dep
		dep.RunningCount, dep.PendingCount = c.running, c.pending
		if i == 0 {
			dep.Status = StatusPrimary
			dep.DesiredCount = desired
			if dep.RolloutState == RolloutInProgress && !othersBusy && c.liveRunning == desired && c.live == desired {
				dep.RolloutState = RolloutCompleted
				dep.RolloutStateReason = fmt.Sprintf("ECS deployment %s completed.", dep.ID)
				d.out.CompletedDepID, d.out.CompletedTD = dep.ID, dep.TaskDefinition
				d.out.Events = append(d.out.Events, fmt.Sprintf("(service %s) (deployment %s) deployment completed.", in.Service.Name, dep.ID))
			}
		} else {
			dep.Status = StatusActive
			dep.DesiredCount = c.live
			if c.occupying == 0 {
				continue // drained: leaves the list
			}
		}
		if dep != before {
			dep.UpdatedAt = in.Now
		}
		kept = append(kept, dep)
	}
	d.out.Deployments = kept
	if len(d.out.Stop) > 0 {
		var ids []string
		for _, s := range d.out.Stop {
			if !s.Lost {
				ids = append(ids, s.TaskID)
			}
		}
		if len(ids) > 0 {
			d.out.Events = append(d.out.Events, StoppedMessage(in.Service.Name, ids))
		}
	}
	if in.Service.Status == ServiceDraining {
		busy := len(away) > 0
		for _, t := range tasks {
			busy = busy || occupying(t)
		}
		if !busy && len(d.out.Stop) == 0 {
			d.out.ServiceStatus = ServiceInactive
		}
		return
	}
	d.out.Steady = len(kept) == 1 && kept[0].RunningCount == desired && len(d.out.Start) == 0 &&
		len(d.out.Stop) == 0 && d.out.PendingCount == 0 && kept[0].RolloutState != RolloutFailed
	if d.out.Steady && !in.Service.Steady {
		d.out.Events = append(d.out.Events, SteadyMessage(in.Service.Name))
	}
}

// StartedMessage is ECS's event for started tasks.
func StartedMessage(service string, taskIDs []string) string {
	return fmt.Sprintf("(service %s) has started %d tasks: %s.", service, len(taskIDs), taskList(taskIDs))
}

// StoppedMessage is ECS's event for tasks the scheduler stopped.
func StoppedMessage(service string, taskIDs []string) string {
	return fmt.Sprintf("(service %s) has stopped %d running tasks: %s.", service, len(taskIDs), taskList(taskIDs))
}

// SteadyMessage is ECS's steady state event.
func SteadyMessage(service string) string {
	return fmt.Sprintf("(service %s) has reached a steady state.", service)
}

func taskList(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "(task " + id + ")"
	}
	return strings.Join(parts, " ")
}

// Event is a posted service event.
type Event struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
	Message   string    `json:"message"`
}

// MaxEvents is how many events a service keeps.
const MaxEvents = 100

// RepeatAfter is how long an identical event is suppressed for (ECS posts
// its steady-state message again only after hours).
const RepeatAfter = 6 * time.Hour

// AppendEvents adds messages to events (newest first), skipping a message
// that repeats the newest event posted within RepeatAfter, and keeps
// MaxEvents. ids gives
// each new event its id.
func AppendEvents(events []Event, msgs []string, now time.Time, ids func() string) []Event {
	for _, m := range msgs {
		if len(events) > 0 && events[0].Message == m && now.Sub(events[0].CreatedAt) < RepeatAfter {
			continue
		}
		events = append([]Event{{ID: ids(), CreatedAt: now, Message: m}}, events...)
	}
	if len(events) > MaxEvents {
		events = events[:MaxEvents]
	}
	return events
}
