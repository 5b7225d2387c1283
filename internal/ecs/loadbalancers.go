package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// Services behind load balancers (docs/load-balancing.md, "ECS services
// behind a load balancer"; decision 18 in docs/decisions.md):
//
//   - CreateService/UpdateService validate loadBalancers against ELBv2
//     (LoadBalancing, wired by the daemon) and the task definition.
//   - Registration is not done here: internal/elbv2's ECS target controller
//     follows the feed and registers a RUNNING task's targets.
//   - The drain gate: a RUNNING task of such a service that the scheduler
//     or StopTask stops becomes desired STOPPED and DEACTIVATING with
//     DrainUntil set (now + the longest deregistration delay of its target
//     groups) and an index key under keyDrain, in one transaction; its
//     assignment keeps telling the agent RUNNING. RunDrainGate releases it
//     when DrainUntil has passed: the assignment then says STOPPED.
//   - Target health gates the deployment: the service controller reads the
//     targets' states ELBv2 records in the store (servicectl, serviceTargetHealth).

// SetLoadBalancing installs ELBv2 for services with loadBalancers.
func (s *Service) SetLoadBalancing(lb LoadBalancing) { s.lb.Store(&lb) }

// loadBalancing is ELBv2 as installed; nil when not.
func (s *Service) loadBalancing() LoadBalancing {
	if p := s.lb.Load(); p != nil {
		return *p
	}
	return nil
}

// checkLoadBalancers applies ECS's rules to a service's loadBalancers
// against ELBv2 and the task definition, with ECS's messages. Nothing is
// written.
func (s *Service) checkLoadBalancers(ctx context.Context, lbs []ecsapi.LoadBalancer, td *ecsapi.TaskDefinition) error {
	if len(lbs) == 0 {
		return nil
	}
	if s.loadBalancing() == nil {
		return invalid("Berth does not support load balancers for services on this server.")
	}
	if len(lbs) > 5 {
		return invalid("loadBalancers can have at most 5 items.")
	}
	infos := make([]TargetGroupInfo, len(lbs))
	for i, lb := range lbs {
		tg := deref(lb.TargetGroupArn)
		if deref(lb.LoadBalancerName) != "" {
			return invalid("Berth supports Application and Network Load Balancers only: give targetGroupArn, not loadBalancerName.")
		}
		if tg == "" {
			return invalid("Target group ARN must be specified for a load balancer.")
		}
		info, err := s.loadBalancing().TargetGroup(ctx, tg)
		if errs.Is(err, errs.NotFound) {
			return invalid("Unable to assume role and validate the specified targetGroupArn. Please verify that the ECS service role being passed has the proper permissions.")
		}
		if err != nil {
			return err
		}
		infos[i] = info
	}
	return checkLoadBalancersPure(lbs, infos, td)
}

// checkLoadBalancersPure is the part of checkLoadBalancers that needs no
// store: infos[i] describes lbs[i]'s target group.
func checkLoadBalancersPure(lbs []ecsapi.LoadBalancer, infos []TargetGroupInfo, td *ecsapi.TaskDefinition) error {
	mode := deref(td.NetworkMode)
	if mode == "" {
		mode = ecsapi.NetworkModeBridge
	}
	seen := map[string]bool{}
	for i, lb := range lbs {
		tg, name := deref(lb.TargetGroupArn), deref(lb.ContainerName)
		if name == "" || lb.ContainerPort == nil {
			return invalid("containerName and containerPort must be specified for a load balancer.")
		}
		port := *lb.ContainerPort
		key := fmt.Sprintf("%s|%s|%d", tg, name, port)
		if seen[key] {
			return invalid("The load balancer configuration for target group %s, container %s and port %d is specified more than once.", tg, name, port)
		}
		seen[key] = true
		info := infos[i]
		if len(info.LoadBalancers) == 0 {
			return invalid("The target group with targetGroupArn %s does not have an associated load balancer.", tg)
		}
		switch {
		case info.TargetType == "ip" && mode != ecsapi.NetworkModeAwsvpc:
			return invalid("The provided target group %s has target type ip, which is incompatible with the %s network mode specified in the task definition.", tg, mode)
		case info.TargetType == "instance" && mode == ecsapi.NetworkModeAwsvpc:
			return invalid("The provided target group %s has target type instance, which is incompatible with the awsvpc network mode specified in the task definition.", tg)
		case info.TargetType != "ip" && info.TargetType != "instance":
			return invalid("The provided target group %s has target type %s, which is not supported for services.", tg, info.TargetType)
		}
		var cd *ecsapi.ContainerDefinition
		for j := range td.ContainerDefinitions {
			if deref(td.ContainerDefinitions[j].Name) == name {
				cd = &td.ContainerDefinitions[j]
			}
		}
		if cd == nil {
			return invalid("The container %s does not exist in the task definition.", name)
		}
		if !slices.ContainsFunc(cd.PortMappings, func(m ecsapi.PortMapping) bool { return deref(m.ContainerPort) == port }) {
			return invalid("The container %s did not have a container port %d defined.", name, port)
		}
	}
	return nil
}

// serviceDrainDelay is drainDelay for the service a task belongs to (its
// group "service:<name>"); 0 for other tasks.
func (s *Service) serviceDrainDelay(ctx context.Context, t *taskRecord) (time.Duration, error) {
	name, ok := strings.CutPrefix(t.Group, "service:")
	if !ok || s.loadBalancing() == nil {
		return 0, nil
	}
	r, _, err := s.getService(ctx, t.Cluster, name)
	if errs.Is(err, errs.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return s.drainDelay(ctx, r.LoadBalancers)
}

// RunDrainGate releases held tasks whose DrainUntil has passed, until ctx
// ends: their assignment then tells the agent STOPPED. Every server may run
// it; the release is a compare-and-swap on the task. It polls the (usually
// empty) index every interval.
func (s *Service) RunDrainGate(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.releaseDrained(ctx, s.now().UTC())
		if err != nil && ctx.Err() == nil && !failing {
			s.log.Warn("drain gate pass failed", "err", err)
		}
		failing = err != nil
	}
}

// releaseDrained releases every held task due at now.
func (s *Service) releaseDrained(ctx context.Context, now time.Time) error {
	res, err := s.st.List(ctx, keyDrain, store.ListOptions{})
	if err != nil {
		return err
	}
	var firstErr error
	for _, kv := range res.KVs {
		var d drainRecord
		if json.Unmarshal(kv.Value, &d) == nil && now.Before(d.Until) {
			continue
		}
		cluster, id, ok := strings.Cut(strings.TrimPrefix(kv.Key, keyDrain), "/")
		if !ok {
			continue
		}
		if err := s.ReleaseDrainedTask(ctx, cluster, id); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// ReleaseDrainedTask ends a task's drain gate now: its assignment tells the
// agent STOPPED. A task not held (or gone) only loses its index entry.
func (s *Service) ReleaseDrainedTask(ctx context.Context, cluster, id string) error {
	dk := drainKey(cluster, id)
	for {
		t, rev, err := s.getTask(ctx, cluster, id)
		if errs.Is(err, errs.NotFound) {
			_, err = s.st.Txn(ctx, nil, store.Delete(dk))
			return err
		}
		if err != nil {
			return err
		}
		if t.DrainUntil == nil {
			_, err = s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(taskKey(cluster, id), rev)}, store.Delete(dk))
			return err
		}
		t.DrainUntil = nil
		t.Version++
		tb, _ := json.Marshal(t)
		ops := []store.Op{store.Put(taskKey(cluster, id), tb), store.Delete(dk)}
		if t.InstanceID != "" {
			ab, _ := json.Marshal(assignmentRecord{Cluster: cluster, TaskID: id, DesiredStatus: t.DesiredStatus, Version: t.Version})
			ops = append(ops, store.Put(assignKey(t.InstanceID, id), ab))
		}
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(taskKey(cluster, id), rev)}, ops...)
		if err != nil {
			return err
		}
		if res.Succeeded {
			s.log.Info("task drained; stopping", "cluster", cluster, "task", id)
			return nil
		}
	}
}

// AddServiceEvents posts events on a service (newest first, ECS's limits),
// for controllers of other services (load balancer registration). A
// service that is gone is not an error.
func (s *Service) AddServiceEvents(ctx context.Context, clusterARN, name string, msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	cluster := clusterARN[strings.LastIndexByte(clusterARN, '/')+1:]
	now := s.now().UTC()
	_, err := s.changeService(ctx, cluster, name, func(r *serviceRecord) error {
		r.Events = deploy.AppendEvents(r.Events, msgs, now, newEventID)
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// updateLoadBalancersCheck prepares UpdateService's handling of
// loadBalancers: lbs nil keeps the service's; otherwise they are checked
// against the task definition the service will run (td, or the current
// one, read before the record's compare-and-swap) and replace the
// service's, and a change rolls a new deployment. The returned function
// applies that to the record.
func (s *Service) updateLoadBalancersCheck(ctx context.Context, lbs []ecsapi.LoadBalancer, td *ecsapi.TaskDefinition) (func(*serviceRecord) (bool, error), error) {
	if lbs == nil {
		return func(r *serviceRecord) (bool, error) {
			if td != nil && len(r.LoadBalancers) > 0 && s.loadBalancing() != nil {
				// A new task definition must still fit the load balancers.
				infos := make([]TargetGroupInfo, len(r.LoadBalancers))
				for i, lb := range r.LoadBalancers {
					info, err := s.loadBalancing().TargetGroup(ctx, deref(lb.TargetGroupArn))
					if err != nil && !errs.Is(err, errs.NotFound) {
						return false, err
					}
					if errs.Is(err, errs.NotFound) {
						info = TargetGroupInfo{ARN: deref(lb.TargetGroupArn), TargetType: "instance", LoadBalancers: []string{"?"}}
						if deref(td.NetworkMode) == ecsapi.NetworkModeAwsvpc {
							info.TargetType = "ip"
						}
					}
					infos[i] = info
				}
				return false, checkLoadBalancersPure(r.LoadBalancers, infos, td)
			}
			return false, nil
		}, nil
	}
	return func(r *serviceRecord) (bool, error) {
		use := td
		if use == nil {
			rec, _, err := s.findTaskDef(ctx, r.TaskDefinition)
			if err != nil {
				return false, err
			}
			use = &rec.TaskDefinition
		}
		if err := s.checkLoadBalancers(ctx, lbs, use); err != nil {
			return false, err
		}
		if len(lbs) == 0 {
			lbs = nil
		}
		changed := !jsonEqual(lbs, r.LoadBalancers)
		r.LoadBalancers = lbs
		return changed, nil
	}, nil
}
