package servicectl

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/store"
)

func TestCoalesceWait(t *testing.T) {
	for _, tc := range []struct {
		name     string
		placed   bool
		lastPass time.Duration
		want     time.Duration
	}{
		{"after placing, 20ms whatever the last pass took", true, 3 * time.Second, 20 * time.Millisecond},
		{"a quick pass waits the floor", false, 10 * time.Millisecond, 20 * time.Millisecond},
		{"a slow pass waits half its time", false, 300 * time.Millisecond, 150 * time.Millisecond},
		{"at most 500ms", false, 5 * time.Second, 500 * time.Millisecond},
	} {
		if got := coalesceWait(tc.placed, tc.lastPass); got != tc.want {
			t.Errorf("%s: coalesceWait(%v, %v) = %v, want %v", tc.name, tc.placed, tc.lastPass, got, tc.want)
		}
	}
}

func TestSoonest(t *testing.T) {
	for _, tc := range []struct{ a, b, want time.Duration }{
		{0, 0, 0}, {0, time.Second, time.Second}, {time.Second, 0, time.Second},
		{time.Second, 2 * time.Second, time.Second}, {2 * time.Second, time.Second, time.Second},
	} {
		if got := soonest(tc.a, tc.b); got != tc.want {
			t.Errorf("soonest(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestGroupServicesSkipsInactiveAndGroupsByCluster(t *testing.T) {
	kv := func(cluster, name, status string, rev int64) store.KV {
		b, _ := json.Marshal(ecsstate.ServiceRecord{Name: name, Status: status})
		return store.KV{Key: ecsstate.ServiceKey(cluster, name), Value: b, ModRevision: rev}
	}
	order, by := groupServices([]store.KV{
		kv("b", "web", deploy.ServiceActive, 5),
		kv("a", "api", deploy.ServiceActive, 6),
		kv("b", "old", deploy.ServiceInactive, 7),
		kv("b", "drain", deploy.ServiceDraining, 8),
		{Key: ecsstate.KeyServices + "bad", Value: []byte("{}")},
	})
	if len(order) != 2 || order[0] != "b" || order[1] != "a" {
		t.Fatalf("order = %v, want [b a]", order)
	}
	if got := by["b"]; len(got) != 2 || got[0].name != "web" || got[0].rev != 5 || got[1].name != "drain" {
		t.Fatalf("cluster b = %+v", got)
	}
	if got := by["a"]; len(got) != 1 || got[0].name != "api" {
		t.Fatalf("cluster a = %+v", got)
	}
}

func TestApplyDecision(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	decided := ecsstate.ServiceRecord{Name: "web", Status: deploy.ServiceActive, DesiredCount: 2, SchedulingStrategy: deploy.Replica,
		Deployments: []deploy.Deployment{{ID: "ecs-svc/1", DesiredCount: 2}}}
	dec := func() deploy.Decision {
		return deploy.Decision{ServiceStatus: deploy.ServiceActive, RunningCount: 2, PendingCount: 1, Steady: true,
			Deployments: []deploy.Deployment{{ID: "ecs-svc/1", DesiredCount: 2, RunningCount: 2}}}
	}
	copyOf := func(r ecsstate.ServiceRecord) ecsstate.ServiceRecord {
		b, _ := json.Marshal(r)
		var c ecsstate.ServiceRecord
		_ = json.Unmarshal(b, &c)
		return c
	}

	t.Run("the decision is written", func(t *testing.T) {
		cur := copyOf(decided)
		if !applyDecision(&cur, &decided, dec(), []string{"(service web) has reached a steady state."}, now) {
			t.Fatal("changed = false")
		}
		if !cur.Steady || cur.RunningCount != 2 || cur.PendingCount != 1 || cur.Deployments[0].RunningCount != 2 || len(cur.Events) != 1 {
			t.Fatalf("record = %+v", cur)
		}
	})
	t.Run("a concurrent UpdateService's desired count wins", func(t *testing.T) {
		cur := copyOf(decided)
		cur.DesiredCount = 5
		applyDecision(&cur, &decided, dec(), nil, now)
		if cur.Deployments[0].DesiredCount != 5 {
			t.Fatalf("primary desired = %d, want 5", cur.Deployments[0].DesiredCount)
		}
	})
	t.Run("a record that moved keeps its deployments; counts are written", func(t *testing.T) {
		cur := copyOf(decided)
		cur.Deployments = append([]deploy.Deployment{{ID: "ecs-svc/2", DesiredCount: 2}}, cur.Deployments...)
		applyDecision(&cur, &decided, dec(), nil, now)
		if len(cur.Deployments) != 2 || cur.Deployments[0].ID != "ecs-svc/2" || cur.Steady {
			t.Fatalf("deployments = %+v, steady %v", cur.Deployments, cur.Steady)
		}
		if cur.RunningCount != 2 {
			t.Fatalf("running = %d, want 2", cur.RunningCount)
		}
	})
	t.Run("nothing new changes nothing", func(t *testing.T) {
		cur := copyOf(decided)
		applyDecision(&cur, &decided, dec(), nil, now)
		again := copyOf(cur)
		if applyDecision(&again, &cur, dec(), nil, now) {
			t.Fatal("changed = true for the same decision again")
		}
	})
	t.Run("INACTIVE is stamped once", func(t *testing.T) {
		cur := copyOf(decided)
		d := dec()
		d.ServiceStatus = deploy.ServiceInactive
		applyDecision(&cur, &decided, d, nil, now)
		if cur.Status != deploy.ServiceInactive || cur.InactiveAt == nil || !cur.InactiveAt.Equal(now) {
			t.Fatalf("status %s inactiveAt %v", cur.Status, cur.InactiveAt)
		}
	})
}

func TestServiceTaskInput(t *testing.T) {
	r := ecsstate.ServiceRecord{Name: "web", EnableECSManagedTags: true, Tags: []ecsapi.Tag{{Key: ptr("k"), Value: ptr("v")}},
		PropagateTags: string(ecsapi.PropagateTagsService)}
	in := serviceTaskInput(&r, deploy.Start{TaskDefinition: "arn:td:1", DeploymentID: "ecs-svc/1", Count: 3})
	if in.TaskDefinition != "arn:td:1" || in.Group != "service:web" || in.StartedBy != "ecs-svc/1" || !in.ManagedTags || len(in.Tags) != 1 {
		t.Fatalf("input = %+v", in)
	}
	r.PropagateTags = string(ecsapi.PropagateTagsTaskDefinition)
	in = serviceTaskInput(&r, deploy.Start{TaskDefinition: "arn:td:1", DeploymentID: "ecs-svc/1"})
	if in.Tags != nil || in.PropagateTags == nil || *in.PropagateTags != ecsapi.PropagateTagsTaskDefinition {
		t.Fatalf("input = %+v", in)
	}
}
