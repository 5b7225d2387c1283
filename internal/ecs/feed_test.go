package ecs

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/store"
)

// next reads one item of a feed or fails after a few seconds.
func next[C any](t *testing.T, ch <-chan C) C {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("feed closed")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no feed item within 5s")
	}
	var zero C
	return zero
}

func TestWatchTasksListsThenFollows(t *testing.T) {
	s, st := newTestService(t)
	ctx := t.Context()
	task := func(id, last string, version int64) taskRecord {
		return taskRecord{ID: id, ARN: s.taskARN("c1", id), Cluster: "c1", ClusterARN: s.clusterARN("c1"),
			DesiredStatus: DesiredRunning, LastStatus: last, Version: version, Group: "service:web"}
	}
	putJSON(t, st, taskKey("c1", "a"), task("a", "RUNNING", 3))
	feed := s.WatchTasks(ctx)
	if c := next(t, feed); c.Kind != ChangeRelist {
		t.Fatalf("first item %v, want relist", c.Kind)
	}
	c := next(t, feed)
	if c.Kind != ChangeUpsert || deref(c.Task.TaskArn) != s.taskARN("c1", "a") || deref(c.Task.LastStatus) != "RUNNING" ||
		deref(c.Task.Group) != "service:web" || c.Revision == 0 {
		t.Fatalf("listed %v %s %s", c.Kind, deref(c.Task.TaskArn), deref(c.Task.LastStatus))
	}
	if c := next(t, feed); c.Kind != ChangeSynced {
		t.Fatalf("after the listing %v, want synced", c.Kind)
	}
	// Live changes, in commit order.
	putJSON(t, st, taskKey("c1", "b"), task("b", "PENDING", 1))
	putJSON(t, st, taskKey("c1", "b"), task("b", "RUNNING", 2))
	if _, err := st.Txn(ctx, nil, store.Delete(taskKey("c1", "a"))); err != nil {
		t.Fatal(err)
	}
	var prev int64
	for _, want := range []struct {
		kind ChangeKind
		id   string
		last string
	}{{ChangeUpsert, "b", "PENDING"}, {ChangeUpsert, "b", "RUNNING"}, {ChangeDelete, "a", "RUNNING"}} {
		c := next(t, feed)
		if c.Kind != want.kind || deref(c.Task.TaskArn) != s.taskARN("c1", want.id) || deref(c.Task.LastStatus) != want.last {
			t.Fatalf("got %v %s %s, want %v %s %s", c.Kind, deref(c.Task.TaskArn), deref(c.Task.LastStatus), want.kind, want.id, want.last)
		}
		if c.Revision <= prev {
			t.Fatalf("revision %d after %d", c.Revision, prev)
		}
		prev = c.Revision
	}
}

func TestWatchServicesAndInstances(t *testing.T) {
	s, st := newTestService(t)
	ctx := t.Context()
	services := s.WatchServices(ctx)
	instances := s.WatchContainerInstances(ctx)
	for _, ch := range []ChangeKind{ChangeRelist, ChangeSynced} {
		if c := next(t, services); c.Kind != ch {
			t.Fatalf("services: %v, want %v", c.Kind, ch)
		}
		if c := next(t, instances); c.Kind != ch {
			t.Fatalf("instances: %v, want %v", c.Kind, ch)
		}
	}
	if _, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("web"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("a"), Image: ptr("busybox"), Memory: ptr(int32(32))}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateService(ctx, &ecsapi.CreateServiceRequest{Cluster: ptr("c1"), ServiceName: ptr("web"),
		TaskDefinition: ptr("web"), DesiredCount: ptr(int32(0))}); err != nil {
		t.Fatal(err)
	}
	c := next(t, services)
	if c.Kind != ChangeUpsert || deref(c.Service.ServiceName) != "web" || deref(c.Service.Status) != "ACTIVE" {
		t.Fatalf("service change %v %s %s", c.Kind, deref(c.Service.ServiceName), deref(c.Service.Status))
	}

	rec := instanceRecord{ID: "i1", ARN: s.instanceARN("c1", "i1"), Cluster: "c1", Status: InstanceActive,
		Registered: agentapiResources(1024, 1024, nil, nil), Version: 1}
	putJSON(t, st, instanceKey("c1", "i1"), rec)
	if c := next(t, instances); c.Kind != ChangeUpsert || deref(c.Instance.ContainerInstanceArn) != rec.ARN || deref(c.Instance.AgentConnected) {
		t.Fatalf("instance registered: %v %s connected %v", c.Kind, deref(c.Instance.ContainerInstanceArn), deref(c.Instance.AgentConnected))
	}
	putJSON(t, st, keyAgents+"i1", map[string]any{})
	if c := next(t, instances); !deref(c.Instance.AgentConnected) {
		t.Fatal("agent connected: not shown")
	}
	putJSON(t, st, keyAgents+"i1", map[string]any{"again": true}) // no change of connection: nothing
	if _, err := st.Txn(ctx, nil, store.Delete(keyAgents+"i1")); err != nil {
		t.Fatal(err)
	}
	if c := next(t, instances); c.Kind != ChangeUpsert || deref(c.Instance.AgentConnected) {
		t.Fatalf("agent gone: %v connected %v", c.Kind, deref(c.Instance.AgentConnected))
	}
	if _, err := st.Txn(ctx, nil, store.Delete(instanceKey("c1", "i1"))); err != nil {
		t.Fatal(err)
	}
	if c := next(t, instances); c.Kind != ChangeDelete || deref(c.Instance.ContainerInstanceArn) != rec.ARN {
		t.Fatalf("instance deleted: %v %s", c.Kind, deref(c.Instance.ContainerInstanceArn))
	}
}
