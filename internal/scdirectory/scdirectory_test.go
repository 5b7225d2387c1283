package scdirectory

import (
	"context"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/serviceconnect"
)

func p[T any](v T) *T { return &v }

func webService(status string) ecsapi.Service {
	return ecsapi.Service{ClusterArn: p("arn:c"), ServiceName: p("web"), Status: p(status), Deployments: []ecsapi.Deployment{{Id: p("d1"),
		ServiceConnectConfiguration: &ecsapi.ServiceConnectConfiguration{Namespace: p("arn:ns"),
			Services: []ecsapi.ServiceConnectService{{DiscoveryName: p("web")}}}}}}
}

func webTask(id, last, desired, health string) ecsapi.Task {
	return ecsapi.Task{TaskArn: p(id), ClusterArn: p("arn:c"), Group: p("service:web"), StartedBy: p("d1"), TaskDefinitionArn: p("td"),
		LastStatus: p(last), DesiredStatus: p(desired), HealthStatus: p(ecsapi.HealthStatus(health)),
		Containers: []ecsapi.Container{{Name: p("app"), NetworkInterfaces: []ecsapi.NetworkInterface{{PrivateIpv4Address: p("172.30.0." + id)}}}}}
}

func TestBuild(t *testing.T) {
	svcs := map[string]ecsapi.Service{"arn:c/web": webService("ACTIVE")}
	tasks := map[string]ecsapi.Task{
		"1": webTask("1", "RUNNING", "RUNNING", "HEALTHY"),
		"2": webTask("2", "RUNNING", "STOPPED", "HEALTHY"),   // draining
		"3": webTask("3", "PENDING", "RUNNING", "UNKNOWN"),   // not yet
		"4": webTask("4", "RUNNING", "RUNNING", "UNKNOWN"),   // health check not passed
		"5": webTask("5", "STOPPED", "STOPPED", "UNHEALTHY"), // gone
	}
	got := Build(tasks, svcs, nil, func(string) bool { return true })
	want := []serviceconnect.Endpoint{
		{TaskArn: "1", Address: "172.30.0.1", Port: 15000, Healthy: true},
		{TaskArn: "2", Address: "172.30.0.2", Port: 15000},
		{TaskArn: "4", Address: "172.30.0.4", Port: 15000},
	}
	if len(got["arn:ns"]) != 1 || got["arn:ns"][0].DiscoveryName != "web" || !sameServices(got["arn:ns"], []serviceconnect.DirectoryService{{DiscoveryName: "web", Endpoints: want}}) {
		t.Fatalf("directory %+v", got)
	}
	// Without health checks, a RUNNING task serves.
	got = Build(map[string]ecsapi.Task{"4": tasks["4"]}, svcs, nil, func(string) bool { return false })
	if !got["arn:ns"][0].Endpoints[0].Healthy {
		t.Fatalf("no health check: %+v", got)
	}
	// A service with no task lists its discovery name with no endpoints.
	got = Build(nil, svcs, nil, nil)
	if len(got["arn:ns"]) != 1 || got["arn:ns"][0].Endpoints == nil || len(got["arn:ns"][0].Endpoints) != 0 {
		t.Fatalf("empty: %+v", got)
	}
}

// fakeFeed delivers what the test sends.
type fakeFeed struct {
	tasks chan ecs.TaskChange
	svcs  chan ecs.ServiceChange
}

func (f *fakeFeed) WatchTasks(context.Context) <-chan ecs.TaskChange       { return f.tasks }
func (f *fakeFeed) WatchServices(context.Context) <-chan ecs.ServiceChange { return f.svcs }

// TestHubNotifiesWithinMilliseconds: a task turning RUNNING reaches a
// subscriber of its namespace at once, and only that namespace's.
func TestHubNotifiesWithinMilliseconds(t *testing.T) {
	f := &fakeFeed{tasks: make(chan ecs.TaskChange, 8), svcs: make(chan ecs.ServiceChange, 8)}
	h := New(f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	f.svcs <- ecs.ServiceChange{Kind: ecs.ChangeRelist}
	f.svcs <- ecs.ServiceChange{Kind: ecs.ChangeUpsert, Revision: 5, Service: webService("ACTIVE")}
	f.svcs <- ecs.ServiceChange{Kind: ecs.ChangeSynced}
	f.tasks <- ecs.TaskChange{Kind: ecs.ChangeRelist}
	f.tasks <- ecs.TaskChange{Kind: ecs.ChangeSynced}
	d, err := h.Directory(ctx, "arn:ns")
	if err != nil || len(d.Services) != 1 || len(d.Services[0].Endpoints) != 0 {
		t.Fatalf("first directory %+v %v", d, err)
	}
	ch, stop := h.Subscribe("arn:ns")
	defer stop()
	other, stopOther := h.Subscribe("arn:other")
	defer stopOther()
	start := time.Now()
	f.tasks <- ecs.TaskChange{Kind: ecs.ChangeUpsert, Revision: 9, Task: webTask("1", "RUNNING", "RUNNING", "UNKNOWN")}
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("no notification")
	}
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("notified after %s", el)
	}
	d, _ = h.Directory(ctx, "arn:ns")
	if d.Revision != 9 || len(d.Services[0].Endpoints) != 1 || !d.Services[0].Endpoints[0].Healthy {
		t.Fatalf("directory %+v", d)
	}
	select {
	case <-other:
		t.Fatal("another namespace's subscriber was woken")
	default:
	}
	// A change that does not change the directory wakes nobody.
	f.tasks <- ecs.TaskChange{Kind: ecs.ChangeUpsert, Revision: 10, Task: webTask("1", "RUNNING", "RUNNING", "UNKNOWN")}
	select {
	case <-ch:
		t.Fatal("woken for no change")
	case <-time.After(50 * time.Millisecond):
	}
}
