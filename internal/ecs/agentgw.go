package ecs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/sigv4"
	"github.com/berthdev/berth/internal/store"
)

// The agent-facing side of ECS: joining, the assignment stream, and
// observed-state reports (docs/agent.md). The HTTP shell is
// internal/agentgw.

// presenceTTL is how long an instance stays agentConnected after its
// assignment stream stops being kept alive.
const presenceTTL = 10 * time.Second

func newID() string { return hex.EncodeToString(randomBytes(16)) }

func (s *Service) instanceARN(cluster, id string) string {
	return s.arns.ECS("container-instance/" + cluster + "/" + id)
}

func (s *Service) taskARN(cluster, id string) string {
	return s.arns.ECS("task/" + cluster + "/" + id)
}

// builtinAttributes are the attributes ECS gives every instance.
func (s *Service) builtinAttributes(req agentapi.JoinRequest) map[string]string {
	attrs := map[string]string{
		"ecs.os-type":           orDefault(req.Resources.OSType, "linux"),
		"ecs.os-family":         "LINUX",
		"ecs.cpu-architecture":  orDefault(req.Resources.CPUArch, "x86_64"),
		"ecs.instance-type":     orDefault(req.InstanceType, "berth.host"),
		"ecs.availability-zone": orDefault(req.AvailabilityZone, s.arns.Region+"a"),
	}
	for _, c := range req.Resources.Capabilities {
		attrs[c] = ""
	}
	return attrs
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// JoinInstance registers a container instance for an agent holding a
// valid join token, and makes the agent's credential. The cluster
// "default" is created if missing, as ECS does on first registration.
func (s *Service) JoinInstance(ctx context.Context, req agentapi.JoinRequest) (agentapi.JoinResponse, error) {
	tok, err := s.checkJoinToken(ctx, req.Token)
	if err != nil {
		return agentapi.JoinResponse{}, err
	}
	if c := tok.rec.Cluster; c != "" {
		if req.Cluster != "" && req.Cluster != c {
			return agentapi.JoinResponse{}, errs.R(errs.Forbidden, "agent.wrong_cluster",
				"This join token is for cluster %s; it cannot register an instance in cluster %s.", c, req.Cluster)
		}
		req.Cluster = c
	}
	var guard *joinToken
	if tok.rec.SingleUse {
		guard = &tok
	}
	rec, secret, err := s.createInstance(ctx, req, true, guard)
	if err != nil {
		return agentapi.JoinResponse{}, err
	}
	return agentapi.JoinResponse{
		ContainerInstanceArn: rec.ARN, InstanceID: rec.ID, Cluster: rec.Cluster,
		AccessKeyID: rec.AccessKeyID, SecretAccessKey: secret, Region: s.arns.Region,
	}, nil
}

// createInstance writes a new container instance record, with an agent
// credential when withCredential (the secret is returned). A single-use
// join token (singleUse) is deleted in the same transaction, which
// compares on it: of two joins racing with it, one registers.
func (s *Service) createInstance(ctx context.Context, req agentapi.JoinRequest, withCredential bool, singleUse *joinToken) (instanceRecord, string, error) {
	if req.Resources.CPU <= 0 || req.Resources.MemoryMiB <= 0 {
		return instanceRecord{}, "", errs.R(errs.Invalid, reasonInvalidParameter, "A container instance must register CPU and MEMORY resources.")
	}
	for k := range req.Attributes {
		if strings.HasPrefix(k, "ecs.") {
			return instanceRecord{}, "", errs.R(errs.Invalid, reasonInvalidParameter, "Custom attribute %q may not use the reserved prefix ecs.", k)
		}
	}
	cluster := orDefault(req.Cluster, DefaultCluster)
	if _, _, err := s.getCluster(ctx, cluster, false); errs.Is(err, errs.NotFound) && cluster == DefaultCluster {
		if _, err := s.CreateCluster(ctx, &ecsapi.CreateClusterRequest{}); err != nil {
			return instanceRecord{}, "", err
		}
	}
	for {
		clusterCmp := store.Absent(keyClusters + cluster) // the hidden Fargate pool has no cluster record
		if cluster != FargatePool {
			_, clusterRev, err := s.getCluster(ctx, cluster, false)
			if err != nil {
				return instanceRecord{}, "", err
			}
			clusterCmp = store.ModRevisionIs(keyClusters+cluster, clusterRev)
		}
		id := newID()
		rec := instanceRecord{
			ID:            id,
			ARN:           s.instanceARN(cluster, id),
			Cluster:       cluster,
			Ec2InstanceID: "i-" + newID()[:17],
			Hostname:      req.Hostname,
			Status:        InstanceActive,
			Registered:    req.Resources,
			Attributes:    s.builtinAttributes(req),
			VersionInfo:   req.VersionInfo,
			RegisteredAt:  s.now().UTC(),
			Version:       1,
		}
		for k, v := range req.Attributes {
			rec.Attributes[k] = v
		}
		ops := []store.Op{}
		secret := ""
		if withCredential {
			rec.AccessKeyID = "ABIA" + strings.ToUpper(hex.EncodeToString(randomBytes(8)))
			secret = hex.EncodeToString(randomBytes(20))
			cb, _ := json.Marshal(s.newAgentCredRecord(rec.AccessKeyID, secret, id, cluster))
			ops = append(ops, store.Put(keyAgentCreds+rec.AccessKeyID, cb))
		}
		ib, _ := json.Marshal(rec)
		ops = append(ops, store.Put(instanceKey(cluster, id), ib))
		cmps := []store.Cmp{clusterCmp}
		if singleUse != nil {
			cmps = append(cmps, store.ModRevisionIs(singleUse.key, singleUse.rev))
			ops = append(ops, store.Delete(singleUse.key))
		}
		res, err := s.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return instanceRecord{}, "", err
		}
		if !res.Succeeded && singleUse != nil {
			if _, err := s.st.Get(ctx, singleUse.key); errs.Is(err, errs.NotFound) {
				return instanceRecord{}, "", errBadJoinToken()
			}
		}
		if res.Succeeded {
			s.log.Info("container instance registered", "cluster", cluster, "instance", id, "hostname", req.Hostname)
			return rec, secret, nil
		}
	}
}

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
