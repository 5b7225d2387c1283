package taskrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/dockerdriver"
	"github.com/berthdev/berth/internal/metadata"
	"github.com/berthdev/berth/internal/testimage"
)

// toolImage is the test image (internal/testimage).
const toolImage = testimage.Tool

// testLabel marks every container the tests make.
const testLabel = "berth.test"

var (
	dockerOnce sync.Once
	dockerErr  error
)

// needDocker returns a Driver with the test image loaded, or skips the
// test when Docker does not answer (unless BERTH_REQUIRE_DOCKER=1).
func needDocker(t *testing.T) *dockerdriver.Driver {
	t.Helper()
	dockerOnce.Do(func() { dockerErr = prepareDocker() })
	if dockerErr != nil {
		if os.Getenv("BERTH_REQUIRE_DOCKER") == "1" {
			t.Fatalf("docker: %v", dockerErr)
		}
		t.Skipf("docker not available: %v", dockerErr)
	}
	d, err := dockerdriver.New(dockerdriver.Config{Timeouts: dockerdriver.Timeouts{StopGrace: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func prepareDocker() error {
	d, err := dockerdriver.New(dockerdriver.Config{})
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := d.Ping(pctx); err != nil {
		return err
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	return testimage.BuildTool(ctx, cli)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// harness is a Runtime with its event loop, for one test.
type harness struct {
	t    *testing.T
	d    *dockerdriver.Driver
	rt   *Runtime
	md   *metadata.Server
	inst string
	stop context.CancelFunc
}

func newHarness(t *testing.T, d *dockerdriver.Driver, inst string, md *metadata.Server, opts ...func(*Config)) *harness {
	t.Helper()
	cfg := Config{Driver: d, InstanceID: inst, InstanceARN: "arn:aws:ecs:us-east-1:000000000000:container-instance/test/" + inst,
		ClusterARN: "arn:aws:ecs:us-east-1:000000000000:cluster/test", PullBehavior: dockerdriver.PullPreferCached,
		DefaultStopTimeout: 2 * time.Second, ContainerStartTimeout: 20 * time.Second, PollInterval: 200 * time.Millisecond,
		Metadata: md, Labels: map[string]string{testLabel: "1"}, CleanupWait: time.Hour,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(&cfg)
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.Run(ctx) }()
	h := &harness{t: t, d: d, rt: rt, md: md, inst: inst}
	h.stop = func() { cancel(); <-done; rt.Close() }
	t.Cleanup(h.stop)
	t.Cleanup(func() { removeTestContainers(d, h.rt.cfg.InstanceARN) })
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func removeTestContainers(d *dockerdriver.Driver, inst string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := d.ListContainers(ctx, dockerdriver.ListOptions{All: true, Labels: map[string]string{dockerdriver.LabelInstance: inst}})
	if err != nil {
		return
	}
	for _, c := range cs {
		_ = d.RemoveContainer(ctx, c.ID, dockerdriver.RemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// recorder collects a runner's reports.
type recorder struct {
	mu      sync.Mutex
	reports []agentapi.TaskReport
}

func (r *recorder) report(tr agentapi.TaskReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, tr)
}

func (r *recorder) last() agentapi.TaskReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reports) == 0 {
		return agentapi.TaskReport{}
	}
	return r.reports[len(r.reports)-1]
}

func (r *recorder) statuses() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, tr := range r.reports {
		if len(out) == 0 || out[len(out)-1] != tr.KnownStatus {
			out = append(out, tr.KnownStatus)
		}
	}
	return out
}

// waitFor polls the last report until ok holds.
func (r *recorder) waitFor(t *testing.T, within time.Duration, what string, ok func(agentapi.TaskReport) bool) agentapi.TaskReport {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		last := r.last()
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report with %s within %s; last: %+v", what, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *recorder) waitStatus(t *testing.T, within time.Duration, status string) agentapi.TaskReport {
	t.Helper()
	return r.waitFor(t, within, "status "+status, func(tr agentapi.TaskReport) bool { return tr.KnownStatus == status })
}

func container(tr agentapi.TaskReport, name string) agentapi.ContainerReport {
	for _, c := range tr.Containers {
		if c.Name == name {
			return c
		}
	}
	return agentapi.ContainerReport{}
}

// cdef is a container definition running the tool with steps.
func cdef(name string, steps ...string) ecsapi.ContainerDefinition {
	return ecsapi.ContainerDefinition{Name: ptr(name), Image: ptr(toolImage), Command: steps}
}

// assignment makes a RUNNING assignment of a new task.
func assignment(mode ecsapi.NetworkMode, cds ...ecsapi.ContainerDefinition) agentapi.Assignment {
	id := randHex(16)
	td := &ecsapi.TaskDefinition{Family: ptr("trtest"), Revision: ptr(int32(1)), ContainerDefinitions: cds}
	if mode != "" {
		td.NetworkMode = &mode
	}
	return agentapi.Assignment{TaskArn: "arn:aws:ecs:us-east-1:000000000000:task/test/" + id, TaskID: id,
		ClusterArn: "arn:aws:ecs:us-east-1:000000000000:cluster/test", DesiredStatus: "RUNNING", Version: 1,
		TaskDefinition: td, CreatedAt: time.Now()}
}

func stopped(a agentapi.Assignment) agentapi.Assignment {
	a.DesiredStatus, a.Version, a.StopCode, a.StoppedReason = "STOPPED", a.Version+1, "UserInitiated", "Task stopped by user"
	return a
}
