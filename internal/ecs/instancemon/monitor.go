// Package instancemon is ECS's lost-instance monitor: it writes STOPPED
// the tasks of a container instance whose agent stayed away for LostAfter
// or that was deregistered. It reads and writes the records of package
// ecsstate; the service controller (package ecs) shares its reachability
// decision (ecsstate.DecideReachable).
//
// The lost-host policy (docs/agent.md, "Lost hosts"; decision 15 in
// docs/decisions.md). An agent that stops reporting does not stop its
// tasks: ECS never stops EC2 tasks because their agent disconnected, and a
// short partition must not become an outage.
//
//   - Disconnected (the presence key under ecsstate.KeyAgents, kept by the open
//     assignment stream, is absent): DescribeContainerInstances shows
//     agentConnected false; nothing is placed there (placement needs a
//     connected agent; the applier compares on the presence key); its
//     tasks stay as they are.
//   - Unreachable (disconnected for DisconnectGrace, ecsstate.DecideReachable): the
//     service controller sets its tasks aside (deploy.Instance.Unreachable)
//     and starts the services' tasks elsewhere; the old ones keep running
//     and are never told to stop while away. When the agent is back (and
//     has been for rejoinSettle, so that its reports are in), its tasks
//     count again and the surplus is stopped like any scale-in.
//   - Lost (disconnected for LostAfter, default 10 minutes, or
//     deregistered): the lost-instance monitor below writes its tasks
//     STOPPED, observed state included (stop code TerminationNotice). This
//     is the one exception to "observed state is written only from agent
//     reports" (package ecsstate): the agent cannot report, so the control plane
//     writes on its behalf, under a compare on the presence key being
//     absent so that an agent that came back wins.
package instancemon

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// DefaultLostAfter is how long an agent may stay disconnected before the
// tasks of its instance are written STOPPED.
const DefaultLostAfter = 10 * time.Minute

// Config tunes the lost-instance monitor.
type Config struct {
	// LostAfter is how long an ACTIVE or DRAINING instance's agent presence
	// key may be absent, timed from when the monitor first saw it absent,
	// before the instance is lost and its tasks are written STOPPED. 0:
	// DefaultLostAfter; negative: never (ECS's behaviour: only a forced
	// deregistration ends them).
	LostAfter time.Duration
	// Resync is how often the monitor looks without a change under
	// ecsstate.KeyAgents (the decision is time based). Default 1 s.
	Resync time.Duration
	Log    *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
}

// LostReason is the stoppedReason of a task whose instance was lost after
// its agent stayed away for d. It keeps the prefix of ECS's reason for a
// vanished host ("Host EC2 (instance i-…) terminated.") and says what
// Berth knows: the agent is unreachable, not that the host terminated.
func LostReason(ec2InstanceID string, d time.Duration) string {
	return fmt.Sprintf("Host EC2 (instance %s) is unreachable: its agent has not reported for %s.", ec2InstanceID, d)
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
func decideLost(view []ecsstate.InstancePresence, absentSince map[string]time.Time, now time.Time, lostAfter time.Duration) (map[string]time.Time, []ecsstate.InstancePresence) {
	next := map[string]time.Time{}
	var lost []ecsstate.InstancePresence
	for _, in := range view {
		if in.ID == "" || in.Connected {
			continue
		}
		since, ok := absentSince[in.ID]
		if !ok {
			since = now
		}
		switch in.Status {
		case ecsstate.InstanceInactive:
			next[in.ID] = since
			lost = append(lost, in)
		case ecsstate.InstanceActive, ecsstate.InstanceDraining:
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
func lostTask(t ecsstate.TaskRecord, reason string, containers []string, now time.Time) (ecsstate.TaskRecord, bool) {
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
	t.DesiredStatus = ecsstate.DesiredStopped
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

// Monitor is the lost-instance monitor.
type Monitor struct {
	st          store.Store
	cfg         Config
	absentSince map[string]time.Time // instance id -> first seen without its agent
	// settled remembers, per lost instance, the assignment index seen when
	// none of its tasks was left to stop: while it is unchanged the tasks
	// are not read again.
	settled map[string]indexPrint
	// tds caches task definitions' container names by ARN: a revision's
	// content never changes. Bounded: cleared when full.
	tds     map[string][]string
	failing bool
}

// indexPrint identifies the state of an instance's assignment index: any
// task placed, rewritten or collected changes it.
type indexPrint struct {
	n      int
	maxRev int64
}

// New returns the lost-instance monitor over st.
func New(st store.Store, cfg Config) *Monitor {
	if cfg.LostAfter == 0 {
		cfg.LostAfter = DefaultLostAfter
	}
	if cfg.Resync <= 0 {
		cfg.Resync = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Monitor{st: st, cfg: cfg, absentSince: map[string]time.Time{}, settled: map[string]indexPrint{}, tds: map[string][]string{}}
}

// Run runs the monitor until ctx ends. It looks whenever a presence key
// changes and every cfg.Resync.
func (m *Monitor) Run(ctx context.Context) {
	kick := make(chan struct{}, 1)
	go ecsstate.KickOnChange(ctx, m.st, ecsstate.KeyAgents, nil, kick)
	tick := time.NewTicker(m.cfg.Resync)
	defer tick.Stop()
	for {
		err := m.Pass(ctx, m.cfg.Now().UTC())
		switch {
		case err != nil && ctx.Err() == nil:
			if !m.failing {
				m.cfg.Log.Warn("lost-instance monitor pass failed", "err", err)
			}
			m.failing = true
		case err == nil && m.failing:
			m.cfg.Log.Info("lost-instance monitor recovered")
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

// Pass reads every instance and presence key, decides which instances are
// lost at now, and stops the tasks left on them.
func (m *Monitor) Pass(ctx context.Context, now time.Time) error {
	view, err := m.presenceView(ctx)
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
func (m *Monitor) presenceView(ctx context.Context) ([]ecsstate.InstancePresence, error) {
	ires, err := m.st.List(ctx, ecsstate.KeyInstances, store.ListOptions{})
	if err != nil {
		return nil, err
	}
	ares, err := m.st.List(ctx, ecsstate.KeyAgents, store.ListOptions{Revision: ires.Revision, KeysOnly: true})
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, kv := range ares.KVs {
		present[strings.TrimPrefix(kv.Key, ecsstate.KeyAgents)] = true
	}
	view := make([]ecsstate.InstancePresence, 0, len(ires.KVs))
	for _, kv := range ires.KVs {
		var rec ecsstate.InstanceRecord
		if json.Unmarshal(kv.Value, &rec) != nil {
			continue
		}
		view = append(view, ecsstate.InstancePresence{ID: rec.ID, Cluster: rec.Cluster, EC2InstanceID: rec.Ec2InstanceID,
			Status: rec.Status, Connected: present[rec.ID]})
	}
	return view, nil
}

// handle stops the tasks left on a lost instance, unless its assignment
// index is as it was when nothing was left to stop.
func (m *Monitor) handle(ctx context.Context, in ecsstate.InstancePresence, now time.Time) error {
	if _, ok := m.settled[in.ID]; ok && in.Status == ecsstate.InstanceInactive {
		return nil // no task is placed on an INACTIVE instance: nothing new to stop
	}
	res, err := m.st.List(ctx, ecsstate.KeyAssign+in.ID+"/", store.ListOptions{})
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
	if in.Status == ecsstate.InstanceInactive {
		reason = deploy.ReasonDeregistered
	}
	n, back, err := m.stopLostTasks(ctx, in, res.KVs, reason, now)
	if n > 0 {
		m.cfg.Log.Info("tasks of lost container instance stopped", "cluster", in.Cluster, "instance", in.ID,
			"ec2InstanceId", in.EC2InstanceID, "tasks", n, "absentFor", now.Sub(m.absentSince[in.ID]).Round(time.Millisecond))
	}
	switch {
	case err != nil:
		return err
	case back:
		m.cfg.Log.Info("agent of lost container instance is back", "cluster", in.Cluster, "instance", in.ID)
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
func (m *Monitor) stopLostTasks(ctx context.Context, in ecsstate.InstancePresence, assigns []store.KV, reason string, now time.Time) (int, bool, error) {
	presence := ecsstate.KeyAgents + in.ID
	pending := make([]string, 0, len(assigns)) // task keys
	for _, kv := range assigns {
		var ar ecsstate.AssignmentRecord
		if json.Unmarshal(kv.Value, &ar) != nil || ar.TaskID == "" {
			continue
		}
		pending = append(pending, ecsstate.TaskKey(cmp.Or(ar.Cluster, in.Cluster), ar.TaskID))
	}
	written := 0
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == lostAttempts {
			return written, false, errs.E(errs.Unavailable, "tasks of lost container instance %s keep changing; retrying", in.ID)
		}
		var retry []string
		for chunk := range slices.Chunk(pending, ecsstate.MaxBatchTasks(m.st)) {
			cmps, ops, keys, err := m.lostTaskWrites(ctx, in.ID, chunk, reason, now)
			if err != nil {
				return written, false, err
			}
			if len(keys) == 0 {
				continue
			}
			res, err := m.st.Txn(ctx, append(cmps, store.Absent(presence)), ops...)
			if err != nil {
				return written, false, err
			}
			if res.Succeeded {
				written += len(keys)
				continue
			}
			if _, err := m.st.Get(ctx, presence); err == nil {
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
func (m *Monitor) lostTaskWrites(ctx context.Context, instanceID string, keys []string, reason string, now time.Time) ([]store.Cmp, []store.Op, []string, error) {
	var cmps []store.Cmp
	var ops []store.Op
	var written []string
	for _, key := range keys {
		kv, err := m.st.Get(ctx, key)
		if errs.Is(err, errs.NotFound) {
			continue // collected
		}
		if err != nil {
			return nil, nil, nil, err
		}
		var t ecsstate.TaskRecord
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			m.cfg.Log.Warn("task unreadable", "key", key, "err", err)
			continue
		}
		if t.InstanceID != instanceID || t.LastStatus == "STOPPED" {
			continue
		}
		nt, ok := lostTask(t, reason, m.containerNames(ctx, t.TaskDefinitionARN), now)
		if !ok {
			continue
		}
		tb, _ := json.Marshal(nt)
		ab, _ := json.Marshal(ecsstate.AssignmentRecord{Cluster: nt.Cluster, TaskID: nt.ID, DesiredStatus: nt.DesiredStatus, Version: nt.Version})
		cmps = append(cmps, store.ModRevisionIs(key, kv.ModRevision))
		ops = append(ops, store.Put(key, tb), store.Put(ecsstate.AssignKey(instanceID, nt.ID), ab))
		written = append(written, key)
	}
	return cmps, ops, written, nil
}

// containerNames returns the names of a task definition's containers, nil
// when it cannot be read (the task's reported containers are then all
// there is).
func (m *Monitor) containerNames(ctx context.Context, tdARN string) []string {
	if names, ok := m.tds[tdARN]; ok {
		return names
	}
	key, ok := ecsstate.TaskDefKeyOfARN(tdARN)
	if !ok {
		m.cfg.Log.Debug("task definition ARN unreadable", "taskDefinition", tdARN)
		return nil
	}
	kv, err := m.st.Get(ctx, key)
	var td ecsstate.TaskDefRecord
	if err == nil {
		err = json.Unmarshal(kv.Value, &td)
	}
	if err != nil {
		m.cfg.Log.Debug("task definition unreadable", "taskDefinition", tdARN, "err", err)
		return nil
	}
	names := make([]string, 0, len(td.TaskDefinition.ContainerDefinitions))
	for _, cd := range td.TaskDefinition.ContainerDefinitions {
		if cd.Name != nil {
			names = append(names, *cd.Name)
		} else {
			names = append(names, "")
		}
	}
	if len(m.tds) >= maxCachedTaskDefs {
		clear(m.tds)
	}
	m.tds[tdARN] = names
	return names
}

// maxCachedTaskDefs bounds Monitor.tds.
const maxCachedTaskDefs = 1024
