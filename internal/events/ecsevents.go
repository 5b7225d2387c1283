package events

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/store"
)

// ECS's events: the controller follows ECS's committed state (the ecs
// feed, adapted by the daemon to ECSFeed) and puts on the default bus
// "ECS Task State Change", "ECS Container Instance State Change", "ECS
// Service Action" and "ECS Deployment State Change" events shaped as ECS
// sends them.
//
// Per resource, a cursor in the store (/berth/events/ecs/<kind>/<id>)
// holds the last emitted revision, version counter and state signature;
// the event and the new cursor are one transaction, so every state change
// is emitted at least once across restarts (the feed lists again after a
// restart, and what is newer than the cursor is emitted), in commit order
// per resource, and the detail's version counts the resource's changes.

// FeedKind tells what a feed item is (mirrors ecs.ChangeKind).
type FeedKind int

const (
	FeedUpsert FeedKind = iota
	FeedDelete
	FeedRelist
	FeedSynced
)

// TaskItem is one committed state of a task, as DescribeTasks shows it.
type TaskItem struct {
	Kind     FeedKind
	Revision int64
	Task     ecsapi.Task
}

// ServiceItem is one committed state of a service.
type ServiceItem struct {
	Kind     FeedKind
	Revision int64
	Service  ecsapi.Service
}

// InstanceItem is one committed state of a container instance.
type InstanceItem struct {
	Kind     FeedKind
	Revision int64
	Instance ecsapi.ContainerInstance
}

// ECSFeed is ECS's committed state as channels (ecs.WatchTasks and
// friends); each lists then follows until ctx ends.
type ECSFeed interface {
	Tasks(ctx context.Context) <-chan TaskItem
	Services(ctx context.Context) <-chan ServiceItem
	Instances(ctx context.Context) <-chan InstanceItem
}

// ecsCursor is what was last emitted for one resource.
type ecsCursor struct {
	Rev         int64             `json:"rev"`
	Version     int64             `json:"version"`
	Sig         string            `json:"sig,omitempty"`
	LastEvent   string            `json:"lastEvent,omitempty"`   // services: newest service event id emitted
	LastEventAt time.Time         `json:"lastEventAt,omitzero"`  // and its time
	Deployments map[string]string `json:"deployments,omitempty"` // services: rollout state per deployment id
}

// RunECSEvents emits ECS's events from feed until ctx ends.
func (s *Service) RunECSEvents(ctx context.Context, feed ECSFeed) {
	done := make(chan struct{}, 3)
	go func() { s.followTasks(ctx, feed.Tasks(ctx)); done <- struct{}{} }()
	go func() { s.followServices(ctx, feed.Services(ctx)); done <- struct{}{} }()
	go func() { s.followInstances(ctx, feed.Instances(ctx)); done <- struct{}{} }()
	for range 3 {
		<-done
	}
}

// cursors is one feed's cursors, loaded from the store at start.
type cursors struct {
	s      *Service
	prefix string
	m      map[string]ecsCursor
	seen   map[string]bool // during a relist
}

func (s *Service) loadCursors(ctx context.Context, kind string) *cursors {
	c := &cursors{s: s, prefix: keyECS + kind + "/", m: map[string]ecsCursor{}}
	for ctx.Err() == nil {
		res, err := s.st.List(ctx, c.prefix, store.ListOptions{})
		if err == nil {
			for _, kv := range res.KVs {
				var cur ecsCursor
				if json.Unmarshal(kv.Value, &cur) == nil {
					c.m[strings.TrimPrefix(kv.Key, c.prefix)] = cur
				}
			}
			return c
		}
		s.log.Warn("events: reading ECS event cursors failed", "err", err)
		sleepCtx(ctx, time.Second)
	}
	return c
}

// marker handles relist and synced items: cursors of resources that were
// not listed are gone (purged while nobody watched) and are dropped.
func (c *cursors) marker(ctx context.Context, k FeedKind) {
	switch k {
	case FeedRelist:
		c.seen = map[string]bool{}
	case FeedSynced:
		var ops []store.Op
		for id := range c.m {
			if !c.seen[id] {
				delete(c.m, id)
				ops = append(ops, store.Delete(c.prefix+id))
			}
		}
		c.seen = nil
		for len(ops) > 0 {
			n := min(len(ops), 100)
			if _, err := c.s.st.Txn(ctx, nil, ops[:n]...); err != nil {
				return // dropped again at the next relist
			}
			ops = ops[n:]
		}
	}
}

func (c *cursors) forget(ctx context.Context, id string) {
	delete(c.m, id)
	_, _ = c.s.st.Txn(ctx, nil, store.Delete(c.prefix+id))
}

// emit commits evs with the resource's new cursor, retrying until it is
// durable or ctx ends.
func (c *cursors) emit(ctx context.Context, id string, cur ecsCursor, evs []Event) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := c.s.emitIfRules(ctx, evs, store.Put(c.prefix+id, mustJSON(cur)))
		if err == nil {
			c.m[id] = cur
			return
		}
		if attempt%10 == 0 && ctx.Err() == nil {
			c.s.log.Warn("events: emitting ECS events failed; trying again", "resource", id, "err", err)
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

// resourceID is the part after the last "/" of an ARN (task and instance
// ids are unique in an account); services use cluster/name.
func resourceID(a string) string {
	if i := strings.Index(a, ":"); i >= 0 {
		if j := strings.LastIndex(a, ":"); j >= 0 {
			a = a[j+1:]
		}
	}
	if i := strings.IndexByte(a, '/'); i >= 0 {
		return strings.ReplaceAll(a[i+1:], "/", "~")
	}
	return a
}

func (s *Service) followTasks(ctx context.Context, ch <-chan TaskItem) {
	c := s.loadCursors(ctx, "tasks")
	for it := range ch {
		if it.Kind == FeedRelist || it.Kind == FeedSynced {
			c.marker(ctx, it.Kind)
			continue
		}
		t := it.Task
		id := resourceID(deref(t.TaskArn))
		if it.Kind == FeedDelete {
			c.forget(ctx, id)
			continue
		}
		if c.seen != nil {
			c.seen[id] = true
		}
		cur, known := c.m[id]
		if known && it.Revision <= cur.Rev {
			continue
		}
		sig := taskSig(&t)
		if known && sig == cur.Sig {
			cur.Rev = it.Revision
			c.m[id] = cur
			continue
		}
		version := max(cur.Version+1, deref(t.Version))
		now := s.now().UTC()
		ev := s.newEvent("aws.ecs", "ECS Task State Change", now, []string{deref(t.TaskArn)}, taskDetail(&t, version, now))
		c.emit(ctx, id, ecsCursor{Rev: it.Revision, Version: version, Sig: sig}, []Event{ev})
	}
}

// taskSig is what an ECS Task State Change reports a change of: the
// task's and its containers' statuses.
func taskSig(t *ecsapi.Task) string {
	type ctr struct {
		Name, Status, Health string
		Exit                 *int32
		Bindings             int
	}
	sig := struct {
		Last, Desired, Health, StopCode, Connectivity string
		Containers                                    []ctr
	}{deref(t.LastStatus), deref(t.DesiredStatus), string(deref(t.HealthStatus)), string(deref(t.StopCode)), string(deref(t.Connectivity)), nil}
	for _, x := range t.Containers {
		sig.Containers = append(sig.Containers, ctr{deref(x.Name), deref(x.LastStatus), string(deref(x.HealthStatus)), x.ExitCode, len(x.NetworkBindings)})
	}
	return string(mustJSON(sig))
}

// taskDetail is the task as DescribeTasks shows it, timestamps as ECS's
// events write them (ISO 8601), tags left out, with the version counter
// and updatedAt.
func taskDetail(t *ecsapi.Task, version int64, now time.Time) json.RawMessage {
	m := isoTimes(mustJSON(t)).(map[string]any)
	delete(m, "tags")
	m["version"] = version
	m["updatedAt"] = isoTime(now)
	return mustJSON(m)
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// isoTimes decodes JSON and turns every number under a key ending in "At"
// (createdAt, startedAt, pullStoppedAt, registeredAt ...) into an ISO 8601
// string, recursively.
func isoTimes(b []byte) any {
	var v any
	_ = json.Unmarshal(b, &v)
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if f, ok := e.(float64); ok && strings.HasSuffix(k, "At") {
					sec, frac := math.Modf(f)
					x[k] = isoTime(time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6))
					continue
				}
				x[k] = walk(e)
			}
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		}
		return v
	}
	return walk(v)
}

func (s *Service) followInstances(ctx context.Context, ch <-chan InstanceItem) {
	c := s.loadCursors(ctx, "instances")
	for it := range ch {
		if it.Kind == FeedRelist || it.Kind == FeedSynced {
			c.marker(ctx, it.Kind)
			continue
		}
		in := it.Instance
		id := resourceID(deref(in.ContainerInstanceArn))
		if c.seen != nil {
			c.seen[id] = true
		}
		cur, known := c.m[id]
		if known && it.Revision < cur.Rev {
			continue
		}
		sig := instanceSig(&in)
		if it.Kind == FeedDelete {
			// Deregistered: the record is gone; its last state says
			// INACTIVE when ECS deregistered it.
			if known && sig != cur.Sig {
				c.emitInstance(ctx, id, cur, &in, it.Revision, sig)
			}
			c.forget(ctx, id)
			continue
		}
		if known && sig == cur.Sig {
			continue
		}
		c.emitInstance(ctx, id, cur, &in, it.Revision, sig)
	}
}

func (c *cursors) emitInstance(ctx context.Context, id string, cur ecsCursor, in *ecsapi.ContainerInstance, rev int64, sig string) {
	version := max(cur.Version+1, deref(in.Version))
	now := c.s.now().UTC()
	m := isoTimes(mustJSON(in)).(map[string]any)
	delete(m, "tags")
	m["version"] = version
	m["updatedAt"] = isoTime(now)
	arnStr := deref(in.ContainerInstanceArn)
	ev := c.s.newEvent("aws.ecs", "ECS Container Instance State Change", now, []string{arnStr}, mustJSON(m))
	c.emit(ctx, id, ecsCursor{Rev: rev, Version: version, Sig: sig}, []Event{ev})
}

// instanceSig: status, agent connection, task counts and remaining
// resources (ECS emits when a task start changes what is available).
func instanceSig(in *ecsapi.ContainerInstance) string {
	type res struct {
		Name string
		Int  int32
		Set  int
	}
	sig := struct {
		Status, Update string
		Connected      bool
		Running        int32
		Pending        int32
		Remaining      []res
	}{deref(in.Status), string(deref(in.AgentUpdateStatus)), deref(in.AgentConnected), deref(in.RunningTasksCount), deref(in.PendingTasksCount), nil}
	for _, r := range in.RemainingResources {
		sig.Remaining = append(sig.Remaining, res{deref(r.Name), deref(r.IntegerValue), len(r.StringSetValue)})
	}
	return string(mustJSON(sig))
}

func (s *Service) followServices(ctx context.Context, ch <-chan ServiceItem) {
	c := s.loadCursors(ctx, "services")
	for it := range ch {
		if it.Kind == FeedRelist || it.Kind == FeedSynced {
			c.marker(ctx, it.Kind)
			continue
		}
		sv := it.Service
		id := resourceID(deref(sv.ServiceArn))
		if it.Kind == FeedDelete {
			c.forget(ctx, id)
			continue
		}
		if c.seen != nil {
			c.seen[id] = true
		}
		cur := c.m[id]
		if it.Revision <= cur.Rev {
			continue
		}
		evs, next := s.serviceEvents(&sv, cur, s.now().UTC())
		next.Rev = it.Revision
		if len(evs) == 0 {
			c.m[id] = next
			continue
		}
		c.emit(ctx, id, next, evs)
	}
}

// serviceEvents decides the Service Action and Deployment State Change
// events a service's new state brings, and the cursor after them. Pure.
func (s *Service) serviceEvents(sv *ecsapi.Service, cur ecsCursor, now time.Time) ([]Event, ecsCursor) {
	next := cur
	next.Deployments = map[string]string{}
	svcARN := deref(sv.ServiceArn)
	var evs []Event
	// Deployments first: a deployment's start precedes the service events
	// it causes.
	for i := len(sv.Deployments) - 1; i >= 0; i-- {
		d := sv.Deployments[i]
		id, state := deref(d.Id), string(deref(d.RolloutState))
		if id == "" || state == "" {
			continue
		}
		next.Deployments[id] = state
		if cur.Deployments[id] == state {
			continue
		}
		name, typ, reason := "", "INFO", ""
		switch state {
		case "IN_PROGRESS":
			name, reason = "SERVICE_DEPLOYMENT_IN_PROGRESS", "ECS deployment "+id+" in progress."
		case "COMPLETED":
			name, reason = "SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment "+id+" completed."
		case "FAILED":
			name, typ, reason = "SERVICE_DEPLOYMENT_FAILED", "ERROR", "ECS deployment circuit breaker: tasks failed to start."
			if r := deref(d.RolloutStateReason); r != "" {
				reason = r
			}
		default:
			continue
		}
		updated := now
		if d.UpdatedAt != nil {
			updated = d.UpdatedAt.Time
		}
		detail := map[string]any{"eventType": typ, "eventName": name, "deploymentId": id,
			"updatedAt": isoTime(updated), "reason": reason}
		evs = append(evs, s.newEvent("aws.ecs", "ECS Deployment State Change", now, []string{svcARN}, mustJSON(detail)))
	}
	// Service events newer than the last one emitted, oldest first.
	var fresh []ecsapi.ServiceEvent
	for _, e := range sv.Events {
		if cur.LastEvent != "" && deref(e.Id) == cur.LastEvent {
			break
		}
		if e.CreatedAt != nil && !cur.LastEventAt.IsZero() && !e.CreatedAt.Time.After(cur.LastEventAt) {
			break
		}
		fresh = append(fresh, e)
	}
	for i := len(fresh) - 1; i >= 0; i-- {
		e := fresh[i]
		next.LastEvent = deref(e.Id)
		if e.CreatedAt != nil {
			next.LastEventAt = e.CreatedAt.Time
		}
		name, typ, reason := serviceAction(deref(e.Message))
		if name == "" {
			continue
		}
		created := now
		if e.CreatedAt != nil {
			created = e.CreatedAt.Time
		}
		detail := map[string]any{"eventType": typ, "eventName": name, "clusterArn": deref(sv.ClusterArn), "createdAt": isoTime(created)}
		if reason != "" {
			detail["reason"] = reason
		}
		evs = append(evs, s.newEvent("aws.ecs", "ECS Service Action", now, []string{svcARN}, mustJSON(detail)))
	}
	return evs, next
}

// serviceAction maps a service event's message (ECS's wording, as Berth's
// service controller writes it) to the ECS Service Action it announces.
func serviceAction(msg string) (name, typ, reason string) {
	switch {
	case strings.Contains(msg, "has reached a steady state"):
		return "SERVICE_STEADY_STATE", "INFO", ""
	case strings.Contains(msg, "was unable to place a task"):
		switch {
		case strings.Contains(msg, "memory"):
			reason = "RESOURCE:MEMORY"
		case strings.Contains(msg, "CPU"):
			reason = "RESOURCE:CPU"
		case strings.Contains(msg, "port"):
			reason = "RESOURCE:PORTS"
		case strings.Contains(msg, "no container instance"):
			reason = "RESOURCE:NO_CONTAINER_INSTANCES"
		}
		return "SERVICE_TASK_PLACEMENT_FAILURE", "WARN", reason
	case strings.Contains(msg, "is unable to consistently start tasks successfully"):
		return "SERVICE_TASK_START_IMPAIRED", "WARN", ""
	case strings.Contains(msg, "deployment failed"):
		return "SERVICE_DEPLOYMENT_FAILED", "ERROR", ""
	}
	return "", "", ""
}

// emitIfRules commits evs to the default bus's outbox with cursor, but
// only the cursor when the bus has no rule: nothing could match, and ECS's
// state changes would otherwise cost every cluster two more writes each
// (the event and its removal). The commit is conditioned on no rule having
// been created since the bus was seen empty, so an event is never skipped
// that a new rule should have seen.
func (s *Service) emitIfRules(ctx context.Context, evs []Event, cursor store.Op) error {
	res, err := s.st.List(ctx, rulesPrefix(DefaultBus), store.ListOptions{KeysOnly: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(res.KVs) == 0 {
		tr, err := s.st.Txn(ctx, []store.Cmp{store.PrefixUnchangedSince(rulesPrefix(DefaultBus), res.Revision)}, cursor)
		if err != nil || tr.Succeeded {
			return err
		}
	}
	return s.Emit(ctx, DefaultBus, evs, cursor)
}
