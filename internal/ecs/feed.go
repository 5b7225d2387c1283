package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/store"
)

// The feed: committed ECS state for controllers of other services (load
// balancer targets following tasks, service discovery registration,
// events). A controller reads a channel of changes instead of threading
// calls through ECS's handlers, so it sees what was committed, in commit
// order, including changes made by agents' reports and by ECS's own
// controllers.
//
// Each feed first lists the current state (ChangeRelist, one ChangeUpsert
// per resource, ChangeSynced), then follows the store's watch. When the
// watch breaks (compaction, a lost leader), the feed lists again from
// ChangeRelist: a consumer that keeps derived state treats whatever it
// knows and does not see again before the next ChangeSynced as gone.
// Changes of one resource arrive in the order they were committed. A
// change may repeat a state already delivered (after a relist): consumers
// are idempotent, and compare Version where it matters.

// ChangeKind says what a feed item is.
type ChangeKind int

const (
	// ChangeUpsert: the resource's state as committed at Revision.
	ChangeUpsert ChangeKind = iota
	// ChangeDelete: the record is gone (tasks purged by the GC, services
	// and instances removed); the item carries the last known state.
	ChangeDelete
	// ChangeRelist: a listing of the whole state begins.
	ChangeRelist
	// ChangeSynced: the listing is complete; live changes follow.
	ChangeSynced
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeUpsert:
		return "upsert"
	case ChangeDelete:
		return "delete"
	case ChangeRelist:
		return "relist"
	case ChangeSynced:
		return "synced"
	}
	return "unknown"
}

// TaskChange is one committed state of a task, shaped as DescribeTasks
// shows it (tags included). Task is zero for ChangeRelist and ChangeSynced.
type TaskChange struct {
	Kind     ChangeKind
	Revision int64
	Task     ecsapi.Task
}

// ServiceChange is one committed state of a service, shaped as
// DescribeServices shows it (tags included; events are the service's last
// ones, newest first).
type ServiceChange struct {
	Kind     ChangeKind
	Revision int64
	Service  ecsapi.Service
}

// InstanceChange is one committed state of a container instance, shaped as
// DescribeContainerInstances shows it with its tags. It is delivered when
// the instance's record changes or its agent connects or disconnects;
// running and pending task counts are read at that moment, not on every
// task change.
type InstanceChange struct {
	Kind     ChangeKind
	Revision int64
	Instance ecsapi.ContainerInstance
}

// feedRetry is how long a feed waits before listing again after its watch
// or a listing failed.
const feedRetry = time.Second

// WatchTasks follows every task of every cluster until ctx ends; the
// channel is closed then.
func (s *Service) WatchTasks(ctx context.Context) <-chan TaskChange {
	out := make(chan TaskChange, 64)
	tds := map[string]*ecsapi.TaskDefinition{}
	conv := func(kind ChangeKind, rev int64, value []byte) (TaskChange, bool) {
		var t taskRecord
		if json.Unmarshal(value, &t) != nil {
			return TaskChange{}, false
		}
		return TaskChange{Kind: kind, Revision: rev, Task: s.taskOut(&t, s.feedTaskDef(ctx, tds, t.TaskDefinitionARN), true)}, true
	}
	go runFeed(ctx, s, keyTasks, out, func(kind ChangeKind, rev int64) TaskChange {
		return TaskChange{Kind: kind, Revision: rev}
	}, conv)
	return out
}

// feedTaskDef is cachedTaskDef for a feed's life: a revision of a task
// definition never changes its containers, and only the feed's goroutine
// uses the cache. A definition not found is not cached, so a task whose
// definition was being registered is shaped fully on its next change.
func (s *Service) feedTaskDef(ctx context.Context, cache map[string]*ecsapi.TaskDefinition, ref string) *ecsapi.TaskDefinition {
	if td, ok := cache[ref]; ok {
		return td
	}
	rec, _, err := s.findTaskDef(ctx, ref)
	if err != nil {
		return nil
	}
	cache[ref] = &rec.TaskDefinition
	return &rec.TaskDefinition
}

// WatchServices follows every service of every cluster until ctx ends.
func (s *Service) WatchServices(ctx context.Context) <-chan ServiceChange {
	out := make(chan ServiceChange, 64)
	conv := func(kind ChangeKind, rev int64, value []byte) (ServiceChange, bool) {
		var r serviceRecord
		if json.Unmarshal(value, &r) != nil {
			return ServiceChange{}, false
		}
		return ServiceChange{Kind: kind, Revision: rev, Service: s.serviceOut(&r, true)}, true
	}
	go runFeed(ctx, s, keyServices, out, func(kind ChangeKind, rev int64) ServiceChange {
		return ServiceChange{Kind: kind, Revision: rev}
	}, conv)
	return out
}

// WatchContainerInstances follows every container instance of every
// cluster, and its agent's connection, until ctx ends.
func (s *Service) WatchContainerInstances(ctx context.Context) <-chan InstanceChange {
	out := make(chan InstanceChange, 64)
	// clusterOf maps an instance id to its cluster, for the presence keys
	// (/berth/ecs/agents/<id>) that do not name one.
	clusterOf := map[string]string{}
	// present is each agent's connection as the presence keys' events say
	// (a read right after a watch event may not see it yet), and delivered
	// the connection last delivered, so that a presence key rewritten
	// without a change delivers nothing.
	present, delivered := map[string]bool{}, map[string]bool{}
	out1 := func(kind ChangeKind, rev int64, v *instanceView) (InstanceChange, bool) {
		delivered[v.Rec.ID] = v.Connected
		return InstanceChange{Kind: kind, Revision: rev, Instance: instanceOut(v, []ecsapi.ContainerInstanceField{ecsapi.ContainerInstanceFieldTags})}, true
	}
	conv := func(kind ChangeKind, rev int64, key string, value []byte) (InstanceChange, bool) {
		if id, ok := strings.CutPrefix(key, keyAgents); ok {
			present[id] = kind != ChangeDelete
			cluster := clusterOf[id]
			if cluster == "" {
				return InstanceChange{}, false
			}
			v, err := s.instanceView(ctx, cluster, id)
			if err != nil {
				return InstanceChange{}, false
			}
			v.Connected = present[id]
			if delivered[id] == v.Connected {
				return InstanceChange{}, false
			}
			return out1(ChangeUpsert, rev, v)
		}
		var rec instanceRecord
		if json.Unmarshal(value, &rec) != nil {
			return InstanceChange{}, false
		}
		if kind == ChangeDelete {
			delete(clusterOf, rec.ID)
			delete(present, rec.ID)
			delete(delivered, rec.ID)
			v := &instanceView{Rec: rec}
			return InstanceChange{Kind: kind, Revision: rev, Instance: instanceOut(v, []ecsapi.ContainerInstanceField{ecsapi.ContainerInstanceFieldTags})}, true
		}
		clusterOf[rec.ID] = rec.Cluster
		v, err := s.instanceView(ctx, rec.Cluster, rec.ID)
		if err != nil {
			// Not readable yet (a read may lag the watch) or deleted
			// since (its delete follows): show the record as committed.
			v = &instanceView{Rec: rec}
		}
		v.Rec = rec // the committed state this event carries, not a possibly older read
		if p, ok := present[rec.ID]; ok {
			v.Connected = p
		} else {
			present[rec.ID] = v.Connected
		}
		return out1(kind, rev, v)
	}
	// Listing reads the records alone (instanceView reads each agent's
	// presence); the watch also follows the presence keys.
	go runFeedKeys(ctx, s, "/berth/ecs/", []string{keyInstances}, []string{keyInstances, keyAgents}, out, func(kind ChangeKind, rev int64) InstanceChange {
		return InstanceChange{Kind: kind, Revision: rev}
	}, conv)
	return out
}

// runFeed is runFeedKeys for one prefix whose values are the records.
func runFeed[C any](ctx context.Context, s *Service, prefix string, out chan<- C,
	marker func(ChangeKind, int64) C, conv func(ChangeKind, int64, []byte) (C, bool)) {
	runFeedKeys(ctx, s, prefix, []string{prefix}, []string{prefix}, out, marker, func(kind ChangeKind, rev int64, _ string, value []byte) (C, bool) {
		return conv(kind, rev, value)
	})
}

// runFeedKeys lists the keys under the listed prefixes, then watches
// prefix, passing the keys under one of the watched prefixes to conv, until
// ctx ends; it closes out then.
func runFeedKeys[C any](ctx context.Context, s *Service, prefix string, listed, watched []string, out chan<- C,
	marker func(ChangeKind, int64) C, conv func(ChangeKind, int64, string, []byte) (C, bool)) {
	defer close(out)
	send := func(c C) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}
	want := func(key string) bool {
		for _, w := range watched {
			if strings.HasPrefix(key, w) {
				return true
			}
		}
		return false
	}
	for ctx.Err() == nil {
		rev, ok := listFeed(ctx, s, listed, send, marker, conv)
		if !ok {
			if ctx.Err() != nil {
				return
			}
			sleepCtx(ctx, feedRetry)
			continue
		}
		for wr := range s.st.Watch(ctx, prefix, rev+1) {
			if wr.Err != nil {
				if ctx.Err() == nil {
					s.log.Warn("ecs feed: watch ended; listing again", "prefix", prefix, "err", wr.Err)
				}
				break
			}
			for _, ev := range wr.Events {
				if !want(ev.KV.Key) {
					continue
				}
				kind, value := ChangeUpsert, ev.KV.Value
				if ev.Type == store.EventDelete {
					// conv sees the last value when etcd kept it; a
					// record it cannot read is skipped.
					kind, value = ChangeDelete, nil
					if ev.Prev != nil {
						value = ev.Prev.Value
					}
				}
				if c, ok := conv(kind, ev.KV.ModRevision, ev.KV.Key, value); ok && !send(c) {
					return
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		sleepCtx(ctx, feedRetry)
	}
}

// listFeed sends one listing (ChangeRelist, upserts, ChangeSynced) read at
// one revision, which it returns; ok is false when reading failed or ctx
// ended.
func listFeed[C any](ctx context.Context, s *Service, wanted []string, send func(C) bool,
	marker func(ChangeKind, int64) C, conv func(ChangeKind, int64, string, []byte) (C, bool)) (int64, bool) {
	var rev int64
	var kvs []store.KV
	for _, p := range wanted {
		res, err := s.st.List(ctx, p, store.ListOptions{Revision: rev})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("ecs feed: listing failed", "prefix", p, "err", err)
			}
			return 0, false
		}
		if rev == 0 {
			rev = res.Revision
		}
		kvs = append(kvs, res.KVs...)
	}
	if !send(marker(ChangeRelist, rev)) {
		return 0, false
	}
	for _, kv := range kvs {
		if c, ok := conv(ChangeUpsert, kv.ModRevision, kv.Key, kv.Value); ok && !send(c) {
			return 0, false
		}
	}
	return rev, send(marker(ChangeSynced, rev))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
