package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/api/eventsapi"
	"github.com/berthdev/berth/internal/awsproto"
)

// fakeFeed hands the test's items to the controller.
type fakeFeed struct {
	tasks     chan TaskItem
	services  chan ServiceItem
	instances chan InstanceItem
}

func newFakeFeed() *fakeFeed {
	return &fakeFeed{tasks: make(chan TaskItem, 100), services: make(chan ServiceItem, 100), instances: make(chan InstanceItem, 100)}
}

func (f *fakeFeed) Tasks(context.Context) <-chan TaskItem         { return f.tasks }
func (f *fakeFeed) Services(context.Context) <-chan ServiceItem   { return f.services }
func (f *fakeFeed) Instances(context.Context) <-chan InstanceItem { return f.instances }
func (f *fakeFeed) close()                                        { close(f.tasks); close(f.services); close(f.instances) }

func runFeed(t *testing.T, svc *Service, f *fakeFeed) {
	done := make(chan struct{})
	go func() { svc.RunECSEvents(context.Background(), f); close(done) }()
	f.close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("controller did not finish")
	}
}

func outboxEvents(t *testing.T, svc *Service) []Event {
	t.Helper()
	recs, _, err := listJSON[outboxRecord](context.Background(), svc.st, keyOutbox)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for _, r := range recs {
		var ev Event
		json.Unmarshal(r.Event, &ev)
		out = append(out, ev)
	}
	return out
}

func at(sec float64) *awsproto.Time { return &awsproto.Time{Time: time.Unix(int64(sec), 0).UTC()} }

func task(last string, containerStatus string) ecsapi.Task {
	return ecsapi.Task{TaskArn: s("arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef"), ClusterArn: s("arn:aws:ecs:us-east-1:000000000000:cluster/default"),
		LastStatus: s(last), DesiredStatus: s("RUNNING"), CreatedAt: at(1700000000), Version: ptr(int64(1)),
		Tags:       []ecsapi.Tag{{Key: s("k"), Value: s("v")}},
		Containers: []ecsapi.Container{{Name: s("web"), LastStatus: s(containerStatus)}}}
}

func TestTaskStateChangeEvents(t *testing.T) {
	svc := testService(t, Deps{})
	anyRule(t, svc)
	f := newFakeFeed()
	f.tasks <- TaskItem{Kind: FeedRelist}
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 10, Task: task("PENDING", "PENDING")}
	f.tasks <- TaskItem{Kind: FeedSynced}
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 11, Task: task("PENDING", "PENDING")} // no status change
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 12, Task: task("RUNNING", "RUNNING")}
	stopped := task("STOPPED", "STOPPED")
	stopped.StopCode = ptr(ecsapi.TaskStopCodeEssentialContainerExited)
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 13, Task: stopped}
	runFeed(t, svc, f)
	evs := outboxEvents(t, svc)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, want := range []string{"PENDING", "RUNNING", "STOPPED"} {
		ev := evs[i]
		var d map[string]any
		json.Unmarshal(ev.Detail, &d)
		if ev.Source != "aws.ecs" || ev.DetailType != "ECS Task State Change" || ev.Version != "0" || ev.Account != testAccount ||
			ev.Region != testRegion || len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef" {
			t.Fatalf("envelope %+v", ev)
		}
		if d["lastStatus"] != want || d["version"] != float64(i+1) || d["createdAt"] != "2023-11-14T22:13:20.000Z" || d["tags"] != nil || d["updatedAt"] == nil {
			t.Fatalf("event %d detail %s", i, ev.Detail)
		}
	}
	// A restart: the feed lists again; nothing already emitted repeats,
	// and a change made while down is emitted with the next version.
	f = newFakeFeed()
	f.tasks <- TaskItem{Kind: FeedRelist}
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 13, Task: stopped}
	f.tasks <- TaskItem{Kind: FeedSynced}
	runFeed(t, New(svc.st, svc.cfg, Deps{}, nil), f)
	if n := len(outboxEvents(t, svc)); n != 3 {
		t.Fatalf("restart re-emitted: %d events", n)
	}
	stopped.Containers[0].ExitCode = ptr(int32(1))
	f = newFakeFeed()
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 20, Task: stopped}
	runFeed(t, New(svc.st, svc.cfg, Deps{}, nil), f)
	evs = outboxEvents(t, svc)
	var d map[string]any
	json.Unmarshal(evs[len(evs)-1].Detail, &d)
	if len(evs) != 4 || d["version"] != float64(4) {
		t.Fatalf("after restart: %d events, last %s", len(evs), evs[len(evs)-1].Detail)
	}
}

func TestServiceAndDeploymentEvents(t *testing.T) {
	svc := testService(t, Deps{})
	anyRule(t, svc)
	f := newFakeFeed()
	base := ecsapi.Service{ServiceArn: s("arn:aws:ecs:us-east-1:000000000000:service/default/web"), ClusterArn: s("arn:aws:ecs:us-east-1:000000000000:cluster/default"), ServiceName: s("web")}
	v1 := base
	v1.Deployments = []ecsapi.Deployment{{Id: s("ecs-svc/1"), RolloutState: ptr(ecsapi.DeploymentRolloutStateInProgress), UpdatedAt: at(1700000000)}}
	v2 := base
	v2.Deployments = []ecsapi.Deployment{{Id: s("ecs-svc/1"), RolloutState: ptr(ecsapi.DeploymentRolloutStateCompleted), UpdatedAt: at(1700000060)}}
	v2.Events = []ecsapi.ServiceEvent{
		{Id: s("e2"), CreatedAt: at(1700000060), Message: s("(service web) has reached a steady state.")},
		{Id: s("e1"), CreatedAt: at(1700000010), Message: s("(service web) has started 1 tasks: (task 0123).")},
	}
	v3 := v2
	v3.Events = append([]ecsapi.ServiceEvent{{Id: s("e3"), CreatedAt: at(1700000100),
		Message: s("(service web) was unable to place a task because no container instance met all of its requirements. The closest matching container-instance abc has insufficient memory available.")}}, v2.Events...)
	f.services <- ServiceItem{Kind: FeedUpsert, Revision: 5, Service: v1}
	f.services <- ServiceItem{Kind: FeedUpsert, Revision: 6, Service: v2}
	f.services <- ServiceItem{Kind: FeedUpsert, Revision: 7, Service: v3}
	f.services <- ServiceItem{Kind: FeedUpsert, Revision: 7, Service: v3} // repeated: nothing new
	runFeed(t, svc, f)
	evs := outboxEvents(t, svc)
	want := []struct{ typ, name string }{
		{"ECS Deployment State Change", "SERVICE_DEPLOYMENT_IN_PROGRESS"},
		{"ECS Deployment State Change", "SERVICE_DEPLOYMENT_COMPLETED"},
		{"ECS Service Action", "SERVICE_STEADY_STATE"},
		{"ECS Service Action", "SERVICE_TASK_PLACEMENT_FAILURE"},
	}
	if len(evs) != len(want) {
		for _, e := range evs {
			t.Logf("%s %s", e.DetailType, e.Detail)
		}
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, w := range want {
		var d map[string]any
		json.Unmarshal(evs[i].Detail, &d)
		if evs[i].DetailType != w.typ || d["eventName"] != w.name || evs[i].Resources[0] != *base.ServiceArn {
			t.Fatalf("event %d: %s %s", i, evs[i].DetailType, evs[i].Detail)
		}
	}
	var d map[string]any
	json.Unmarshal(evs[1].Detail, &d)
	if d["deploymentId"] != "ecs-svc/1" || d["eventType"] != "INFO" || d["updatedAt"] != "2023-11-14T22:14:20.000Z" || d["reason"] != "ECS deployment ecs-svc/1 completed." {
		t.Fatalf("deployment detail %s", evs[1].Detail)
	}
	json.Unmarshal(evs[3].Detail, &d)
	if d["eventType"] != "WARN" || d["reason"] != "RESOURCE:MEMORY" || d["clusterArn"] != *base.ClusterArn {
		t.Fatalf("placement failure detail %s", evs[3].Detail)
	}
}

func TestContainerInstanceEvents(t *testing.T) {
	svc := testService(t, Deps{})
	anyRule(t, svc)
	f := newFakeFeed()
	ci := ecsapi.ContainerInstance{ContainerInstanceArn: s("arn:aws:ecs:us-east-1:000000000000:container-instance/default/abc"), Status: s("ACTIVE"),
		AgentConnected: ptr(true), RegisteredAt: at(1700000000), Version: ptr(int64(1)), RunningTasksCount: ptr(int32(0))}
	f.instances <- InstanceItem{Kind: FeedUpsert, Revision: 3, Instance: ci}
	busy := ci
	busy.RunningTasksCount = ptr(int32(1))
	f.instances <- InstanceItem{Kind: FeedUpsert, Revision: 4, Instance: busy}
	lost := busy
	lost.AgentConnected = ptr(false)
	f.instances <- InstanceItem{Kind: FeedUpsert, Revision: 5, Instance: lost}
	runFeed(t, svc, f)
	evs := outboxEvents(t, svc)
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	var d map[string]any
	json.Unmarshal(evs[2].Detail, &d)
	if evs[2].DetailType != "ECS Container Instance State Change" || d["agentConnected"] != false || d["version"] != float64(3) || d["registeredAt"] != "2023-11-14T22:13:20.000Z" {
		t.Fatalf("event %s %s", evs[2].DetailType, evs[2].Detail)
	}
}

// TestNoRulesNoOutbox: with no rule on the default bus, ECS's changes move
// the cursors (versions keep counting) without outbox writes; once a rule
// exists, events are written again.
func TestNoRulesNoOutbox(t *testing.T) {
	svc := testService(t, Deps{})
	f := newFakeFeed()
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 10, Task: task("PENDING", "PENDING")}
	runFeed(t, svc, f)
	if n := len(outboxEvents(t, svc)); n != 0 {
		t.Fatalf("%d events with no rule", n)
	}
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("any"), EventPattern: s(`{"source":["aws.ecs"]}`)})
	f = newFakeFeed()
	f.tasks <- TaskItem{Kind: FeedUpsert, Revision: 11, Task: task("RUNNING", "RUNNING")}
	runFeed(t, New(svc.st, svc.cfg, Deps{}, nil), f)
	evs := outboxEvents(t, svc)
	var d map[string]any
	if len(evs) == 1 {
		json.Unmarshal(evs[0].Detail, &d)
	}
	if len(evs) != 1 || d["version"] != float64(2) {
		t.Fatalf("events %+v", evs)
	}
}

// anyRule puts a rule on the default bus, so ECS's events are written.
func anyRule(t *testing.T, svc *Service) {
	mustPutRule(t, svc, &eventsapi.PutRuleRequest{Name: s("all-ecs"), EventPattern: s(`{"source":["aws.ecs"]}`)})
}
