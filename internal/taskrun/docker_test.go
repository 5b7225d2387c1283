package taskrun

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/metadata"
	"github.com/berthdev/berth/internal/taskstats"
)

func TestRunAndStopOnDesiredStopped(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	web := cdef("web", "term:7", "sleep:1h")
	web.PortMappings = []ecsapi.PortMapping{{ContainerPort: ptr(int32(80))}}
	a := assignment("", web, cdef("side", "ignoreterm", "sleep:1h"))
	a.TaskDefinition.ContainerDefinitions[1].Essential = ptr(false)
	a.TaskDefinition.ContainerDefinitions[1].StopTimeout = ptr(int32(1))
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitStatus(t, 30*time.Second, "RUNNING")
	if tr.StartedAt == nil || tr.PullStartedAt == nil || tr.PullStoppedAt == nil {
		t.Errorf("timestamps missing: %+v", tr)
	}
	c := container(tr, "web")
	if c.KnownStatus != "RUNNING" || c.RuntimeID == "" || c.ImageDigest == "" {
		t.Errorf("web = %+v", c)
	}
	if len(c.NetworkBindings) == 0 || *c.NetworkBindings[0].HostPort == 0 || *c.NetworkBindings[0].ContainerPort != 80 {
		t.Errorf("dynamic host port not reported: %+v", c.NetworkBindings)
	}
	r.Update(stopped(a))
	start := time.Now()
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	tr = rec.last()
	if tr.KnownStatus != "STOPPED" || tr.StopCode != "UserInitiated" || tr.StoppedReason != "Task stopped by user" || tr.StoppedAt == nil || tr.ExecutionStoppedAt == nil {
		t.Errorf("stopped report = %+v", tr)
	}
	if c := container(tr, "web"); c.ExitCode == nil || *c.ExitCode != 7 {
		t.Errorf("web exit = %+v (want 7: it got SIGTERM)", c)
	}
	if c := container(tr, "side"); c.ExitCode == nil || *c.ExitCode != 137 {
		t.Errorf("side exit = %+v (want 137: SIGKILL after its stopTimeout)", c)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("stop took %s", el)
	}
	want := []string{"PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}
	got := rec.statuses()
	for _, s := range got {
		if !slices.Contains(want, s) {
			t.Errorf("unexpected status %s in %v", s, got)
		}
	}
	for i := 1; i < len(got); i++ {
		if agentapi.StatusRank(got[i]) < agentapi.StatusRank(got[i-1]) {
			t.Errorf("status went backward: %v", got)
		}
	}
}

func TestEssentialExitStopsTask(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	a := assignment("", cdef("app", "sleep:1s", "exit:1"), cdef("other", "sleep:1h"))
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	select {
	case <-r.Done():
	case <-time.After(40 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	tr := rec.last()
	if tr.StopCode != StopCodeEssentialExited || tr.StoppedReason != ReasonEssentialExited {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
	if c := container(tr, "app"); c.ExitCode == nil || *c.ExitCode != 1 || c.KnownStatus != "STOPPED" {
		t.Errorf("app = %+v", c)
	}
}

func TestNonEssentialExitKeepsTask(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	job := cdef("job", "exit:2")
	job.Essential = ptr(false)
	a := assignment("", cdef("app", "sleep:1h"), job)
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	rec.waitFor(t, 30*time.Second, "job exited", func(tr agentapi.TaskReport) bool {
		c := container(tr, "job")
		return c.ExitCode != nil && *c.ExitCode == 2
	})
	time.Sleep(time.Second)
	if tr := rec.last(); tr.KnownStatus != "RUNNING" {
		t.Errorf("task = %s, want RUNNING", tr.KnownStatus)
	}
	r.Update(stopped(a))
	<-r.Done()
}

func TestImagePullFailure(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	a := assignment("", ecsapi.ContainerDefinition{Name: ptr("app"), Image: ptr("127.0.0.1:1/nope:latest")})
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	select {
	case <-r.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	tr := rec.last()
	if tr.StopCode != StopCodeFailedToStart || !strings.HasPrefix(tr.StoppedReason, "CannotPullContainerError: ") {
		t.Errorf("stop = %q %q", tr.StopCode, tr.StoppedReason)
	}
	if c := container(tr, "app"); !strings.HasPrefix(c.Reason, "CannotPullContainerError: ") || c.KnownStatus != "STOPPED" {
		t.Errorf("app = %+v", c)
	}
	if tr.PullStartedAt == nil || tr.PullStoppedAt == nil {
		t.Errorf("pull times missing")
	}
}

func TestHealthCheckUnhealthy(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	app := cdef("app", "sleep:1h")
	app.HealthCheck = &ecsapi.HealthCheck{Command: []string{"CMD", "/tool", "check:/tmp/nothing"}, Interval: ptr(int32(1)), Retries: ptr(int32(1)), Timeout: ptr(int32(2))}
	good := cdef("good", "touch:/tmp/ok", "sleep:1h")
	good.HealthCheck = &ecsapi.HealthCheck{Command: []string{"CMD", "/tool", "check:/tmp/ok"}, Interval: ptr(int32(1)), Retries: ptr(int32(1)), Timeout: ptr(int32(2))}
	a := assignment("", app, good)
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitFor(t, 30*time.Second, "UNHEALTHY", func(tr agentapi.TaskReport) bool {
		return tr.HealthStatus == HealthUnhealthy && container(tr, "good").HealthStatus == HealthHealthy
	})
	if c := container(tr, "app"); c.HealthStatus != HealthUnhealthy {
		t.Errorf("app health = %q", c.HealthStatus)
	}
	r.Update(stopped(a))
	<-r.Done()
}

func TestDependsOnHealthyTimesOut(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	db := cdef("db", "sleep:1h")
	db.HealthCheck = &ecsapi.HealthCheck{Command: []string{"CMD", "/tool", "check:/tmp/never"}, Interval: ptr(int32(1)), Retries: ptr(int32(100)), Timeout: ptr(int32(2))}
	db.StartTimeout = ptr(int32(3))
	app := cdef("app", "sleep:1h")
	app.DependsOn = []ecsapi.ContainerDependency{{ContainerName: ptr("db"), Condition: ptr(ecsapi.ContainerConditionHealthy)}}
	a := assignment("", db, app)
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	select {
	case <-r.Done():
	case <-time.After(40 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	tr := rec.last()
	c := container(tr, "app")
	if tr.StopCode != StopCodeFailedToStart || !strings.Contains(c.Reason, "timed out") || c.RuntimeID != "" {
		t.Errorf("stop %q %q; app %+v", tr.StopCode, tr.StoppedReason, c)
	}
	if slices.Contains(rec.statuses(), "RUNNING") {
		t.Errorf("task reached RUNNING: %v", rec.statuses())
	}
}

func TestDependsOnSuccessOrdering(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	initc := cdef("init", "sleep:1s", "exit:0")
	initc.Essential = ptr(false)
	app := cdef("app", "sleep:1h")
	app.DependsOn = []ecsapi.ContainerDependency{{ContainerName: ptr("init"), Condition: ptr(ecsapi.ContainerConditionSuccess)}}
	a := assignment("", initc, app)
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	rec.waitStatus(t, 30*time.Second, "RUNNING")
	ctx := context.Background()
	ii, err := d.InspectContainer(ctx, container(rec.last(), "init").RuntimeID)
	if err != nil {
		t.Fatal(err)
	}
	ai, err := d.InspectContainer(ctx, container(rec.last(), "app").RuntimeID)
	if err != nil {
		t.Fatal(err)
	}
	if !ai.StartedAt.After(ii.FinishedAt) {
		t.Errorf("app started %s, before init finished %s", ai.StartedAt, ii.FinishedAt)
	}
	r.Update(stopped(a))
	<-r.Done()
}

func TestDependsOnSuccessFails(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	initc := cdef("init", "exit:3")
	initc.Essential = ptr(false)
	app := cdef("app", "sleep:1h")
	app.DependsOn = []ecsapi.ContainerDependency{{ContainerName: ptr("init"), Condition: ptr(ecsapi.ContainerConditionSuccess)}}
	a := assignment("", initc, app)
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("not stopped; last %+v", rec.last())
	}
	tr := rec.last()
	if tr.StopCode != StopCodeFailedToStart || !strings.Contains(container(tr, "app").Reason, "did not exit successfully") {
		t.Errorf("stop %q %q; app %+v", tr.StopCode, tr.StoppedReason, container(tr, "app"))
	}
}

func TestHostAndNoneModes(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := newHarness(t, d, randHex(6), nil)
	for _, mode := range []ecsapi.NetworkMode{ecsapi.NetworkModeHost, ecsapi.NetworkModeNone} {
		a := assignment(mode, cdef("app", "sleep:1h"))
		rec := &recorder{}
		r := h.rt.NewRunner(a, rec.report)
		r.Update(a)
		tr := rec.waitStatus(t, 30*time.Second, "RUNNING")
		info, err := d.InspectContainer(context.Background(), container(tr, "app").RuntimeID)
		if err != nil {
			t.Fatal(err)
		}
		if info.NetworkMode != string(mode) {
			t.Errorf("%s: docker network mode %q", mode, info.NetworkMode)
		}
		r.Update(stopped(a))
		<-r.Done()
	}
}

func TestReattachAfterAgentRestart(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	inst := randHex(6)
	h1 := newHarness(t, d, inst, nil)
	a := assignment("", cdef("app", "term:0", "sleep:1h"))
	rec := &recorder{}
	r := h1.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitStatus(t, 30*time.Second, "RUNNING")
	id := container(tr, "app").RuntimeID
	h1.stop() // agent shutdown: the container keeps running

	info, err := d.InspectContainer(context.Background(), id)
	if err != nil || !info.Running {
		t.Fatalf("container after agent shutdown: running=%v err=%v", info.Running, err)
	}
	rec2 := &recorder{}
	h2 := newHarness(t, d, inst, nil)
	h2.rt.cfg.Report = rec2.report
	adopted, err := h2.rt.Adopt(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	r2, ok := adopted[a.TaskArn]
	if !ok || len(adopted) != 1 {
		t.Fatalf("adopted %v", adopted)
	}
	a.Version = 2 // the next sync
	r2.Update(a)
	tr = rec2.waitStatus(t, 30*time.Second, "RUNNING")
	if got := container(tr, "app").RuntimeID; got != id {
		t.Errorf("runtime id %s, want %s (not restarted)", got, id)
	}
	info2, _ := d.InspectContainer(context.Background(), id)
	if !info2.StartedAt.Equal(info.StartedAt) {
		t.Errorf("container restarted: %s -> %s", info.StartedAt, info2.StartedAt)
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

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func metadataHarness(t *testing.T, d *dockerdriver.Driver) *harness {
	// Stats as the agent serves them: the shared collector's samples.
	var md *metadata.Server
	col := taskstats.New(taskstats.Config{Sampler: d, Tasks: func() []metadata.Task { return md.Tasks() }})
	md = metadata.New(col.Stats, nil)
	t.Cleanup(func() { md.Close() })
	port := freePort(t)
	h := newHarness(t, d, randHex(6), md)
	h.rt.cfg.MetadataPort = port
	return h
}

func TestMetadataEndpointBridge(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := metadataHarness(t, d)
	probe := cdef("probe", "meta::\"Name\": \"probe\"", "meta:/task:TASKARN", "meta:/stats:memory_stats", "meta:/taskWithTags:\"LaunchType\": \"EC2\"")
	probe.Essential = ptr(false)
	a := assignment("", cdef("app", "sleep:1h"), probe)
	probe.Command[1] = "meta:/task:" + a.TaskArn
	a.TaskDefinition.ContainerDefinitions[1] = probe
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitFor(t, 40*time.Second, "probe exited", func(tr agentapi.TaskReport) bool { return container(tr, "probe").ExitCode != nil })
	if c := container(tr, "probe"); *c.ExitCode != 0 {
		t.Errorf("probe exit %d (the metadata endpoint did not answer as expected)", *c.ExitCode)
	}
	r.Update(stopped(a))
	<-r.Done()
}

func TestAwsvpcMode(t *testing.T) {
	t.Parallel()
	d := needDocker(t)
	h := metadataHarness(t, d)
	srv := cdef("srv", "serve:8080", "sleep:1h")
	srv.PortMappings = []ecsapi.PortMapping{{ContainerPort: ptr(int32(8080))}}
	cli := cdef("cli", "get:http://127.0.0.1:8080/", "meta:/task:\"NetworkMode\": \"awsvpc\"")
	cli.Essential = ptr(false)
	cli.DependsOn = []ecsapi.ContainerDependency{{ContainerName: ptr("srv"), Condition: ptr(ecsapi.ContainerConditionStart)}}
	a := assignment(ecsapi.NetworkModeAwsvpc, srv, cli)
	rec := &recorder{}
	r := h.rt.NewRunner(a, rec.report)
	r.Update(a)
	tr := rec.waitFor(t, 40*time.Second, "cli exited", func(tr agentapi.TaskReport) bool { return container(tr, "cli").ExitCode != nil })
	if c := container(tr, "cli"); *c.ExitCode != 0 {
		t.Errorf("cli exit %d: localhost or metadata unreachable", *c.ExitCode)
	}
	if tr.KnownStatus != "RUNNING" || len(tr.Attachments) != 1 {
		t.Fatalf("report %+v", tr)
	}
	att := tr.Attachments[0]
	details := map[string]string{}
	for _, kv := range att.Details {
		details[*kv.Name] = *kv.Value
	}
	if *att.Type != "ElasticNetworkInterface" || *att.Status != "ATTACHED" || details["subnetId"] != "berth-local" ||
		!strings.HasPrefix(details["privateIPv4Address"], "10.213.") || details["macAddress"] == "" {
		t.Errorf("attachment %+v %v", att, details)
	}
	c := container(tr, "srv")
	if len(c.NetworkInterfaces) != 1 || *c.NetworkInterfaces[0].PrivateIpv4Address != details["privateIPv4Address"] {
		t.Errorf("srv interfaces %+v", c.NetworkInterfaces)
	}
	r.Update(stopped(a))
	<-r.Done()
	if tr := rec.last(); *tr.Attachments[0].Status != "DELETED" {
		t.Errorf("attachment after stop: %s", *tr.Attachments[0].Status)
	}
}
