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

func withPool(c *Config) { c.PausePool = 1 }

// poolContainers lists the ready pool containers of a harness's instance.
func poolContainers(t *testing.T, h *harness) map[string]dockerdriver.ContainerSummary {
	t.Helper()
	cs, err := h.d.ListContainers(context.Background(), dockerdriver.ListOptions{All: true,
		Labels: map[string]string{LabelPausePool: "true", dockerdriver.LabelInstance: h.rt.cfg.InstanceARN}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dockerdriver.ContainerSummary{}
	for _, c := range cs {
		out[c.ID] = c
	}
	return out
}

func waitPool(t *testing.T, h *harness, n int, without string) map[string]dockerdriver.ContainerSummary {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for {
		h.rt.pool.mu.Lock()
		ready := len(h.rt.pool.ready)
		h.rt.pool.mu.Unlock()
		pc := poolContainers(t, h)
		if _, still := pc[without]; ready >= n && (without == "" || still) {
			return pc
		}
		if time.Now().After(deadline) {
			t.Fatalf("pause pool: %d ready, containers %v", ready, pc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A Fargate task takes a started pool container as its namespace (its
// address is the pool container's), the pool is refilled, the task's
// stop removes the namespace, and a task with Service Connect or of the
// EC2 launch type never takes one.
func TestPausePoolTask(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil, withPool)
	ready := waitPool(t, h, 1, "")
	var poolID string
	for id := range ready {
		poolID = id
	}
	info, err := d.InspectContainer(context.Background(), poolID)
	if err != nil {
		t.Fatal(err)
	}
	poolIP := info.Networks[h.rt.cfg.AwsvpcNetwork].IPAddress

	ec2 := assignment(ecsapi.NetworkModeAwsvpc, cdef("app", "term:0", "sleep:1h"))
	rec0 := &recorder{}
	r0 := h.rt.NewRunner(ec2, rec0.report)
	r0.Update(ec2)
	tr0 := rec0.waitStatus(t, 40*time.Second, "RUNNING")
	if attachmentDetail(tr0.Attachments[0], "privateIPv4Address") == poolIP {
		t.Errorf("an EC2 awsvpc task took the Fargate pause pool's container")
	}

	a := fargateAssignment(cdef("app", "term:0", "sleep:1h"))
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitStatus(t, 40*time.Second, "RUNNING")
	if got := attachmentDetail(tr.Attachments[0], "privateIPv4Address"); got != poolIP {
		t.Errorf("task address %s, want the pool container's %s", got, poolIP)
	}
	app, err := d.InspectContainer(context.Background(), container(tr, "app").RuntimeID)
	if err != nil || app.Labels[LabelNetworkContainer] != poolID {
		t.Errorf("app labels %v (err %v), want %s=%s", app.Labels, err, LabelNetworkContainer, poolID)
	}
	refill := waitPool(t, h, 1, "")
	if _, ok := refill[poolID]; ok && len(refill) < 2 {
		t.Errorf("pool not refilled: %v", refill)
	}
	for _, x := range []struct {
		r interface {
			Update(agentapi.Assignment)
			Done() <-chan struct{}
		}
		a   agentapi.Assignment
		rec *recorder
	}{{r, a, rec}, {r0, ec2, rec0}} {
		x.r.Update(stopped(x.a))
		select {
		case <-x.r.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("not stopped; last %+v", x.rec.last())
		}
	}
	if _, err := d.InspectContainer(context.Background(), poolID); err == nil {
		t.Errorf("the task's namespace (pool container %s) is still there after its stop", poolID)
	}
	h.stop()
}

// An agent that stops while a task runs in a pool container's namespace
// re-attaches to it (the namespace is found through the task's container,
// the pool does not take it back), and the stop removes it.
func TestPausePoolAdopt(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	inst := randHex(6)
	h1 := newHarness(t, d, inst, nil, withPool)
	waitPool(t, h1, 1, "")
	a := fargateAssignment(cdef("app", "term:0", "sleep:1h"))
	rec := &recorder{}
	r := h1.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitStatus(t, 40*time.Second, "RUNNING")
	appID := container(tr, "app").RuntimeID
	ip := attachmentDetail(tr.Attachments[0], "privateIPv4Address")
	app, err := d.InspectContainer(context.Background(), appID)
	if err != nil {
		t.Fatal(err)
	}
	nsID := app.Labels[LabelNetworkContainer]
	h1.stop()

	rec2 := &recorder{}
	h2 := newHarness(t, d, inst, nil, withPool, func(c *Config) { c.Report = rec2.report })
	adopted, err := h2.rt.Adopt(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	ready := waitPool(t, h2, 1, "")
	h2.rt.pool.mu.Lock()
	for _, p := range h2.rt.pool.ready {
		if p.id == nsID {
			t.Errorf("the pool took back the namespace of a running task")
		}
	}
	h2.rt.pool.mu.Unlock()
	r2 := adopted[a.TaskArn]
	if r2 == nil {
		t.Fatalf("adopted %v", adopted)
	}
	a.Version = 2
	r2.Update(a)
	tr = rec2.waitStatus(t, 40*time.Second, "RUNNING")
	if container(tr, "app").RuntimeID != appID || len(tr.Attachments) != 1 || attachmentDetail(tr.Attachments[0], "privateIPv4Address") != ip {
		t.Errorf("re-attached report %+v (want app %s at %s)", tr, appID, ip)
	}
	r2.Update(stopped(a))
	select {
	case <-r2.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped; last %+v", rec2.last())
	}
	if _, err := d.InspectContainer(context.Background(), nsID); err == nil {
		t.Errorf("the task's namespace %s is still there after its stop", nsID)
	}
	if len(ready) == 0 {
		t.Errorf("no pool container on the new agent")
	}
	h2.stop()
}

// A pool entry whose container is gone (Docker's event about it was lost)
// is not handed out: the task takes the next one or starts its own.
func TestPausePoolSkipsDeadContainer(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil, withPool)
	waitPool(t, h, 1, "")
	const gone = "0000000000000000000000000000000000000000000000000000000000000000"
	h.rt.pool.mu.Lock()
	h.rt.pool.ready = append([]pooledPause{{id: gone}}, h.rt.pool.ready...)
	h.rt.pool.mu.Unlock()
	a := fargateAssignment(cdef("app", "term:0", "sleep:1h"))
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitStatus(t, 40*time.Second, "RUNNING")
	app, err := d.InspectContainer(context.Background(), container(tr, "app").RuntimeID)
	if err != nil || app.Labels[LabelNetworkContainer] == gone || attachmentDetail(tr.Attachments[0], "privateIPv4Address") == "" {
		t.Fatalf("app labels %v (err %v), attachment %+v", app.Labels, err, tr.Attachments)
	}
	r.Update(stopped(a))
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	h.stop()
}
