package ecs

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/ecs/instancemon"
	"github.com/berthdev/berth/internal/store"
)

var lostT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// lostFixture is a cluster c1 with instance i1 (its agent gone, tasks on
// it), i2 (connected, one task) and i3 (registered without an agent, no
// task).
type lostFixture struct {
	s     *Service
	st    store.Store
	tdARN string
}

func newLostFixture(t *testing.T) *lostFixture {
	t.Helper()
	s, st := newTestService(t)
	f := &lostFixture{s: s, st: st, tdARN: s.taskDefARN("web", 1)}
	td := webTD()
	td.TaskDefinitionArn, td.Revision, td.Status = ptr(f.tdARN), ptr(int32(1)), ptr(ecsapi.TaskDefinitionStatusActive)
	putJSON(t, st, taskDefKey("web", 1), taskDefRecord{TaskDefinition: td})
	for _, id := range []string{"i1", "i2", "i3"} {
		putJSON(t, st, instanceKey("c1", id), instanceRecord{ID: id, ARN: s.instanceARN("c1", id), Cluster: "c1", Ec2InstanceID: "i-0" + id,
			Status: InstanceActive, Registered: agentapiResources(4096, 4096, nil, nil), Version: 1})
	}
	putJSON(t, st, keyAgents+"i2", map[string]any{})
	return f
}

// task writes a task on an instance with its assignment (and group
// index entry) as the applier does.
func (f *lostFixture) task(t *testing.T, id, inst, group, desired, last string, mod func(*taskRecord)) {
	t.Helper()
	started := lostT0
	rec := taskRecord{ID: id, ARN: f.s.taskARN("c1", id), Cluster: "c1", TaskDefinitionARN: f.tdARN, InstanceID: inst,
		Group: group, DesiredStatus: desired, LastStatus: last, StartedAt: &started, Version: 3, CreatedAt: lostT0,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING", RuntimeID: "rt-" + id}}}
	if group == "service:web" {
		rec.StartedBy = "ecs-svc/1234567890123456789"
	}
	if mod != nil {
		mod(&rec)
	}
	putJSON(t, f.st, taskKey("c1", id), rec)
	putJSON(t, f.st, assignKey(inst, id), assignmentRecord{Cluster: "c1", TaskID: id, DesiredStatus: desired, Version: rec.Version})
	putJSON(t, f.st, taskGroupKey("c1", group, id), 1)
}

func (f *lostFixture) get(t *testing.T, id string) (taskRecord, int64) {
	t.Helper()
	kv, err := f.st.Get(t.Context(), taskKey("c1", id))
	if err != nil {
		t.Fatal(err)
	}
	var rec taskRecord
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		t.Fatal(err)
	}
	return rec, kv.ModRevision
}

// TestReturningAgentStopsItsTasksAndCannotRevive: after the monitor wrote
// an instance's tasks STOPPED, the returning agent is told they are
// desired STOPPED (so it stops any container still running), and its late
// reports change nothing that matters: a RUNNING report does not revive
// the task, a STOPPED one adds detail but keeps the stop code.
func TestReturningAgentStopsItsTasksAndCannotRevive(t *testing.T) {
	f := newLostFixture(t)
	ctx := t.Context()
	f.task(t, "svc", "i1", "service:web", DesiredRunning, "RUNNING", nil)
	m := instancemon.New(f.st, instancemon.Config{LostAfter: 5 * time.Second})
	for _, d := range []time.Duration{0, 5 * time.Second} {
		if err := m.Pass(ctx, lostT0.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	lost, _ := f.get(t, "svc")
	if lost.LastStatus != "STOPPED" {
		t.Fatalf("%+v", lost)
	}

	cred := AgentCredential{InstanceID: "i1", Cluster: "c1"}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := f.s.OpenAssignments(sctx, cred, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Type != agentapi.EventSync || len(ev.Tasks) != 1 || ev.Tasks[0].DesiredStatus != DesiredStopped ||
			ev.Tasks[0].StopCode != "TerminationNotice" || ev.Tasks[0].Version != lost.Version {
			t.Fatalf("sync %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sync")
	}

	healthy := lostT0.Add(time.Hour)
	err = f.s.ApplyReport(ctx, cred, agentapi.Report{Tasks: []agentapi.TaskReport{{TaskArn: lost.ARN, KnownStatus: "RUNNING",
		HealthStatus: "HEALTHY", ConnectivityAt: &healthy,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "RUNNING"}, {Name: "extra", KnownStatus: "RUNNING"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.get(t, "svc")
	if got.LastStatus != "STOPPED" || got.DesiredStatus != DesiredStopped || got.StopCode != "TerminationNotice" || got.HealthStatus == "HEALTHY" {
		t.Fatalf("a late RUNNING report revived the task: %+v", got)
	}
	for _, c := range got.Containers {
		if c.KnownStatus != "STOPPED" {
			t.Fatalf("a late report added a running container: %+v", got.Containers)
		}
	}

	exit := int32(137)
	later := lostT0.Add(2 * time.Hour)
	err = f.s.ApplyReport(ctx, cred, agentapi.Report{Tasks: []agentapi.TaskReport{{TaskArn: lost.ARN, KnownStatus: "STOPPED",
		StopCode: "EssentialContainerExited", StoppedAt: &later, ExecutionStoppedAt: &later,
		Containers: []agentapi.ContainerReport{{Name: "web", KnownStatus: "STOPPED", ExitCode: &exit}}}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = f.get(t, "svc")
	if got.LastStatus != "STOPPED" || got.StopCode != "TerminationNotice" || !got.StoppedAt.Equal(*lost.StoppedAt) ||
		got.Containers[0].ExitCode == nil || *got.Containers[0].ExitCode != 137 {
		t.Fatalf("after the agent's STOPPED report: %+v", got)
	}
}
