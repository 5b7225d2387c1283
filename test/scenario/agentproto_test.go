package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

func joinAgent(t *testing.T, s *berthtest.Server, cluster string) (*agentapi.Client, agentapi.JoinResponse) {
	t.Helper()
	tok, err := agentgw.CreateJoinToken(ctx(t), s.Endpoint, s.Region, s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := &agentapi.Client{Endpoint: s.Endpoint, Region: s.Region}
	j, err := c.Join(ctx(t), agentapi.JoinRequest{
		Token: tok.Token, Cluster: cluster, Hostname: "node-1", AvailabilityZone: "us-east-1b",
		Resources:   agentapi.Resources{CPU: 2048, MemoryMiB: 4096, OSType: "linux", CPUArch: "x86_64"},
		Attributes:  map[string]string{"disk": "ssd"},
		VersionInfo: agentapi.VersionInfo{AgentVersion: "test", DockerVersion: "20.10"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.AccessKeyID, c.SecretAccessKey = j.AccessKeyID, j.SecretAccessKey
	return c, j
}

// writeTask places a task on an instance the way RunTask's applier does:
// the task record and its assignment entry in one transaction.
func writeTask(t *testing.T, st store.Store, cluster, instanceID, id, tdARN, desired string, version int64) string {
	t.Helper()
	taskARN := fmt.Sprintf("arn:aws:ecs:us-east-1:000000000000:task/%s/%s", cluster, id)
	task := map[string]any{"id": id, "arn": taskARN, "cluster": cluster, "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/" + cluster,
		"taskDefinitionArn": tdARN, "instanceId": instanceID, "launchType": "EC2", "desiredStatus": desired,
		"lastStatus": "PROVISIONING", "version": version, "createdAt": time.Now().UTC()}
	tb, _ := json.Marshal(task)
	ab, _ := json.Marshal(map[string]any{"cluster": cluster, "taskId": id, "desiredStatus": desired, "version": version})
	if _, err := st.Txn(context.Background(), nil,
		store.Put("/berth/ecs/tasks/"+cluster+"/"+id, tb),
		store.Put("/berth/ecs/assign/"+instanceID+"/"+id, ab)); err != nil {
		t.Fatal(err)
	}
	return taskARN
}

func TestAgentProtocol(t *testing.T) {
	s := berthtest.Start(t, nil)
	st := s.Daemon.Store()
	cx := ctx(t)
	ecsc := ecs.NewFromConfig(s.AWSConfig())
	td, err := ecsc.RegisterTaskDefinition(cx, webTaskDef("proto"))
	if err != nil {
		t.Fatal(err)
	}
	tdARN := aws.ToString(td.TaskDefinition.TaskDefinitionArn)

	// A bad token is refused; a good one registers an instance in
	// "default", created on the way as ECS does.
	bad := &agentapi.Client{Endpoint: s.Endpoint, Region: s.Region}
	if _, err := bad.Join(cx, agentapi.JoinRequest{Token: "bjt_nope", Resources: agentapi.Resources{CPU: 1, MemoryMiB: 1}}); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("bad token: %v", err)
	}
	c, j := joinAgent(t, s, "")
	if j.Cluster != "default" {
		t.Fatalf("joined %q", j.Cluster)
	}
	cl, err := ecsc.DescribeClusters(cx, &ecs.DescribeClustersInput{Clusters: []string{"default"}})
	if err != nil || len(cl.Clusters) != 1 || cl.Clusters[0].RegisteredContainerInstancesCount != 1 {
		t.Fatalf("default cluster after join: %v %+v", err, cl)
	}

	// The agent's credential is not a user credential.
	agentCfg := s.AWSConfig()
	agentCfg.Credentials = credentialsFunc(j.AccessKeyID, j.SecretAccessKey)
	_, err = ecs.NewFromConfig(agentCfg).ListClusters(cx, &ecs.ListClustersInput{})
	wantCode(t, err, "UnrecognizedClientException")

	// The stream starts with a sync and then carries each change.
	events := make(chan agentapi.Event, 16)
	sctx, stop := context.WithCancel(cx)
	done := make(chan error, 1)
	go func() { done <- c.Assignments(sctx, 0, func(ev agentapi.Event) error { events <- ev; return nil }) }()
	next := func() agentapi.Event {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Type != agentapi.EventHeartbeat {
					return ev
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no assignment event")
			}
		}
	}
	if ev := next(); ev.Type != agentapi.EventSync || len(ev.Tasks) != 0 {
		t.Fatalf("first event: %+v", ev)
	}
	if _, err := st.Get(cx, "/berth/ecs/agents/"+j.InstanceID); err != nil {
		t.Fatalf("no presence while the stream is open: %v", err)
	}
	taskARN := writeTask(t, st, "default", j.InstanceID, "t1", tdARN, "RUNNING", 1)
	ev := next()
	if ev.Type != agentapi.EventTask || ev.Task.TaskArn != taskARN || ev.Task.TaskDefinition == nil || aws.ToString(ev.Task.TaskDefinition.Family) != "proto" {
		t.Fatalf("task event: %+v", ev)
	}

	// Reports move state forward only.
	now := time.Now()
	report := func(status string) {
		t.Helper()
		if err := c.Report(cx, agentapi.Report{Tasks: []agentapi.TaskReport{{TaskArn: taskARN, KnownStatus: status, StartedAt: &now,
			Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING", RuntimeID: "abc"}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	report("RUNNING")
	report("PENDING") // stale
	kv, _ := st.Get(cx, "/berth/ecs/tasks/default/t1")
	var rec struct {
		LastStatus string `json:"lastStatus"`
		StartedAt  *time.Time
	}
	json.Unmarshal(kv.Value, &rec)
	if rec.LastStatus != "RUNNING" || rec.StartedAt == nil {
		t.Fatalf("task after reports: %s", kv.Value)
	}

	// Disconnect, change desired state, resume from the last revision: the
	// change arrives.
	stop()
	<-done
	last := ev.Revision
	writeTask(t, st, "default", j.InstanceID, "t1", tdARN, "STOPPED", 2)
	sctx2, stop2 := context.WithCancel(cx)
	defer stop2()
	go c.Assignments(sctx2, last, func(ev agentapi.Event) error { events <- ev; return nil })
	ev = next()
	if ev.Type != agentapi.EventTask || ev.Task.DesiredStatus != "STOPPED" || ev.Task.Version != 2 {
		t.Fatalf("resumed event: %+v", ev)
	}
	stop2()
	// Presence goes when the stream closes.
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := st.Get(cx, "/berth/ecs/agents/"+j.InstanceID)
		if errs.Is(err, errs.NotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("presence outlived the stream")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A task on another instance cannot be reported by this agent: that
	// entry is ignored, and the agent's own entries in the same report,
	// before and after it, still apply.
	c2, j2 := joinAgent(t, s, "default")
	other := writeTask(t, st, "default", j2.InstanceID, "t2", tdARN, "RUNNING", 1)
	mine3 := writeTask(t, st, "default", j.InstanceID, "t3", tdARN, "RUNNING", 1)
	mine4 := writeTask(t, st, "default", j.InstanceID, "t4", tdARN, "RUNNING", 1)
	err = c.Report(cx, agentapi.Report{Tasks: []agentapi.TaskReport{
		{TaskArn: mine3, KnownStatus: "PENDING"}, {TaskArn: other, KnownStatus: "STOPPED"},
		{TaskArn: "arn:aws:ecs:bogus", KnownStatus: "STOPPED"}, {TaskArn: mine4, KnownStatus: "PENDING"}}})
	if err != nil {
		t.Fatalf("report with another instance's task: %v", err)
	}
	for id, want := range map[string]string{"t2": "PROVISIONING", "t3": "PENDING", "t4": "PENDING"} {
		kv, _ := st.Get(cx, "/berth/ecs/tasks/default/"+id)
		var r struct {
			LastStatus string `json:"lastStatus"`
		}
		json.Unmarshal(kv.Value, &r)
		if r.LastStatus != want {
			t.Fatalf("%s after a report with a foreign entry: %q, want %q", id, r.LastStatus, want)
		}
	}
	_ = c2
}
