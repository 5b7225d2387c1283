package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

const testTG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"

func lbFor(name string, port int32) ecsapi.LoadBalancer {
	return ecsapi.LoadBalancer{TargetGroupArn: ptr(testTG), ContainerName: ptr(name), ContainerPort: ptr(port)}
}

func TestCheckLoadBalancersPure(t *testing.T) {
	td := webTD() // bridge; container web maps 80, 53/udp, 9000
	awsvpc := webTD()
	awsvpc.NetworkMode = ptr(ecsapi.NetworkModeAwsvpc)
	attached := TargetGroupInfo{ARN: testTG, TargetType: "instance", LoadBalancers: []string{"lb"}}
	ipTG := TargetGroupInfo{ARN: testTG, TargetType: "ip", LoadBalancers: []string{"lb"}}
	cases := []struct {
		name string
		lbs  []ecsapi.LoadBalancer
		info []TargetGroupInfo
		td   *ecsapi.TaskDefinition
		want string // "" for no error
	}{
		{"ok", []ecsapi.LoadBalancer{lbFor("web", 80)}, []TargetGroupInfo{attached}, &td, ""},
		{"dynamic host port ok", []ecsapi.LoadBalancer{lbFor("web", 9000)}, []TargetGroupInfo{attached}, &td, ""},
		{"ip with awsvpc ok", []ecsapi.LoadBalancer{lbFor("web", 80)}, []TargetGroupInfo{ipTG}, &awsvpc, ""},
		{"no load balancer", []ecsapi.LoadBalancer{lbFor("web", 80)}, []TargetGroupInfo{{ARN: testTG, TargetType: "instance"}}, &td,
			"The target group with targetGroupArn " + testTG + " does not have an associated load balancer."},
		{"unknown container", []ecsapi.LoadBalancer{lbFor("api", 80)}, []TargetGroupInfo{attached}, &td, "The container api does not exist in the task definition."},
		{"port not mapped", []ecsapi.LoadBalancer{lbFor("web", 8080)}, []TargetGroupInfo{attached}, &td, "The container web did not have a container port 8080 defined."},
		{"ip with bridge", []ecsapi.LoadBalancer{lbFor("web", 80)}, []TargetGroupInfo{ipTG}, &td,
			"The provided target group " + testTG + " has target type ip, which is incompatible with the bridge network mode specified in the task definition."},
		{"instance with awsvpc", []ecsapi.LoadBalancer{lbFor("web", 80)}, []TargetGroupInfo{attached}, &awsvpc,
			"The provided target group " + testTG + " has target type instance, which is incompatible with the awsvpc network mode specified in the task definition."},
		{"no container port", []ecsapi.LoadBalancer{{TargetGroupArn: ptr(testTG), ContainerName: ptr("web")}}, []TargetGroupInfo{attached}, &td,
			"containerName and containerPort must be specified for a load balancer."},
		{"twice", []ecsapi.LoadBalancer{lbFor("web", 80), lbFor("web", 80)}, []TargetGroupInfo{attached, attached}, &td, "is specified more than once."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkLoadBalancersPure(c.lbs, c.info, c.td)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errs.Is(err, errs.Invalid) || !strings.Contains(errs.MessageOf(err), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// fakeLB is a LoadBalancing with one target group.
type fakeLB struct{ delay time.Duration }

func (f fakeLB) TargetGroup(_ context.Context, a string) (TargetGroupInfo, error) {
	if a != testTG {
		return TargetGroupInfo{}, errs.E(errs.NotFound, "no")
	}
	return TargetGroupInfo{ARN: a, TargetType: "instance", LoadBalancers: []string{"lb"}, DeregistrationDelay: f.delay}, nil
}

func (f fakeLB) TargetStates(context.Context, []string) (map[string]map[string]TargetState, error) {
	return map[string]map[string]TargetState{}, nil
}

// TestDrainGate: a RUNNING task of a load-balanced service stopped by
// StopTask is held DEACTIVATING (its assignment still says RUNNING, the
// state is in the store) until the deregistration delay has passed; the
// release writes the assignment STOPPED. A task of a service without load
// balancers has no gate.
func TestDrainGate(t *testing.T) {
	s, st := newTestService(t)
	ctx := context.Background()
	s.SetLoadBalancing(fakeLB{delay: 5 * time.Second})
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	putJSON(t, st, serviceKey("default", "web"), serviceRecord{Name: "web", Cluster: "default", LoadBalancers: []ecsapi.LoadBalancer{lbFor("web", 80)}})
	putJSON(t, st, serviceKey("default", "plain"), serviceRecord{Name: "plain", Cluster: "default"})
	reg, err := s.RegisterTaskDefinition(ctx, &ecsapi.RegisterTaskDefinitionRequest{Family: ptr("web"),
		ContainerDefinitions: []ecsapi.ContainerDefinition{{Name: ptr("web"), Image: ptr("web"), Memory: ptr(int32(64))}}})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(id, group, status string) {
		putJSON(t, st, taskKey("default", id), taskRecord{ID: id, ARN: "arn:aws:ecs:us-east-1:000000000000:task/default/" + id, Cluster: "default",
			TaskDefinitionARN: deref(reg.TaskDefinition.TaskDefinitionArn),
			InstanceID:        "c1", Group: group, DesiredStatus: DesiredRunning, LastStatus: status, Version: 1,
			Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: status}}})
		putJSON(t, st, assignKey("c1", id), assignmentRecord{Cluster: "default", TaskID: id, DesiredStatus: DesiredRunning, Version: 1})
	}
	mk("held", "service:web", "RUNNING")
	mk("pending", "service:web", "PENDING")
	mk("plain", "service:plain", "RUNNING")
	drain := func(tk *taskRecord) (time.Duration, error) { return s.serviceDrainDelay(ctx, tk) }
	for _, id := range []string{"held", "pending", "plain"} {
		if _, err := s.stopTaskHeld(ctx, "default", id, ecsapi.TaskStopCodeUserInitiated, "stop", drain); err != nil {
			t.Fatal(err)
		}
	}
	assigned := func(id string) assignmentRecord {
		kv, err := st.Get(ctx, assignKey("c1", id))
		if err != nil {
			t.Fatal(err)
		}
		var ar assignmentRecord
		mustJSON(t, kv.Value, &ar)
		return ar
	}
	held, _, _ := s.getTask(ctx, "default", "held")
	if held.DesiredStatus != DesiredStopped || held.LastStatus != "DEACTIVATING" || held.DrainUntil == nil || !held.DrainUntil.Equal(now.Add(5*time.Second)) {
		t.Fatalf("held task: %+v", held)
	}
	if assigned("held").DesiredStatus != DesiredRunning {
		t.Fatal("the agent must not be told to stop a held task yet")
	}
	kv, _ := st.Get(ctx, assignKey("c1", "held"))
	if a, err := s.assignment(ctx, kv); err != nil || a.DesiredStatus != DesiredRunning {
		t.Fatalf("assignment of a held task: %+v %v", a, err)
	}
	for _, id := range []string{"pending", "plain"} {
		if tk, _, _ := s.getTask(ctx, "default", id); tk.DrainUntil != nil || assigned(id).DesiredStatus != DesiredStopped {
			t.Fatalf("%s: no gate expected: %+v", id, tk)
		}
	}
	// Not yet due: nothing happens; due: released.
	if err := s.releaseDrained(ctx, now.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if assigned("held").DesiredStatus != DesiredRunning {
		t.Fatal("released early")
	}
	if err := s.releaseDrained(ctx, now.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if a := assigned("held"); a.DesiredStatus != DesiredStopped || a.Version != held.Version+1 {
		t.Fatalf("after the delay: %+v", a)
	}
	if res, _ := st.List(ctx, keyDrain, store.ListOptions{}); len(res.KVs) != 0 {
		t.Fatalf("drain index left: %d", len(res.KVs))
	}
	if tk, _, _ := s.getTask(ctx, "default", "held"); tk.DrainUntil != nil {
		t.Fatalf("still held: %+v", tk)
	}
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
