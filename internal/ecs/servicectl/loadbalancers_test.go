package servicectl

import (
	"testing"
	"time"

	"github.com/berthdev/berth/internal/deploy"
	"github.com/berthdev/berth/internal/ecs/ecsstate"
	"github.com/berthdev/berth/internal/ecs/tasklife"
)

const testTG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"

func TestLBTaskHealth(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	started := now.Add(-30 * time.Second)
	recent := now.Add(-2 * time.Second)
	task := func(id string, at *time.Time) deploy.Task {
		return deploy.Task{ID: id, DeploymentID: "d1", LastStatus: "RUNNING", DesiredStatus: "RUNNING", StartedAt: at}
	}
	in := deploy.Input{
		Service:     deploy.Service{Name: "web", HealthCheckGrace: 10 * time.Second},
		Deployments: []deploy.Deployment{{ID: "d1"}},
		Tasks:       []deploy.Task{task("ok", &started), task("init", &started), task("bad", &started), task("young", &recent), task("nohc", &started)},
		Now:         now,
	}
	tt := func(port int32) []tasklife.TaskTarget {
		return []tasklife.TaskTarget{{TargetGroupARN: testTG, ID: "i-1", Port: port}}
	}
	targets := map[string][]tasklife.TaskTarget{"ok": tt(1), "init": tt(2), "bad": tt(3), "young": tt(4), "nohc": tt(5)}
	states := map[string]map[string]tasklife.TargetState{testTG: {
		"i-1:1": {State: "healthy"}, "i-1:2": {State: "initial"}, "i-1:3": {State: "unhealthy", Reason: "Target.Timeout"},
		"i-1:4": {State: "unhealthy"}, "i-1:5": {State: "unavailable"},
	}}
	stops, events := lbTaskHealth(&in, nil, targets, states)
	want := map[string]string{"ok": "HEALTHY", "init": "UNKNOWN", "bad": "UNHEALTHY", "young": "UNKNOWN", "nohc": "HEALTHY"}
	for _, tk := range in.Tasks {
		if tk.Health != want[tk.ID] {
			t.Errorf("task %s: health %q, want %q", tk.ID, tk.Health, want[tk.ID])
		}
	}
	if len(stops) != 1 || stops[0].TaskID != "bad" || stops[0].Reason != "Task failed ELB health checks in (target-group "+testTG+")" ||
		stops[0].StopCode != deploy.StopCodeScheduler {
		t.Fatalf("stops: %+v", stops)
	}
	if len(events) != 1 || events[0] != "(service web) (task bad) is unhealthy in (target-group "+testTG+") due to (reason Health checks failed)." {
		t.Fatalf("events: %q", events)
	}
	if !in.Deployments[0].HealthChecked {
		t.Fatal("the deployment must count health for Decide")
	}

	// With a container health check, both must pass.
	in2 := deploy.Input{Service: deploy.Service{Name: "web"}, Deployments: []deploy.Deployment{{ID: "d1", HealthChecked: true}},
		Tasks: []deploy.Task{task("ok", &started)}, Now: now}
	in2.Tasks[0].Health = "UNKNOWN"
	lbTaskHealth(&in2, nil, targets, states)
	if in2.Tasks[0].Health != "UNKNOWN" {
		t.Fatalf("container not yet healthy: %q", in2.Tasks[0].Health)
	}
}

// TestDecideWithTargets: a rollout waits for the new task's targets, and
// the deployments' HealthChecked is not changed by the overlay.
func TestDecideWithTargets(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	started := now.Add(-time.Minute)
	in := deploy.Input{
		Service: deploy.Service{Name: "web", Status: deploy.ServiceActive, Scheduling: deploy.Replica, DesiredCount: 1, MinHealthyPercent: 100, MaxPercent: 200},
		Deployments: []deploy.Deployment{
			{ID: "new", Status: deploy.StatusPrimary, TaskDefinition: "td:2", DesiredCount: 1, RolloutState: deploy.RolloutInProgress},
			{ID: "old", Status: deploy.StatusActive, TaskDefinition: "td:1", DesiredCount: 1, RolloutState: deploy.RolloutCompleted},
		},
		Tasks: []deploy.Task{
			{ID: "o", DeploymentID: "old", LastStatus: "RUNNING", DesiredStatus: "RUNNING", StartedAt: &started, InstanceID: "c1"},
			{ID: "n", DeploymentID: "new", LastStatus: "RUNNING", DesiredStatus: "RUNNING", StartedAt: &started, InstanceID: "c1"},
		},
		Instances: []deploy.Instance{{ID: "c1", Status: ecsstate.InstanceActive, Connected: true, FreeCPU: 4096, FreeMemory: 8192}},
		Now:       now,
	}
	targets := map[string][]tasklife.TaskTarget{"o": {{TargetGroupARN: testTG, ID: "i-1", Port: 1}}, "n": {{TargetGroupARN: testTG, ID: "i-1", Port: 2}}}
	states := map[string]map[string]tasklife.TargetState{testTG: {"i-1:1": {State: "healthy"}, "i-1:2": {State: "initial"}}}
	dec := decideWithTargets(in, nil, targets, states)
	if len(dec.Stop) != 0 {
		t.Fatalf("the old task stopped before the new one's target is healthy: %+v", dec.Stop)
	}
	for _, d := range dec.Deployments {
		if d.HealthChecked {
			t.Fatalf("HealthChecked stored: %+v", d)
		}
	}
	states[testTG]["i-1:2"] = tasklife.TargetState{State: "healthy"}
	dec = decideWithTargets(in, nil, targets, states)
	if len(dec.Stop) != 1 || dec.Stop[0].TaskID != "o" {
		t.Fatalf("the old task must stop once the new one is healthy: %+v", dec.Stop)
	}
	if dec2 := decideWithTargets(in, nil, targets, nil); len(dec2.Stop) != 1 {
		t.Fatalf("without load balancers, plain Decide: %+v", dec2.Stop)
	}
}
