package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// The lost-host policy (docs/agent.md, "Lost hosts"; decision 15 in
// docs/decisions.md). An agent that stops reporting does not stop its
// tasks: ECS never stops EC2 tasks because their agent disconnected, and a
// short partition must not become an outage.
//
//   - Disconnected (the presence key under keyAgents, kept by the open
//     assignment stream, is absent): DescribeContainerInstances shows
//     agentConnected false; nothing is placed there (placement needs a
//     connected agent; the applier compares on the presence key); its
//     tasks stay as they are.
//   - Unreachable (disconnected for DisconnectGrace, decideReachable): the
//     service controller sets its tasks aside (deploy.Instance.Unreachable)
//     and starts the services' tasks elsewhere; the old ones keep running
//     and are never told to stop while away. When the agent is back (and
//     has been for rejoinSettle, so that its reports are in), its tasks
//     count again and the surplus is stopped like any scale-in.
//   - Lost (disconnected for LostAfter, default 10 minutes, or
//     deregistered): the lost-instance monitor below writes its tasks
//     STOPPED, observed state included (stop code TerminationNotice). This
//     is the one exception to "observed state is written only from agent
//     reports" (ecsstate/records.go): the agent cannot report, so the control plane
//     writes on its behalf, under a compare on the presence key being
//     absent so that an agent that came back wins.

// DefaultDisconnectGrace is how long an agent may stay disconnected before
// the service tasks on its instance are started elsewhere. An agent that
// crashes or is killed (its connection closes) is disconnected at once, a
// silent host after AgentSilenceLimit (7 s): their service tasks are
// started elsewhere 5 s and 12 s later, which leaves room for a slow
// container start within the goal of 20 s. A shorter grace costs only
// an extra task while an agent is away (the old ones keep running); an
// agent restart takes about a second.
const DefaultDisconnectGrace = 5 * time.Second

// DefaultLostAfter is how long an agent may stay disconnected before the
// tasks of its instance are written STOPPED.
const DefaultLostAfter = 10 * time.Minute

// rejoinSettle is how long an agent that was unreachable must be back
// before its tasks count again: long enough for the reports it queued
// while away (a task that died meanwhile) to arrive.
const rejoinSettle = 2 * agentapi.AgentHeartbeatInterval

// LostInstanceConfig tunes the lost-instance monitor.
type LostInstanceConfig struct {
	// LostAfter is how long an ACTIVE or DRAINING instance's agent presence
	// key may be absent, timed from when the monitor first saw it absent,
	// before the instance is lost and its tasks are written STOPPED. 0:
	// DefaultLostAfter; negative: never (ECS's behaviour: only a forced
	// deregistration ends them).
	LostAfter time.Duration
	// Resync is how often the monitor looks without a change under
	// keyAgents (the decision is time based). Default 1 s.
	Resync time.Duration
}

// LostReason is the stoppedReason of a task whose instance was lost after
// its agent stayed away for d. It keeps the prefix of ECS's reason for a
// vanished host ("Host EC2 (instance i-…) terminated.") and says what
// Berth knows: the agent is unreachable, not that the host terminated.
func LostReason(ec2InstanceID string, d time.Duration) string {
	return fmt.Sprintf("Host EC2 (instance %s) is unreachable: its agent has not reported for %s.", ec2InstanceID, d)
}

// instancePresence is what the decisions look at for one container
// instance.
type instancePresence struct {
	ID, Cluster, EC2InstanceID, Status string
	Connected                          bool // the presence key exists
}

// reachClock is what decideReachable remembers between calls, per
// instance: since when it has been disconnected (away) and, for one that
// came back after it was unreachable, when it came back (back).
type reachClock struct {
	away, back map[string]time.Time
}

// decideReachable decides which instances are unreachable at now, from the
// previous call's clock (zero at first), and returns the next clock. An
// ACTIVE or DRAINING instance is unreachable once disconnected for grace
// (timed from when a call first saw it disconnected, so after a server
// restart every agent has the grace again), and, once its agent is back,
// for rejoinSettle more. INACTIVE and vanished instances are forgotten
// (the service scheduler stops their tasks as deregistered).
//
// wake is how soon the answer changes by itself (a grace or a settling
// ending), 0 when it does not.
func decideReachable(view []instancePresence, prev reachClock, now time.Time, grace time.Duration) (next reachClock, unreachable map[string]bool, wake time.Duration) {
	next = reachClock{away: map[string]time.Time{}, back: map[string]time.Time{}}
	unreachable = map[string]bool{}
	soon := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (wake == 0 || d < wake) {
			wake = d
		}
	}
	for _, in := range view {
		if in.ID == "" || (in.Status != InstanceActive && in.Status != InstanceDraining) {
			continue
		}
		if !in.Connected {
			since, ok := prev.away[in.ID]
			if !ok {
				since = now
			}
			next.away[in.ID] = since
			unreachable[in.ID] = now.Sub(since) >= grace
			soon(since.Add(grace))
			continue
		}
		back, ok := prev.back[in.ID]
		if since, was := prev.away[in.ID]; was && now.Sub(since) >= grace {
			back, ok = now, true // back from unreachable
		}
		if ok && now.Sub(back) < rejoinSettle {
			next.back[in.ID] = back
			unreachable[in.ID] = true
			soon(back.Add(rejoinSettle))
		}
	}
	for id, u := range unreachable {
		if !u {
			delete(unreachable, id)
		}
	}
	return next, unreachable, wake
}

// decideLost is the monitor's decision at now. absentSince holds when each
// instance was first seen without its agent (the previous call's answer);
// the returned map is the next call's. An ACTIVE or DRAINING instance is
// lost when it has been seen absent for at least lostAfter (never when
// lostAfter is negative); an INACTIVE one (deregistered: no agent will
// report for it again) at once. An instance first seen absent starts its
// clock at now, so after a server restart every agent has lostAfter to
// reconnect. Connected and vanished instances are forgotten. An instance
// that never had an agent (RegisterContainerInstance) is lost like any
// other; it has no tasks, so nothing is written for it.
func decideLost(view []instancePresence, absentSince map[string]time.Time, now time.Time, lostAfter time.Duration) (map[string]time.Time, []instancePresence) {
	next := map[string]time.Time{}
	var lost []instancePresence
	for _, in := range view {
		if in.ID == "" || in.Connected {
			continue
		}
		since, ok := absentSince[in.ID]
		if !ok {
			since = now
		}
		switch in.Status {
		case InstanceInactive:
			next[in.ID] = since
			lost = append(lost, in)
		case InstanceActive, InstanceDraining:
			next[in.ID] = since
			if lostAfter >= 0 && now.Sub(since) >= lostAfter {
				lost = append(lost, in)
			}
		}
	}
	return next, lost
}

// lostTask returns task t as the monitor writes it when its instance is
// lost at now, or false when there is nothing to write (t is STOPPED
// already). A task not yet desired STOPPED gets stopCode TerminationNotice
// and reason; one already being stopped (by the user, the scheduler or its
// agent) keeps its stop code and reason. Timestamps already reported are
// kept. containers are the task definition's container names: each is
// recorded STOPPED, so that none shows PENDING or RUNNING in a STOPPED
// task.
func lostTask(t taskRecord, reason string, containers []string, now time.Time) (taskRecord, bool) {
	if t.LastStatus == "STOPPED" {
		return t, false
	}
	at := func(p *time.Time) *time.Time {
		if p != nil {
			return p
		}
		n := now
		return &n
	}
	t.DesiredStatus = DesiredStopped
	t.StoppingAt = at(t.StoppingAt)
	if t.StopCode == "" {
		t.StopCode, t.StoppedReason = string(ecsapi.TaskStopCodeTerminationNotice), reason
	}
	t.LastStatus = "STOPPED"
	t.ExecutionStoppedAt = at(t.ExecutionStoppedAt)
	t.StoppedAt = at(t.StoppedAt)
	t.Containers = slices.Clone(t.Containers)
	for i := range t.Containers {
		t.Containers[i].KnownStatus = "STOPPED"
	}
	for _, name := range containers {
		if !slices.ContainsFunc(t.Containers, func(c agentapi.ContainerReport) bool { return c.Name == name }) {
			t.Containers = append(t.Containers, agentapi.ContainerReport{Name: name, KnownStatus: "STOPPED"})
		}
	}
	t.Version++
	return t, true
}

type lostMonitor struct {
	s           *Service
	cfg         LostInstanceConfig
	absentSince map[string]time.Time // instance id -> first seen without its agent
	// settled remembers, per lost instance, the assignment index seen when
	// none of its tasks was left to stop: while it is unchanged the tasks
	// are not read again.
	settled map[string]indexPrint
	failing bool
}

// indexPrint identifies the state of an instance's assignment index: any
// task placed, rewritten or collected changes it.
type indexPrint struct {
	n      int
	maxRev int64
}

// RunLostInstanceMonitor runs the lost-instance monitor until ctx ends. It
// looks whenever a presence key changes and every cfg.Resync.
func (s *Service) RunLostInstanceMonitor(ctx context.Context, cfg LostInstanceConfig) {
	m := newLostMonitor(s, cfg)
	kick := make(chan struct{}, 1)
	go kickOnChange(ctx, s.st, keyAgents, nil, kick)
	tick := time.NewTicker(m.cfg.Resync)
	defer tick.Stop()
	for {
		err := m.pass(ctx, s.now().UTC())
		switch {
		case err != nil && ctx.Err() == nil:
			if !m.failing {
				s.log.Warn("lost-instance monitor pass failed", "err", err)
			}
			m.failing = true
		case err == nil && m.failing:
			s.log.Info("lost-instance monitor recovered")
			m.failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

func newLostMonitor(s *Service, cfg LostInstanceConfig) *lostMonitor {
	if cfg.LostAfter == 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	return &lostMonitor{s: s, cfg: cfg, absentSince: map[string]time.Time{}, settled: map[string]indexPrint{}}
}

// pass reads every instance and presence key, decides which instances are
// lost at now, and stops the tasks left on them.
func (m *lostMonitor) pass(ctx context.Context, now time.Time) error {
	view, err := m.s.presenceView(ctx)
	if err != nil {
		return err
	}
	next, lost := decideLost(view, m.absentSince, now, m.cfg.LostAfter)
	m.absentSince = next
	for id := range m.settled {
		if _, ok := next[id]; !ok {
			delete(m.settled, id)
		}
	}
	var firstErr error
	for _, in := range lost {
		if err := m.handle(ctx, in, now); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// presenceView reads every container instance and the presence keys at
// one revision.
func (s *Service) presenceView(ctx context.Context) ([]instancePresence, error) {
	ires, err := s.st.List(ctx, keyInstances, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	ares, err := s.st.List(ctx, keyAgents, store.ListOptions{Revision: ires.Revision, KeysOnly: true})
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, kv := range ares.KVs {
		present[strings.TrimPrefix(kv.Key, keyAgents)] = true
	}
	view := make([]instancePresence, 0, len(ires.KVs))
	for _, kv := range ires.KVs {
		var rec instanceRecord
		if json.Unmarshal(kv.Value, &rec) != nil {
			continue
		}
		view = append(view, instancePresence{ID: rec.ID, Cluster: rec.Cluster, EC2InstanceID: rec.Ec2InstanceID,
			Status: rec.Status, Connected: present[rec.ID]})
	}
	return view, nil
}

// handle stops the tasks left on a lost instance, unless its assignment
// index is as it was when nothing was left to stop.
func (m *lostMonitor) handle(ctx context.Context, in instancePresence, now time.Time) error {
	if _, ok := m.settled[in.ID]; ok && in.Status == InstanceInactive {
		return nil // no task is placed on an INACTIVE instance: nothing new to stop
	}
	res, err := m.s.st.List(ctx, keyAssign+in.ID+"/", store.ListOptions{})
	if err != nil {
		return err
	}
	fp := indexPrint{n: len(res.KVs)}
	for _, kv := range res.KVs {
		fp.maxRev = max(fp.maxRev, kv.ModRevision)
	}
	if p, ok := m.settled[in.ID]; ok && p == fp {
		return nil
	}
	host := in.EC2InstanceID
	if host == "" {
		host = in.ID
	}
	reason := LostReason(host, m.cfg.LostAfter)
	if in.Status == InstanceInactive {
		reason = deploy.ReasonDeregistered
	}
	n, back, err := m.s.stopLostTasks(ctx, in, res.KVs, reason, now)
	if n > 0 {
		m.s.log.Info("tasks of lost container instance stopped", "cluster", in.Cluster, "instance", in.ID,
			"ec2InstanceId", in.EC2InstanceID, "tasks", n, "absentFor", now.Sub(m.absentSince[in.ID]).Round(time.Millisecond))
	}
	switch {
	case err != nil:
		return err
	case back:
		m.s.log.Info("agent of lost container instance is back", "cluster", in.Cluster, "instance", in.ID)
	case n == 0:
		m.settled[in.ID] = fp
	}
	return nil
}

// lostAttempts bounds how often stopLostTasks reads a task again after a
// compare failed because the task changed meanwhile.
const lostAttempts = 5

// stopLostTasks writes every task of assignment index entries assigns that
// is not STOPPED as lostTask makes it (with reason when it was not being
// stopped), with its assignment entry, in
// transactions of up to maxBatchTasks tasks, each compared on the tasks'
// revisions and on the instance's presence key being absent. It returns
// how many tasks it wrote, and back when the agent came back (the presence
// key exists): then nothing more is written.
func (s *Service) stopLostTasks(ctx context.Context, in instancePresence, assigns []store.KV, reason string, now time.Time) (int, bool, error) {
	presence := keyAgents + in.ID
	pending := make([]string, 0, len(assigns)) // task keys
	for _, kv := range assigns {
		var ar assignmentRecord
		if json.Unmarshal(kv.Value, &ar) != nil || ar.TaskID == "" {
			continue
		}
		pending = append(pending, taskKey(orDefault(ar.Cluster, in.Cluster), ar.TaskID))
	}
	written := 0
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == lostAttempts {
			return written, false, errs.E(errs.Unavailable, "tasks of lost container instance %s keep changing; retrying", in.ID)
		}
		var retry []string
		for chunk := range slices.Chunk(pending, s.maxBatchTasks()) {
			cmps, ops, keys, err := s.lostTaskWrites(ctx, in.ID, chunk, reason, now)
			if err != nil {
				return written, false, err
			}
			if len(keys) == 0 {
				continue
			}
			res, err := s.st.Txn(ctx, append(cmps, store.Absent(presence)), ops...)
			if err != nil {
				return written, false, err
			}
			if res.Succeeded {
				written += len(keys)
				continue
			}
			if _, err := s.st.Get(ctx, presence); err == nil {
				return written, true, nil
			} else if !errs.Is(err, errs.NotFound) {
				return written, false, err
			}
			retry = append(retry, keys...)
		}
		pending = retry
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
				return written, false, errs.Wrap(errs.Unavailable, ctx.Err(), "lost-instance monitor interrupted")
			case <-time.After(time.Duration(rand.IntN(attempt+1)+1) * 5 * time.Millisecond):
			}
		}
	}
	return written, false, nil
}

// lostTaskWrites reads the tasks at keys and returns the compares and
// writes that stop those not STOPPED yet, and their keys. A task gone or
// moved to another instance is skipped.
func (s *Service) lostTaskWrites(ctx context.Context, instanceID string, keys []string, reason string, now time.Time) ([]store.Cmp, []store.Op, []string, error) {
	var cmps []store.Cmp
	var ops []store.Op
	var written []string
	for _, key := range keys {
		kv, err := s.st.Get(ctx, key)
		if errs.Is(err, errs.NotFound) {
			continue // collected
		}
		if err != nil {
			return nil, nil, nil, err
		}
		var t taskRecord
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			s.log.Warn("task unreadable", "key", key, "err", err)
			continue
		}
		if t.InstanceID != instanceID || t.LastStatus == "STOPPED" {
			continue
		}
		nt, ok := lostTask(t, reason, s.containerNames(ctx, t.TaskDefinitionARN), now)
		if !ok {
			continue
		}
		tb, _ := json.Marshal(nt)
		ab, _ := json.Marshal(assignmentRecord{Cluster: nt.Cluster, TaskID: nt.ID, DesiredStatus: nt.DesiredStatus, Version: nt.Version})
		cmps = append(cmps, store.ModRevisionIs(key, kv.ModRevision))
		ops = append(ops, store.Put(key, tb), store.Put(assignKey(instanceID, nt.ID), ab))
		written = append(written, key)
	}
	return cmps, ops, written, nil
}

// containerNames returns the names of a task definition's containers, nil
// when it cannot be read (the task's reported containers are then all
// there is).
func (s *Service) containerNames(ctx context.Context, tdARN string) []string {
	td, err := s.tdCache.get(ctx, s, tdARN)
	if err != nil {
		s.log.Debug("task definition unreadable", "taskDefinition", tdARN, "err", err)
		return nil
	}
	names := make([]string, 0, len(td.TaskDefinition.ContainerDefinitions))
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		names = append(names, deref(cd.Name))
	}
	return names
}
