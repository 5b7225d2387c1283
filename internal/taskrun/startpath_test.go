package taskrun

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/dockerdriver"
)

func fargateAssignment(cds ...ecsapi.ContainerDefinition) agentapi.Assignment {
	a := assignment(ecsapi.NetworkModeAwsvpc, cds...)
	a.LaunchType, a.CPU, a.MemoryMiB = agentapi.LaunchTypeFargate, 256, 512
	return a
}

// taskContainers lists the Docker containers of a task by the name the
// runner gave them (the pause container is "~internal~ecs~pause").
func taskContainers(t *testing.T, d *dockerdriver.Driver, arn string) map[string]dockerdriver.ContainerSummary {
	t.Helper()
	cs, err := d.ListContainers(context.Background(), dockerdriver.ListOptions{All: true,
		Labels: map[string]string{dockerdriver.LabelTaskARN: arn}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dockerdriver.ContainerSummary{}
	for _, c := range cs {
		out[c.Labels[dockerdriver.LabelContainerName]] = c
	}
	return out
}

// A pause container that fails to start fails the task with the start's
// error as its reason, as when the start was serial: no container of the
// task was started, none is left created, and the namespace is removed.
func TestPauseStartFailureFailsTask(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	h.rt.pauseStartHook = func(context.Context, string) error {
		return errors.New("the namespace refused to start")
	}
	a := fargateAssignment(cdef("app", "term:0", "sleep:1h"))
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	select {
	case <-r.Done():
	case <-time.After(40 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	tr := rec.last()
	if tr.KnownStatus != "STOPPED" || tr.StopCode != StopCodeFailedToStart || tr.StoppedReason != "the namespace refused to start" {
		t.Errorf("report: status %s stopCode %s reason %q", tr.KnownStatus, tr.StopCode, tr.StoppedReason)
	}
	if c := container(tr, "app"); c.RuntimeID != "" || c.KnownStatus != "STOPPED" {
		t.Errorf("app = %+v, want stopped without a container", c)
	}
	for _, st := range rec.statuses() {
		if st == "RUNNING" {
			t.Errorf("statuses %v", rec.statuses())
		}
	}
	if left := taskContainers(t, d, a.TaskArn); len(left) != 0 {
		t.Errorf("containers left: %v", left)
	}
}

// An agent that stops after the task's network namespace container was
// created and its container created in it, but before the namespace
// started, leaves both created: the next agent re-attaches, starts the
// namespace, then the container (the same one), and the task runs.
func TestAdoptTaskStoppedMidStart(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	inst := randHex(6)
	h1 := newHarness(t, d, inst, nil)
	h1.rt.pauseStartHook = func(ctx context.Context, _ string) error {
		<-ctx.Done() // the agent stops while the namespace starts
		return ctx.Err()
	}
	a := fargateAssignment(cdef("app", "term:0", "sleep:1h"))
	rec := &recorder{}
	r := h1.rt.NewRunner(a, rec.report)
	r.Update(a)
	deadline := time.Now().Add(40 * time.Second)
	var made map[string]dockerdriver.ContainerSummary
	for {
		made = taskContainers(t, d, a.TaskArn)
		if _, ok := made["app"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app container was not created; containers %v, last report %+v", made, rec.last())
		}
		time.Sleep(50 * time.Millisecond)
	}
	h1.stop()
	made = taskContainers(t, d, a.TaskArn)
	if made[PauseContainerName].State != "created" || made["app"].State != "created" {
		t.Fatalf("after the agent stopped: pause %q app %q, want both created", made[PauseContainerName].State, made["app"].State)
	}

	rec2 := &recorder{}
	h2 := newHarness(t, d, inst, nil)
	h2.rt.cfg.Report = rec2.report
	adopted, err := h2.rt.Adopt(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	r2, ok := adopted[a.TaskArn]
	if !ok {
		t.Fatalf("adopted %v", adopted)
	}
	a.Version = 2
	r2.Update(a)
	tr := rec2.waitStatus(t, 40*time.Second, "RUNNING")
	if got := container(tr, "app").RuntimeID; got != made["app"].ID {
		t.Errorf("app runtime id %s, want the adopted %s", got, made["app"].ID)
	}
	if len(tr.Attachments) != 1 || !strings.HasPrefix(attachmentDetail(tr.Attachments[0], "privateIPv4Address"), "10.213.") {
		t.Errorf("attachments %+v", tr.Attachments)
	}
	r2.Update(stopped(a))
	select {
	case <-r2.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped; last %+v", rec2.last())
	}
	if c := container(rec2.last(), "app"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("app = %+v", c)
	}
}

func attachmentDetail(att ecsapi.Attachment, name string) string {
	for _, kv := range att.Details {
		if deref(kv.Name) == name {
			return deref(kv.Value)
		}
	}
	return ""
}
