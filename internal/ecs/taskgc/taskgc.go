// Package taskgc is ECS's garbage collector: it deletes STOPPED tasks
// (with their assignment and group index entries), deleted task
// definitions no task uses, expired RunTask client tokens, and services,
// container instances and clusters INACTIVE for longer than the retention
// (purge.go). It reads and writes the records of package ecsstate; the
// ECS API (package ecs) answers what is gone as MISSING. docs/tasks.md.
package taskgc

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/store"
)

// DefaultTaskRetention is how long a STOPPED task stays describable: ECS
// keeps stopped tasks for at least an hour. INACTIVE services, container
// instances and clusters stay describable as long.
const DefaultTaskRetention = time.Hour

// clientTokenRetention is how long a RunTask client token is remembered.
const clientTokenRetention = 24 * time.Hour

// Config configures the collector.
type Config struct {
	// Retention: how long STOPPED tasks and INACTIVE records stay; 0 means
	// DefaultTaskRetention.
	Retention time.Duration
	// InstancePurged is called for each container instance purged (with
	// its agent credential's access key), so that what this server keeps
	// of it in memory (the credential cache, the agent's last heartbeat)
	// goes at once; nil: none.
	InstancePurged func(instanceID, accessKey string)
	Log            *slog.Logger     // nil: discard
	Now            func() time.Time // nil: time.Now
}

// Collector collects ECS's garbage in the store.
type Collector struct {
	st        store.Store
	retention time.Duration
	purged    func(instanceID, accessKey string)
	log       *slog.Logger
	now       func() time.Time
}

// New returns a collector over st.
func New(st store.Store, cfg Config) *Collector {
	c := &Collector{st: st, retention: cfg.Retention, purged: cfg.InstancePurged, log: cfg.Log, now: cfg.Now}
	if c.retention <= 0 {
		c.retention = DefaultTaskRetention
	}
	if c.purged == nil {
		c.purged = func(string, string) {}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Run collects garbage until ctx ends: once at start, then every
// retention/4 (at most every minute).
func (c *Collector) Run(ctx context.Context) {
	every := min(max(c.retention/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		st, err := c.Collect(ctx, c.now().UTC())
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing {
				c.log.Warn("task garbage collection failed", "err", err)
			}
			failing = true
		case err == nil:
			if failing {
				c.log.Info("task garbage collection recovered")
			}
			failing = false
			if st != (Stats{}) {
				c.log.Info("garbage collected", "tasks", st.Tasks, "taskDefinitions", st.TaskDefs, "clientTokens", st.Tokens,
					"services", st.Services, "containerInstances", st.Instances, "clusters", st.Clusters)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Stats counts what one collection deleted.
type Stats struct{ Tasks, TaskDefs, Tokens, Services, Instances, Clusters int }

// taskExpired reports whether a task may be deleted at now: it is STOPPED
// (observed) and stopped more than retention ago. A task desired STOPPED
// that no agent will ever report on (its instance deregistered) expires
// retention after stoppingAt.
func taskExpired(t *ecsstate.TaskRecord, instanceGone bool, now time.Time, retention time.Duration) bool {
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
	if instanceGone && t.DesiredStatus == ecsstate.DesiredStopped && t.StoppingAt != nil {
		return now.Sub(*t.StoppingAt) >= retention
	}
	return false
}

// Collect does one collection at now.
func (c *Collector) Collect(ctx context.Context, now time.Time) (Stats, error) {
	retention := c.retention
	var st Stats
	// Instances that will report again; the others are INACTIVE or gone.
	ires, err := c.st.List(ctx, ecsstate.KeyInstances, store.ListOptions{})
	if err != nil {
		return st, err
	}
	live := map[string]bool{}
	for _, kv := range ires.KVs {
		var r ecsstate.InstanceRecord
		if json.Unmarshal(kv.Value, &r) == nil {
			live[r.ID] = r.Status != ecsstate.InstanceInactive
		}
	}
	referenced := map[string]bool{} // task definition ARNs of the tasks left
	hasTasks := map[string]bool{}   // instance ids of the tasks left
	keep := func(t *ecsstate.TaskRecord) {
		referenced[t.TaskDefinitionARN] = true
		if t.InstanceID != "" {
			hasTasks[t.InstanceID] = true
		}
	}
	from := ""
	for {
		res, err := c.st.List(ctx, ecsstate.KeyTasks, store.ListOptions{StartAfter: from, Limit: 500})
		if err != nil {
			return st, err
		}
		for _, kv := range res.KVs {
			from = kv.Key
			var t ecsstate.TaskRecord
			if json.Unmarshal(kv.Value, &t) != nil {
				continue
			}
			if !taskExpired(&t, t.InstanceID != "" && !live[t.InstanceID], now, retention) {
				keep(&t)
				continue
			}
			ops := []store.Op{store.Delete(kv.Key)}
			if t.InstanceID != "" {
				ops = append(ops, store.Delete(ecsstate.AssignKey(t.InstanceID, t.ID)))
			}
			if t.Group != "" {
				ops = append(ops, store.Delete(ecsstate.TaskGroupKey(t.Cluster, t.Group, t.ID)))
			}
			r, err := c.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, ops...)
			if err != nil {
				return st, err
			}
			if r.Succeeded {
				st.Tasks++
			} else {
				keep(&t)
			}
		}
		if !res.More {
			break
		}
	}
	n, err := c.purgeTaskDefs(ctx, referenced)
	st.TaskDefs = n
	if err != nil {
		return st, err
	}
	if st.Tokens, err = c.purgeClientTokens(ctx, now); err != nil {
		return st, err
	}
	// The INACTIVE records last: an instance goes once its tasks have,
	// a cluster once its services, instances and tasks have.
	if st.Services, err = c.purgeServices(ctx, now, retention); err != nil {
		return st, err
	}
	if st.Instances, err = c.purgeInstances(ctx, ires.KVs, hasTasks, now, retention); err != nil {
		return st, err
	}
	st.Clusters, err = c.purgeClusters(ctx, now, retention)
	return st, err
}

// purgeTaskDefs deletes DELETE_IN_PROGRESS revisions that no remaining
// task references and that no service record mentions.
func (c *Collector) purgeTaskDefs(ctx context.Context, referenced map[string]bool) (int, error) {
	type cand struct {
		key, arn string
		rev      int64
	}
	var cands []cand
	from := ""
	for {
		res, err := c.st.List(ctx, ecsstate.KeyTaskDefs, store.ListOptions{StartAfter: from, Limit: 500})
		if err != nil {
			return 0, err
		}
		for _, kv := range res.KVs {
			from = kv.Key
			var rec ecsstate.TaskDefRecord
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
	sres, err := c.st.List(ctx, ecsstate.KeyServices, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, cd := range cands {
		used := false
		for _, kv := range sres.KVs {
			if bytes.Contains(kv.Value, []byte(`"`+cd.arn+`"`)) {
				used = true
				break
			}
		}
		if used {
			continue
		}
		r, err := c.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(cd.key, cd.rev)}, store.Delete(cd.key))
		if err != nil {
			return n, err
		}
		if r.Succeeded {
			n++
			c.log.Info("task definition deleted", "taskDefinition", cd.arn)
		}
	}
	return n, nil
}

// purgeClientTokens deletes client tokens older than clientTokenRetention.
func (c *Collector) purgeClientTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := c.st.List(ctx, ecsstate.KeyClientTokens, store.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kv := range res.KVs {
		var r ecsstate.ClientTokenRecord
		if json.Unmarshal(kv.Value, &r) != nil || now.Sub(r.CreatedAt) < clientTokenRetention {
			continue
		}
		tr, err := c.st.Txn(ctx, []store.Cmp{store.ModRevisionIs(kv.Key, kv.ModRevision)}, store.Delete(kv.Key))
		if err != nil {
			return n, err
		}
		if tr.Succeeded {
			n++
		}
	}
	return n, nil
}

func deref[T any](p *T) T {
	if p == nil {
		var z T
		return z
	}
	return *p
}
