package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/sigv4"
	"github.com/berthdev/berth/internal/store"
)

// OpenAssignments streams the tasks assigned to an instance (see
// agentapi.Event) until ctx ends or the stream fails; the channel is closed
// then. While it runs the instance is agentConnected.
func (s *Service) OpenAssignments(ctx context.Context, cred AgentCredential, since int64) (<-chan agentapi.Event, error) {
	kv, err := s.st.Get(ctx, instanceKey(cred.Cluster, cred.InstanceID))
	if errs.Is(err, errs.NotFound) {
		// Purged with its credential; this server had the credential
		// cached. Answer as for an unknown access key.
		s.forgetAgentCredential(cred.AccessKeyID)
		return nil, errs.R(errs.Unauthenticated, sigv4.ReasonUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if err != nil {
		return nil, err
	}
	var inst instanceRecord
	if err := json.Unmarshal(kv.Value, &inst); err != nil || inst.Status == InstanceInactive {
		return nil, errs.R(errs.Forbidden, "agent.deregistered", "This container instance has been deregistered.")
	}
	lease, err := s.st.Grant(ctx, presenceTTL)
	if err != nil {
		return nil, err
	}
	pb, _ := json.Marshal(map[string]any{"since": s.now().UTC()})
	if _, err := s.st.Txn(ctx, nil, store.PutWithLease(keyAgents+cred.InstanceID, pb, lease)); err != nil {
		return nil, err
	}
	out := make(chan agentapi.Event, 16)
	sctx, cancel := context.WithCancel(ctx)
	h := &streamHandle{cancel: cancel}
	s.streams.Store(cred.InstanceID, h)
	go func() {
		defer s.streams.CompareAndDelete(cred.InstanceID, h)
		defer cancel()
		s.streamAssignments(sctx, cred, since, lease, out)
	}()
	return out, nil
}

// streamHandle is an open assignment stream's entry in Service.streams.
type streamHandle struct{ cancel context.CancelFunc }

// closeStream closes the assignment stream this server holds for an
// instance, if any.
func (s *Service) closeStream(instanceID string) {
	if v, ok := s.streams.Load(instanceID); ok {
		v.(*streamHandle).cancel()
	}
}

func (s *Service) streamAssignments(ctx context.Context, cred AgentCredential, since int64, lease store.LeaseID, out chan<- agentapi.Event) {
	defer close(out)
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		s.st.Revoke(rctx, lease)
		cancel()
	}()
	log := s.log.With("instance", cred.InstanceID)
	prefix := keyAssign + cred.InstanceID + "/"
	send := func(ev agentapi.Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	keep := time.NewTicker(presenceTTL / 3)
	defer keep.Stop()
	// The stream alone does not prove the agent lives: a host that
	// vanished leaves this side of the connection open. Its reports do
	// (agents send one at least every AgentHeartbeatInterval).
	started := s.now()
	silence := time.NewTicker(time.Second)
	defer silence.Stop()
	beat := time.NewTicker(agentapi.HeartbeatInterval)
	defer beat.Stop()

	for ctx.Err() == nil {
		rev := since
		if rev <= 0 {
			res, err := s.st.List(ctx, prefix, store.ListOptions{})
			if err != nil {
				log.Warn("assignment sync failed", "err", err)
				return
			}
			ev := agentapi.Event{Type: agentapi.EventSync, Revision: res.Revision, Tasks: []agentapi.Assignment{}}
			for _, kv := range res.KVs {
				a, err := s.assignment(ctx, kv)
				if err != nil {
					log.Warn("assignment unreadable", "key", kv.Key, "err", err)
					continue
				}
				ev.Tasks = append(ev.Tasks, a)
			}
			if !send(ev) {
				return
			}
			rev = res.Revision
		} else if !send(agentapi.Event{Type: agentapi.EventHeartbeat, Revision: rev}) {
			// A resumed stream starts with a heartbeat: the agent learns
			// at once that it is connected (its Ready), with no sync.
			return
		}
		wctx, cancel := context.WithCancel(ctx)
		w := s.st.Watch(wctx, prefix, rev+1)
		compacted := false
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-keep.C:
				if err := s.st.KeepAliveOnce(ctx, lease); err != nil {
					if ctx.Err() == nil { // not just the stream ending
						log.Warn("agent presence lost", "err", err)
					}
					cancel()
					return
				}
			case <-beat.C:
				if !send(agentapi.Event{Type: agentapi.EventHeartbeat, Revision: rev}) {
					break loop
				}
			case <-silence.C:
				last := started
				if v, ok := s.seen.Load(cred.InstanceID); ok && v.(time.Time).After(last) {
					last = v.(time.Time)
				}
				if s.now().Sub(last) > agentapi.AgentSilenceLimit {
					log.Warn("agent silent; closing its assignment stream", "silent_for", s.now().Sub(last).Round(time.Second))
					cancel()
					return
				}
			case wr, ok := <-w:
				if !ok {
					break loop
				}
				if wr.Err != nil {
					if errors.Is(wr.Err, store.ErrCompacted) {
						compacted = true
					} else {
						log.Warn("assignment watch failed", "err", wr.Err)
					}
					break loop
				}
				for _, e := range wr.Events {
					rev = e.KV.ModRevision
					if e.Type != store.EventPut {
						continue // garbage collection of a stopped task
					}
					a, err := s.assignment(ctx, e.KV)
					if err != nil {
						log.Warn("assignment unreadable", "key", e.KV.Key, "err", err)
						continue
					}
					if !send(agentapi.Event{Type: agentapi.EventTask, Revision: rev, Task: &a}) {
						break loop
					}
				}
			}
		}
		cancel()
		if !compacted {
			return
		}
		since = 0 // resynchronise from a full list
	}
}

// taskAtLeast reads the task an assignment entry points to, as of the
// entry's revision or later. The task record and its assignment entry are
// written in one transaction, so the task's ModRevision is at least the
// entry's once the read sees that transaction. A read right after a watch
// event may not yet (reads on the embedded store are serializable and were
// seen to lag the watch: the event of a StopTask came with the task still
// desired RUNNING, and the agent never stopped it); it is retried briefly.
// If the record still lags, the entry's desired status and version are
// laid over it: they are the part the agent acts on.
func (s *Service) taskAtLeast(ctx context.Context, ar assignmentRecord, rev int64) (taskRecord, error) {
	var t taskRecord
	for wait := time.Millisecond; ; wait *= 2 {
		tkv, err := s.st.Get(ctx, taskKey(ar.Cluster, ar.TaskID))
		if errs.Is(err, errs.NotFound) && wait <= 256*time.Millisecond {
			// A serializable read may lag the watch event of the
			// transaction that created the task with its assignment
			// (docs/store.md): not there yet is behind, like an older
			// revision. Still missing after the waits: collected.
			select {
			case <-ctx.Done():
				return t, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if err != nil {
			return t, err
		}
		t = taskRecord{}
		if err := json.Unmarshal(tkv.Value, &t); err != nil {
			return t, err
		}
		if tkv.ModRevision >= rev {
			return t, nil
		}
		if wait > 256*time.Millisecond {
			s.log.Warn("task record behind its assignment; using the assignment's desired status", "task", ar.TaskID, "taskRevision", tkv.ModRevision, "assignmentRevision", rev)
			if ar.Version > t.Version {
				t.Version = ar.Version
				if ar.DesiredStatus == DesiredStopped {
					t.DesiredStatus = DesiredStopped
					t.DrainUntil = nil // the entry is rewritten STOPPED only when no gate holds the task
				}
			}
			return t, nil
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// assignment builds the assignment of an index entry.
func (s *Service) assignment(ctx context.Context, kv store.KV) (agentapi.Assignment, error) {
	var ar assignmentRecord
	if err := json.Unmarshal(kv.Value, &ar); err != nil {
		return agentapi.Assignment{}, err
	}
	t, err := s.taskAtLeast(ctx, ar, kv.ModRevision)
	if err != nil {
		return agentapi.Assignment{}, err
	}
	td, err := s.tdCache.get(ctx, s, t.TaskDefinitionARN)
	if err != nil {
		return agentapi.Assignment{}, fmt.Errorf("task definition %s: %w", t.TaskDefinitionARN, err)
	}
	var auths []agentapi.RegistryCredential
	if s.registryAuth != nil {
		seen := map[string]bool{}
		for _, cd := range td.TaskDefinition.ContainerDefinitions {
			cred, ok, err := s.registryAuth(ctx, deref(cd.Image), t.InstanceID)
			if err != nil {
				return agentapi.Assignment{}, fmt.Errorf("registry credentials for %s: %w", deref(cd.Image), err)
			}
			if ok && !seen[cred.ServerAddress] {
				seen[cred.ServerAddress] = true
				auths = append(auths, cred)
			}
		}
	}
	desired := t.DesiredStatus
	if t.DrainUntil != nil {
		desired = DesiredRunning // held while its targets drain (loadbalancers.go)
	}
	return agentapi.Assignment{
		RegistryAuth: auths,
		TaskArn:      t.ARN, TaskID: t.ID, ClusterArn: t.ClusterARN,
		DesiredStatus: desired, Version: t.Version,
		TaskDefinition: &td.TaskDefinition, Overrides: t.Overrides,
		Group: t.Group, StartedBy: t.StartedBy, Tags: t.Tags,
		CPU: t.CPU, MemoryMiB: t.MemoryMiB, CreatedAt: t.CreatedAt,
		StopCode: t.StopCode, StoppedReason: t.StoppedReason,
		LaunchType: launchTypeFargateOrEmpty(&t), EphemeralStorageGiB: t.EphemeralGiB, StopGraceSeconds: t.StopGraceSeconds,
		ServiceConnect: t.ServiceConnect,
	}, nil
}

// parseTaskARN splits a task ARN into cluster and id.
func (s *Service) parseTaskARN(taskARN string) (cluster, id string, err error) {
	a, err := arn.Parse(taskARN)
	if err != nil || a.Service != "ecs" || a.ResourceType() != "task" {
		return "", "", errs.E(errs.Invalid, "invalid task ARN %q", taskARN)
	}
	cluster, id, ok := strings.Cut(a.ResourceID(), "/")
	if !ok || cluster == "" || id == "" {
		return "", "", errs.E(errs.Invalid, "task ARN %q lacks the cluster", taskARN)
	}
	return cluster, id, nil
}

// assignmentTaskDefs caches the task definitions assignments carry, by
// the task's task definition ARN (family:revision): a revision's content
// never changes and revisions are never reused; only its status does
// (ACTIVE, INACTIVE, DELETE_IN_PROGRESS), which agents do not use, and it
// is not deleted while a task references it. Without it every assignment
// event costs a second store read. Bounded: cleared when full.
type assignmentTaskDefs struct {
	mu sync.Mutex
	m  map[string]*taskDefRecord
}

const maxCachedTaskDefs = 1024

func (c *assignmentTaskDefs) get(ctx context.Context, s *Service, tdARN string) (*taskDefRecord, error) {
	c.mu.Lock()
	rec := c.m[tdARN]
	c.mu.Unlock()
	if rec != nil {
		return rec, nil
	}
	r, _, err := s.findTaskDef(ctx, tdARN)
	if err != nil {
		return nil, err
	}
	if _, rev, perr := s.parseTaskDefRef(tdARN); perr != nil || rev <= 0 {
		return &r, nil // a family without revision: not cacheable
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTaskDefs {
		c.m = map[string]*taskDefRecord{}
	}
	c.m[tdARN] = &r
	c.mu.Unlock()
	return &r, nil
}
