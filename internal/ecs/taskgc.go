package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/store"
)

// Garbage collection of stopped tasks, of deleted task definitions, of
// RunTask client tokens, and of INACTIVE services, container instances and
// clusters (purge.go).

// DefaultTaskRetention is how long a STOPPED task stays describable: ECS
// keeps stopped tasks for at least an hour. INACTIVE services, container
// instances and clusters stay describable as long.
const DefaultTaskRetention = time.Hour

// clientTokenRetention is how long a RunTask client token is remembered.
const clientTokenRetention = 24 * time.Hour

// RunTaskGC collects garbage until ctx ends: STOPPED tasks (with their
// assignment entries) whose stoppedAt is older than retention (0 means
// DefaultTaskRetention), DELETE_IN_PROGRESS task definitions that no task
// or service references, expired client tokens, and services, container
// instances and clusters INACTIVE for longer than retention (purge.go).
// It runs once at start, then every retention/4 (at most every minute).
func (s *Service) RunTaskGC(ctx context.Context, retention time.Duration) {
	if retention <= 0 {
		retention = DefaultTaskRetention
	}
	every := min(max(retention/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		st, err := s.collectGarbage(ctx, s.now().UTC(), retention)
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				s.log.Warn("task garbage collection failed", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				s.log.Info("task garbage collection recovered")
			}
			failing = false
			if st.tasks+st.taskDefs+st.tokens+st.services+st.instances+st.clusters > 0 {
				s.log.Info("garbage collected", "tasks", st.tasks, "taskDefinitions", st.taskDefs, "clientTokens", st.tokens,
					"services", st.services, "containerInstances", st.instances, "clusters", st.clusters)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gcStats counts what one collection deleted.
type gcStats struct{ tasks, taskDefs, tokens, services, instances, clusters int }

// taskExpired reports whether a task may be deleted at now: it is STOPPED
// (observed) and stopped more than retention ago. A task desired STOPPED
// that no agent will ever report on (its instance deregistered) expires
// retention after stoppingAt.
func taskExpired(t *taskRecord, instanceGone bool, now time.Time, retention time.Duration) bool {
	if t.LastStatus == "STOPPED" {
		at := t.StoppedAt
		if at == nil {
			at = t.StoppingAt
		}
		if at == nil {
			at = &t.CreatedAt
		}
		return now.Sub(*at) >= retention
	}
	if instanceGone && t.DesiredStatus == DesiredStopped && t.StoppingAt != nil {
		return now.Sub(*t.StoppingAt) >= retention
	}
	return false
}

// collectGarbage does one collection.
func (s *Service) collectGarbage(ctx context.Context, now time.Time, retention time.Duration) (gcStats, error) {
	var st gcStats
	// Instances that will report again; the others are INACTIVE or gone.
	ires, err := s.st.List(ctx, keyInstances, store.ListOptions{})
	if err != nil {
		return st, err
	}
	live := map[string]bool{}
	for _, kv := range ires.KVs {
		var r instanceRecord
		if json.Unmarshal(kv.Value, &r) == nil {
			live[r.ID] = r.Status != InstanceInactive
		}
	}
	referenced := map[string]bool{} // task definition ARNs of the tasks left
	hasTasks := map[string]bool{}   // instance ids of the tasks left
	keep := func(t *taskRecord) {
		referenced[t.TaskDefinitionARN] = true
		if t.InstanceID != "" {
			hasTasks[t.InstanceID] = true
		}
	}
	from := ""
	for {
		res, err := s.st.List(ctx, keyTasks, store.ListOptions{StartAfter: from, Limit: 500})
		if err != nil {
			return st, err
		}
		for _, kv := range res.KVs {
			from = kv.Key
			var t taskRecord
			if json.Unmarshal(kv.Value, &t) != nil {
				continue
			}
			if !taskExpired(&t, t.InstanceID != "" && !live[t.InstanceID], now, retention) {
				keep(&t)
				continue
			}
			ops := []store.Op{store.Delete(kv.Key)}
			if t.InstanceID != "" {
				ops = append(ops, store.Delete(assignKey(t.InstanceID, t.ID)))
			}
			if t.Group != "" {
				ops = append(ops, store.Delete(taskGroupKey(t.Cluster, t.Group, t.ID)))
			}
			r, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, ops...)
			if err != nil {
				return st, err
			}
			if r.Succeeded {
				st.tasks++
			} else {
				keep(&t)
			}
		}
		if !res.More {
			break
		}
	}
	n, err := s.purgeTaskDefs(ctx, referenced)
	st.taskDefs = n
	if err != nil {
		return st, err
	}
	if st.tokens, err = s.purgeClientTokens(ctx, now); err != nil {
		return st, err
	}
	// The INACTIVE records last: an instance goes once its tasks have,
	// a cluster once its services, instances and tasks have.
	if st.services, err = s.purgeServices(ctx, now, retention); err != nil {
		return st, err
	}
	if st.instances, err = s.purgeInstances(ctx, ires.KVs, hasTasks, now, retention); err != nil {
		return st, err
	}
	st.clusters, err = s.purgeClusters(ctx, now, retention)
	return st, err
}

// purgeTaskDefs deletes DELETE_IN_PROGRESS revisions that no remaining
// task references and that no service record mentions.
func (s *Service) purgeTaskDefs(ctx context.Context, referenced map[string]bool) (int, error) {
	type cand struct {
		key, arn string
		rev      int64
	}
	var cands []cand
	from := ""
	for {
		res, err := s.st.List(ctx, keyTaskDefs, store.ListOptions{StartAfter: from, Limit: 500})
		if err != nil {
			return 0, err
		}
		for _, kv := range res.KVs {
			from = kv.Key
			var rec taskDefRecord
			if json.Unmarshal(kv.Value, &rec) != nil || deref(rec.TaskDefinition.Status) != ecsapi.TaskDefinitionStatusDeleteInProgress {
				continue
			}
			a := deref(rec.TaskDefinition.TaskDefinitionArn)
			if !referenced[a] {
				cands = append(cands, cand{key: kv.Key, arn: a, rev: kv.ModRevision})
			}
		}
		if !res.More {
			break
		}
	}
	if len(cands) == 0 {
		return 0, nil
	}
	// Services are written by a later issue; any mention of the ARN in a
	// service record keeps the revision.
	sres, err := s.st.List(ctx, keyServices, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cands {
		used := false
		for _, kv := range sres.KVs {
			if bytes.Contains(kv.Value, []byte(`"`+c.arn+`"`)) {
				used = true
				break
			}
		}
		if used {
			continue
		}
		r, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(c.key, c.rev)}, store.Delete(c.key))
		if err != nil {
			return n, err
		}
		if r.Succeeded {
			n++
			s.log.Info("task definition deleted", "taskDefinition", c.arn)
		}
	}
	return n, nil
}

// purgeClientTokens deletes client tokens older than clientTokenRetention.
func (s *Service) purgeClientTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := s.st.List(ctx, keyClientTokens, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kv := range res.KVs {
		var r clientTokenRecord
		if json.Unmarshal(kv.Value, &r) != nil || now.Sub(r.CreatedAt) < clientTokenRetention {
			continue
		}
		tr, err := s.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Delete(kv.Key))
		if err != nil {
			return n, err
		}
		if tr.Succeeded {
			n++
		}
	}
	return n, nil
}
