//go:build disruptive

package disruptive

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/berthtest"
)

const dockerdLog = "/var/log/berth-dockerd.log"

// findDockerd returns the pid and command line of the running dockerd, a
// plain process on this machine (no systemd).
func findDockerd(t *testing.T) (int, []string) {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
			continue
		}
		raw, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		return pid, strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	}
	return 0, nil
}

func dockerAnswers(timeout time.Duration) error {
	dc, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = dc.Ping(ctx, client.PingOptions{})
	return err
}

func waitDocker(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := dockerAnswers(2 * time.Second)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("Docker Engine not answering after %s: %w", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startDockerd(argv []string) error {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	sh := "setsid nohup " + strings.Join(quoted, " ") + " >>" + dockerdLog + " 2>&1 </dev/null &"
	return exec.Command("sh", "-c", sh).Run()
}

// restartDockerd stops dockerd with SIGTERM, waits for it to exit, starts
// it again the way it was started, and waits until it answers.
func restartDockerd(t *testing.T, pid int, argv []string) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM dockerd: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("dockerd %d still alive 60s after SIGTERM", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := startDockerd(argv); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	if err := waitDocker(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDockerRestartUnderAgent restarts Docker Engine while the agent runs a
// task. Afterwards the agent must use the new engine (a new task reaches
// RUNNING) and the old task must be reported as it truly is: without
// live-restore its container died with the engine, so it is STOPPED with
// the container's exit code, not stuck RUNNING; with live-restore it is
// RUNNING on the same, still running, container. Nothing is lost: every
// task ends RUNNING with a running container or STOPPED with a reason.
func TestDockerRestartUnderAgent(t *testing.T) {
	berthtest.NeedDocker(t)
	pid, argv := findDockerd(t)
	// Under BERTH_REQUIRE_DOCKER (make test, CI) what this test needs must
	// be there: it fails rather than skips.
	skip := t.Skip
	if os.Getenv("BERTH_REQUIRE_DOCKER") == "1" {
		skip = t.Fatal
	}
	if pid == 0 {
		skip("no dockerd process to restart on this machine")
	}
	if os.Geteuid() != 0 {
		skip("restarting dockerd needs root")
	}
	// Whatever happens below, leave Docker Engine running.
	t.Cleanup(func() {
		if dockerAnswers(5*time.Second) == nil {
			return
		}
		if p, _ := findDockerd(t); p == 0 {
			startDockerd(argv)
		}
		if err := waitDocker(60 * time.Second); err != nil {
			t.Errorf("Docker Engine left down: %v", err)
		}
	})
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	cx := context.Background()
	info, err := dc.Info(cx, client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	liveRestore := info.Info.LiveRestoreEnabled

	s := berthtest.Start(t, nil)
	startAgent(t, s, "us-east-1a")
	c := ecs.NewFromConfig(s.AWSConfig())
	// The tool exits 7 on SIGTERM: dockerd's shutdown signal shows as 7.
	if _, err := c.RegisterTaskDefinition(cx, toolTaskDef("victim", []string{"term:0s:7", "sleep:1h"})); err != nil {
		t.Fatal(err)
	}
	oldARN := runOne(t, c, "victim")
	old := waitTask(t, c, oldARN, 60*time.Second, running)
	oldContainer := aws.ToString(old.Containers[0].RuntimeId)

	began := time.Now()
	restartDockerd(t, pid, argv)
	t.Logf("dockerd restarted in %s (live-restore %v)", time.Since(began).Round(time.Millisecond), liveRestore)

	// The agent reconnects to the new engine: a new task runs.
	newARN := runOne(t, c, "victim")
	waitTask(t, c, newARN, 60*time.Second, running)

	// The old task tells the truth.
	in, err := dc.ContainerInspect(cx, oldContainer, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect the old task's container: %v", err)
	}
	if liveRestore {
		if in.Container.State == nil || !in.Container.State.Running {
			t.Fatalf("live-restore is on but the old container is not running: %+v", in.Container.State)
		}
		got := waitTask(t, c, oldARN, 10*time.Second, running)
		if aws.ToString(got.Containers[0].RuntimeId) != oldContainer {
			t.Fatalf("old task moved to container %s", aws.ToString(got.Containers[0].RuntimeId))
		}
	} else {
		if in.Container.State == nil || in.Container.State.Running {
			t.Fatalf("live-restore is off but the old container still runs")
		}
		got := waitTask(t, c, oldARN, 60*time.Second, stopped)
		t.Logf("old task: %s", describe(got))
		if got.StopCode == "" || aws.ToString(got.StoppedReason) == "" {
			t.Fatalf("old task stopped without a code or reason: %s", describe(got))
		}
		if ec := got.Containers[0].ExitCode; ec == nil || int(*ec) != in.Container.State.ExitCode {
			t.Fatalf("old task's container exit %v, Docker says %d", aws.ToInt32(ec), in.Container.State.ExitCode)
		}
		if in.Container.State.ExitCode != 7 {
			t.Logf("note: the old container exited %d (SIGTERM from dockerd gives 7)", in.Container.State.ExitCode)
		}
	}

	// Nothing lost: every task is RUNNING on a running container or
	// STOPPED with a reason.
	checkTruth(t, c, dc, []string{oldARN, newARN})

	for _, a := range []string{oldARN, newARN} {
		c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(a)})
	}
	for _, a := range []string{oldARN, newARN} {
		waitTask(t, c, a, 30*time.Second, stopped)
	}
}

// checkTruth asserts every task is RUNNING with all containers running in
// Docker, or STOPPED with a stop code and reason.
func checkTruth(t *testing.T, c *ecs.Client, dc *client.Client, arns []string) {
	t.Helper()
	cx := context.Background()
	d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: arns})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tasks) != len(arns) {
		t.Fatalf("described %d of %d tasks (failures %+v)", len(d.Tasks), len(arns), d.Failures)
	}
	for _, x := range d.Tasks {
		switch aws.ToString(x.LastStatus) {
		case "RUNNING":
			for _, ct := range x.Containers {
				in, err := dc.ContainerInspect(cx, aws.ToString(ct.RuntimeId), client.ContainerInspectOptions{})
				if err != nil || in.Container.State == nil || !in.Container.State.Running {
					t.Errorf("task %s RUNNING but container %s is not: %v", aws.ToString(x.TaskArn), aws.ToString(ct.RuntimeId), err)
				}
			}
		case "STOPPED":
			if x.StopCode == "" || aws.ToString(x.StoppedReason) == "" {
				t.Errorf("task %s STOPPED without code or reason: %s", aws.ToString(x.TaskArn), describe(x))
			}
		default:
			t.Errorf("task %s in between: %s", aws.ToString(x.TaskArn), describe(x))
		}
	}
}
