package elbv2

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/errs"
)

// The ECS target controller: it follows ECS's feed (tasks, services,
// container instances) and keeps the targets of load-balanced services'
// tasks registered in their target groups, as ECS does: a task's targets
// are registered while it is RUNNING and wants to be, and deregistered as
// soon as it is told to stop (ECS's drain gate then holds the task's
// containers for the deregistration delay; internal/ecs/loadbalancers.go).
// It is level-based: after every batch of changes it compares the targets
// the tasks call for with the targets it registered (targetRecord.ECSTask),
// so a restart or a missed change is repaired on the next pass.

// ECSFeed is what the controller reads of ECS.
type ECSFeed interface {
	WatchTasks(ctx context.Context) <-chan ecs.TaskChange
	WatchServices(ctx context.Context) <-chan ecs.ServiceChange
	WatchContainerInstances(ctx context.Context) <-chan ecs.InstanceChange
	// AddServiceEvents posts ECS service events ("registered 1 targets").
	AddServiceEvents(ctx context.Context, clusterARN, name string, msgs []string) error
}

// ECSTargets is the ECS target controller.
type ECSTargets struct {
	s    *Service
	feed ECSFeed
	log  *slog.Logger
	// Debounce gathers changes before a pass.
	Debounce time.Duration
}

// NewECSTargets returns the controller; Run runs it.
func (s *Service) NewECSTargets(feed ECSFeed) *ECSTargets {
	return &ECSTargets{s: s, feed: feed, log: s.log.With("component", "elbv2-ecs"), Debounce: 20 * time.Millisecond}
}

// wantTarget is one target a task calls for.
type wantTarget struct {
	tg      string
	id      string
	port    int32
	task    string // task ARN
	service string // cluster ARN + "|" + service name
}

// Run follows ECS until ctx ends.
func (c *ECSTargets) Run(ctx context.Context) {
	tasks := c.feed.WatchTasks(ctx)
	svcs := c.feed.WatchServices(ctx)
	insts := c.feed.WatchContainerInstances(ctx)
	taskState := map[string]ecsapi.Task{}
	svcState := map[string]ecsapi.Service{} // cluster ARN + "|" + name
	ec2 := map[string]string{}              // container instance ARN -> EC2 instance id
	synced := [3]bool{}                     // tasks, services, instances
	pending := [3]map[string]bool{}         // seen since a relist
	var timer <-chan time.Time
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	dirty := func() {
		if timer == nil {
			timer = time.After(c.Debounce)
		}
	}
	relist := func(i int, kind ecs.ChangeKind, key string, drop func(string)) {
		switch kind {
		case ecs.ChangeRelist:
			pending[i] = map[string]bool{}
		case ecs.ChangeSynced:
			if pending[i] != nil {
				drop("") // what the listing did not show again is gone
			}
			pending[i] = nil
			synced[i] = true
		case ecs.ChangeUpsert:
			if pending[i] != nil {
				pending[i][key] = true
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-tasks:
			if !ok {
				return
			}
			key := deref(ch.Task.TaskArn)
			relist(0, ch.Kind, key, func(string) {
				for k := range taskState {
					if !pending[0][k] {
						delete(taskState, k)
					}
				}
			})
			switch ch.Kind {
			case ecs.ChangeUpsert:
				taskState[key] = ch.Task
			case ecs.ChangeDelete:
				delete(taskState, key)
			}
			dirty()
		case ch, ok := <-svcs:
			if !ok {
				return
			}
			key := deref(ch.Service.ClusterArn) + "|" + deref(ch.Service.ServiceName)
			relist(1, ch.Kind, key, func(string) {
				for k := range svcState {
					if !pending[1][k] {
						delete(svcState, k)
					}
				}
			})
			switch ch.Kind {
			case ecs.ChangeUpsert:
				svcState[key] = ch.Service
			case ecs.ChangeDelete:
				delete(svcState, key)
			}
			dirty()
		case ch, ok := <-insts:
			if !ok {
				return
			}
			key := deref(ch.Instance.ContainerInstanceArn)
			relist(2, ch.Kind, key, func(string) {
				for k := range ec2 {
					if !pending[2][k] {
						delete(ec2, k)
					}
				}
			})
			switch ch.Kind {
			case ecs.ChangeUpsert:
				ec2[key] = deref(ch.Instance.Ec2InstanceId)
			case ecs.ChangeDelete:
				delete(ec2, key)
			}
			dirty()
		case <-retry.C:
			dirty()
		case <-timer:
			timer = nil
			if !synced[0] || !synced[1] || !synced[2] {
				continue
			}
			if err := c.reconcile(ctx, desiredTargets(taskState, svcState, ec2)); err != nil && ctx.Err() == nil {
				c.log.Warn("load balancer target pass failed; retrying", "err", err)
				timer = time.After(time.Second)
			}
		}
	}
}

// desiredTargets computes the targets the tasks call for: those of every
// task RUNNING and desired RUNNING of a service with loadBalancers (a
// task whose bindings are not reported yet waits for them). Pure.
func desiredTargets(tasks map[string]ecsapi.Task, svcs map[string]ecsapi.Service, ec2 map[string]string) []wantTarget {
	var out []wantTarget
	for _, t := range tasks {
		if deref(t.LastStatus) != "RUNNING" || deref(t.DesiredStatus) != "RUNNING" {
			continue
		}
		name, ok := strings.CutPrefix(deref(t.Group), "service:")
		if !ok {
			continue
		}
		skey := deref(t.ClusterArn) + "|" + name
		sv, ok := svcs[skey]
		if !ok || len(sv.LoadBalancers) == 0 {
			continue
		}
		ts, ok := ecs.TaskTargets(sv.LoadBalancers, t.Containers, ec2[deref(t.ContainerInstanceArn)])
		if !ok {
			continue
		}
		for _, x := range ts {
			out = append(out, wantTarget{tg: x.TargetGroupARN, id: x.ID, port: x.Port, task: deref(t.TaskArn), service: skey})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].tg != out[j].tg {
			return out[i].tg < out[j].tg
		}
		return out[i].task < out[j].task
	})
	return out
}

// targetChanges is what one pass changed, per service and target group.
type targetChanges struct {
	registered, deregistered map[[2]string]int // {service, target group ARN} -> count
}

// planTargets changes the target groups of st so that the targets the
// controller owns are exactly want (targets RegisterTargets added are
// left alone; a wanted target already registered by hand is not taken
// over). Pure, on the state given.
func planTargets(st *state, want []wantTarget, log *slog.Logger) targetChanges {
	ch := targetChanges{registered: map[[2]string]int{}, deregistered: map[[2]string]int{}}
	byTG := map[string][]wantTarget{}
	for _, w := range want {
		byTG[w.tg] = append(byTG[w.tg], w)
	}
	for _, a := range sortedKeys(st.tgs) {
		r := st.tgs[a]
		ws := byTG[a]
		delete(byTG, a)
		wanted := map[string]wantTarget{}
		for _, w := range ws {
			wanted[fmt.Sprintf("%s:%d", w.id, w.port)] = w
		}
		changed := false
		keep := r.Targets[:0:0]
		have := map[string]bool{}
		for _, t := range r.Targets {
			k := fmt.Sprintf("%s:%d", t.ID, t.Port)
			if t.ECSTask != "" {
				if w, ok := wanted[k]; !ok || w.task != t.ECSTask {
					ch.deregistered[[2]string{t.ECSService, a}]++
					changed = true
					continue
				}
			}
			have[k] = true
			keep = append(keep, t)
		}
		for _, w := range ws {
			k := fmt.Sprintf("%s:%d", w.id, w.port)
			if have[k] {
				continue
			}
			if len(keep) >= maxTargetsPerGroup {
				log.Warn("target group full; task not registered", "target_group", a, "task", w.task)
				continue
			}
			have[k] = true
			keep = append(keep, targetRecord{ID: w.id, Port: w.port, ECSTask: w.task, ECSService: w.service})
			ch.registered[[2]string{w.service, a}]++
			changed = true
		}
		if changed {
			r.Targets = keep
			st.putTG(r)
		}
	}
	for a := range byTG {
		log.Debug("tasks' target group does not exist", "target_group", a)
	}
	return ch
}

// reconcile registers what is wanted and missing and deregisters what the
// controller registered and is no longer wanted, in one commit; then posts
// ECS's events.
func (c *ECSTargets) reconcile(ctx context.Context, want []wantTarget) error {
	var ch targetChanges
	err := c.s.mutate(ctx, func(st *state) error {
		ch = planTargets(st, want, c.log)
		return nil
	})
	if err != nil {
		return err
	}
	events := map[string][]string{}
	add := func(m map[[2]string]int, verb string) {
		for k, n := range m {
			events[k[0]] = append(events[k[0]], fmt.Sprintf("(service %s) %s %d targets in (target-group %s)", k[0][strings.IndexByte(k[0], '|')+1:], verb, n, k[1]))
			c.log.Info("service targets "+verb, "service", k[0], "target_group", k[1], "count", n)
		}
	}
	add(ch.deregistered, "deregistered")
	add(ch.registered, "registered")
	var firstErr error
	for svc, msgs := range events {
		slices.Sort(msgs)
		cluster, name, _ := strings.Cut(svc, "|")
		if err := c.feed.AddServiceEvents(ctx, cluster, name, msgs); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// ForECS is ELBv2 as ECS's services see it (ecs.LoadBalancing).
func (s *Service) ForECS() ecs.LoadBalancing { return ecsLink{s} }

type ecsLink struct{ s *Service }

// TargetGroup describes a target group for a service's loadBalancers.
func (l ecsLink) TargetGroup(ctx context.Context, a string) (ecs.TargetGroupInfo, error) {
	st, err := loadState(ctx, l.s.st)
	if err != nil {
		return ecs.TargetGroupInfo{}, err
	}
	r, ok := st.tgs[a]
	if !ok {
		return ecs.TargetGroupInfo{}, errs.E(errs.NotFound, "target group %s not found", a)
	}
	return ecs.TargetGroupInfo{ARN: a, TargetType: string(deref(r.TG.TargetType)), LoadBalancers: st.tgLoadBalancers(a),
		DeregistrationDelay: seconds(r.Attrs, "deregistration_delay.timeout_seconds")}, nil
}

// TargetStates reads the targets' states the serving data plane recorded
// (keyObserved); a group without a record has none yet.
func (l ecsLink) TargetStates(ctx context.Context, arns []string) (map[string]map[string]ecs.TargetState, error) {
	out := map[string]map[string]ecs.TargetState{}
	for _, a := range arns {
		id := a[strings.LastIndex(a, "/")+1:]
		kv, err := l.s.st.Get(ctx, keyObserved+id)
		if errs.Is(err, errs.NotFound) {
			out[a] = map[string]ecs.TargetState{}
			continue
		}
		if err != nil {
			return nil, err
		}
		m := map[string]ecs.TargetState{}
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "decode %s", kv.Key)
		}
		out[a] = m
	}
	return out, nil
}
