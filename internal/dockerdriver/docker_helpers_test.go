package dockerdriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/testimage"
)

// toolImage is the test image (internal/testimage).
const toolImage = testimage.Tool

// testLabel marks every container the tests make, for cleanup.
const testLabel = "berth.test"

var (
	dockerOnce sync.Once
	dockerErr  error
)

// needDocker returns a Driver on the local daemon, with the test image
// built. It skips the test when the daemon does not answer, unless
// BERTH_REQUIRE_DOCKER=1.
func needDocker(t *testing.T) *Driver {
	t.Helper()
	dockerOnce.Do(func() { dockerErr = prepareDocker() })
	if dockerErr != nil {
		if os.Getenv("BERTH_REQUIRE_DOCKER") == "1" {
			t.Fatalf("docker: %v", dockerErr)
		}
		t.Skipf("docker not available: %v", dockerErr)
	}
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func prepareDocker() error {
	d, err := New(Config{})
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
	return testimage.BuildTool(ctx, d.cli)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testTask is a task for one test, with a unique ARN.
func testTask(t *testing.T) TaskInfo {
	id := randHex(16)
	return TaskInfo{Cluster: "arn:aws:ecs:us-east-1:000000000000:cluster/test", Family: "test",
		Revision: 1, TaskARN: "arn:aws:ecs:us-east-1:000000000000:task/test/" + id,
		Instance: "arn:aws:ecs:us-east-1:000000000000:container-instance/test/" + randHex(8)}
}

// runContainer translates cd for task, creates the container (removed at
// the end of the test) and, if start, starts it.
func runContainer(t *testing.T, d *Driver, task TaskInfo, cd ecsapi.ContainerDefinition, opts Options, start bool) string {
	t.Helper()
	if cd.Image == nil {
		cd.Image = ptr(toolImage)
	}
	opts.Labels = map[string]string{testLabel: "1"}
	cfg, host, netCfg, err := ContainerConfig(task, cd, opts)
	if err != nil {
		t.Fatalf("ContainerConfig: %v", err)
	}
	ctx := context.Background()
	id, err := d.CreateContainer(ctx, DockerName(task, deref(cd.Name)), cfg, host, netCfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.RemoveContainer(ctx, id, RemoveOptions{Force: true, RemoveVolumes: true})
	})
	if start {
		if err := d.StartContainer(ctx, id); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
	}
	return id
}

// waitExited polls until the container is no longer running.
func waitExited(t *testing.T, d *Driver, id string, within time.Duration) ContainerInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		info, err := d.InspectContainer(context.Background(), id)
		if err != nil {
			t.Fatalf("InspectContainer: %v", err)
		}
		if !info.Running && info.Status != "created" {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %s after %s", id, info.Status, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEvent reads events until one satisfies ok.
func waitEvent(t *testing.T, evs <-chan Event, errc <-chan error, within time.Duration, ok func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case e, open := <-evs:
			if !open {
				t.Fatalf("event stream ended: %v", <-errc)
			}
			if ok(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no matching event within %s", within)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func steps(s ...string) []string { return s }

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
