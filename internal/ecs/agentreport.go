package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// ApplyReport applies an agent's observed state to the tasks assigned to
// its instance. Entries about other instances' tasks, or with an invalid
// ARN, are ignored and logged: one bad entry must not cost the others their
// state (the agent does not send a report twice).
//
// The changed tasks are written in transactions of up to maxBatchTasks
// tasks, each task compared on the revision it was read at; a transaction
// that fails its compares (a task changed meanwhile, say by StopTask) is
// applied again task by task on fresh reads (applyTaskReport). An agent
// reports many tasks at once, so this saves most of the transactions.
func (s *Service) ApplyReport(ctx context.Context, cred AgentCredential, rep agentapi.Report) error {
	s.seen.Store(cred.InstanceID, s.now())
	type update struct {
		tr  agentapi.TaskReport
		key string
		rev int64
		ops []store.Op
	}
	var batch []update
	flush := func() error {
		for len(batch) > 0 {
			n := min(len(batch), s.maxBatchTasks())
			chunk := batch[:n]
			batch = batch[n:]
			var cmps []store.Cmp
			var ops []store.Op
			for _, u := range chunk {
				cmps = append(cmps, store.ModRevisionIs(u.key, u.rev))
				ops = append(ops, u.ops...)
			}
			res, err := s.st.Txn(ctx, cmps, ops...)
			if err != nil {
				return err
			}
			if res.Succeeded {
				continue
			}
			for _, u := range chunk {
				if err := s.applyTaskReport(ctx, cred, u.tr); err != nil {
					return err
				}
			}
		}
		return nil
	}
	seen := map[string]bool{}
	now := s.now().UTC()
	for _, tr := range rep.Tasks {
		cluster, id, err := s.parseTaskARN(tr.TaskArn)
		if err != nil {
			// One bad entry must not cost the others their state.
			s.log.Warn("agent report about an invalid task ARN ignored", "instance", cred.InstanceID, "err", err)
			continue
		}
		key := taskKey(cluster, id)
		if seen[key] { // the same task twice: after the first is written
			if err := flush(); err != nil {
				return err
			}
			if err := s.applyTaskReport(ctx, cred, tr); err != nil {
				return err
			}
			continue
		}
		seen[key] = true
		kv, err := s.st.Get(ctx, key)
		if errs.Is(err, errs.NotFound) {
			continue // collected already: nothing to update
		}
		if err != nil {
			return errors.Join(err, flush())
		}
		var t taskRecord
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			return errors.Join(errs.Wrap(errs.Internal, err, "decode task"), flush())
		}
		if t.InstanceID != cred.InstanceID {
			s.log.Warn("agent report about a task of another instance ignored", "instance", cred.InstanceID, "task", tr.TaskArn)
			continue
		}
		changed, desiredChanged := ApplyObserved(&t, tr, now)
		if !changed {
			continue
		}
		t.Version++
		tb, _ := json.Marshal(t)
		u := update{tr: tr, key: key, rev: kv.ModRevision, ops: []store.Op{store.Put(key, tb)}}
		if desiredChanged {
			ab, _ := json.Marshal(assignmentRecord{Cluster: cluster, TaskID: id, DesiredStatus: t.DesiredStatus, Version: t.Version})
			u.ops = append(u.ops, store.Put(assignKey(t.InstanceID, id), ab))
		}
		batch = append(batch, u)
	}
	return flush()
}

func (s *Service) applyTaskReport(ctx context.Context, cred AgentCredential, tr agentapi.TaskReport) error {
	cluster, id, err := s.parseTaskARN(tr.TaskArn)
	if err != nil {
		return err
	}
	key := taskKey(cluster, id)
	for {
		kv, err := s.st.Get(ctx, key)
		if errs.Is(err, errs.NotFound) {
			return nil // collected already: nothing to update
		}
		if err != nil {
			return err
		}
		var t taskRecord
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			return errs.Wrap(errs.Internal, err, "decode task")
		}
		if t.InstanceID != cred.InstanceID {
			s.log.Warn("agent report about a task of another instance ignored", "instance", cred.InstanceID, "task", tr.TaskArn)
			return nil
		}
		changed, desiredChanged := ApplyObserved(&t, tr, s.now().UTC())
		if !changed {
			return nil
		}
		t.Version++
		tb, _ := json.Marshal(t)
		ops := []store.Op{store.Put(key, tb)}
		if desiredChanged {
			ab, _ := json.Marshal(assignmentRecord{Cluster: cluster, TaskID: id, DesiredStatus: t.DesiredStatus, Version: t.Version})
			ops = append(ops, store.Put(assignKey(t.InstanceID, id), ab))
		}
		res, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(key, kv.ModRevision)}, ops...)
		if err != nil {
			return err
		}
		if res.Succeeded {
			return nil
		}
	}
}

// containerRank orders container statuses.
var containerRank = map[string]int{"PENDING": 0, "RUNNING": 1, "STOPPED": 2}

// ApplyObserved merges an agent's report into a task record, moving only
// forward. It reports whether anything changed, and whether the desired
// state changed (the agent stopped the task by itself: an essential
// container exited, or the task failed to start). A task already STOPPED
// (reported so, or written so by the lost-instance monitor) stays STOPPED
// with its containers: a late report of a returning agent adds detail
// (exit codes, runtime ids) but no running container.
func ApplyObserved(t *taskRecord, tr agentapi.TaskReport, now time.Time) (changed, desiredChanged bool) {
	wasStopped := t.LastStatus == "STOPPED"
	setTime := func(dst **time.Time, src *time.Time) {
		if *dst == nil && src != nil {
			v := src.UTC()
			*dst = &v
			changed = true
		}
	}
	if r := agentapi.StatusRank(tr.KnownStatus); r > agentapi.StatusRank(t.LastStatus) {
		t.LastStatus = tr.KnownStatus
		changed = true
	}
	setTime(&t.PullStartedAt, tr.PullStartedAt)
	setTime(&t.PullStoppedAt, tr.PullStoppedAt)
	setTime(&t.StartedAt, tr.StartedAt)
	setTime(&t.ConnectivityAt, tr.ConnectivityAt)
	setTime(&t.ExecutionStoppedAt, tr.ExecutionStoppedAt)
	setTime(&t.StoppedAt, tr.StoppedAt)
	if tr.HealthStatus != "" && tr.HealthStatus != t.HealthStatus && t.LastStatus != "STOPPED" {
		t.HealthStatus = tr.HealthStatus
		changed = true
	}
	if tr.Attachments != nil && !jsonEqual(t.Attachments, tr.Attachments) {
		t.Attachments = tr.Attachments
		changed = true
	}
	for _, cr := range tr.Containers {
		i := slices.IndexFunc(t.Containers, func(c agentapi.ContainerReport) bool { return c.Name == cr.Name })
		if i < 0 {
			if wasStopped {
				cr.KnownStatus = "STOPPED"
			}
			t.Containers = append(t.Containers, cr)
			changed = true
			continue
		}
		c := &t.Containers[i]
		before, _ := json.Marshal(c)
		if containerRank[cr.KnownStatus] > containerRank[c.KnownStatus] {
			c.KnownStatus = cr.KnownStatus
		}
		if c.ExitCode == nil && cr.ExitCode != nil {
			c.ExitCode = cr.ExitCode
		}
		if cr.RuntimeID != "" {
			c.RuntimeID = cr.RuntimeID
		}
		if cr.ImageDigest != "" {
			c.ImageDigest = cr.ImageDigest
		}
		if c.Reason == "" && cr.Reason != "" {
			c.Reason = cr.Reason
		}
		if cr.NetworkBindings != nil {
			c.NetworkBindings = cr.NetworkBindings
		}
		if cr.NetworkInterfaces != nil {
			c.NetworkInterfaces = cr.NetworkInterfaces
		}
		if cr.HealthStatus != "" && c.KnownStatus != "STOPPED" {
			c.HealthStatus = cr.HealthStatus
		}
		after, _ := json.Marshal(c)
		changed = changed || string(before) != string(after)
	}
	if tr.StopCode != "" && t.StopCode == "" {
		t.StopCode, t.StoppedReason = tr.StopCode, tr.StoppedReason
		changed = true
	}
	// A task the agent stopped by itself is desired STOPPED from then on.
	if t.DesiredStatus != DesiredStopped && (tr.StopCode != "" || agentapi.StatusRank(t.LastStatus) >= agentapi.StatusRank("DEACTIVATING")) {
		t.DesiredStatus = DesiredStopped
		if t.StoppingAt == nil {
			n := now
			t.StoppingAt = &n
		}
		changed, desiredChanged = true, true
	}
	return changed, desiredChanged
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
