package scenario

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/dockerdriver"
)

// startAgent runs a real node agent (Docker behind it) against s.
func startAgent(t *testing.T, s *berthtest.Server, az string) *daemon.Agent {
	t.Helper()
	tok, err := s.Daemon.JoinToken(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	mdAddr := l.Addr().String()
	l.Close()
	a, err := daemon.StartAgent(context.Background(), daemon.AgentConfig{
		Endpoint: s.Endpoint, Region: s.Region, DataDir: t.TempDir(), JoinToken: tok,
		AvailabilityZone: az, MetadataAddr: mdAddr, StopTimeout: 5 * time.Second, Version: "test",
		// Test images are built locally; never reach for a registry
		// outside this machine.
		PullBehavior: dockerdriver.PullPreferCached,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		berthtest.RemoveAgentContainers(t, a.State().ContainerInstanceArn)
	})
	select {
	case <-a.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
	return a
}

func toolTaskDef(family string, essentialArgs []string, extra ...types.ContainerDefinition) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: append([]types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(berthtest.ToolImage), Memory: aws.Int32(64),
			Command: essentialArgs, StopTimeout: aws.Int32(3),
		}}, extra...),
	}
}

// waitTask polls DescribeTasks until f holds (as the CLI waiters do, but
// faster).
func waitTask(t *testing.T, c *ecs.Client, cluster, taskARN string, within time.Duration, f func(types.Task) bool) types.Task {
	t.Helper()
	deadline := time.Now().Add(berthtest.Scale(within))
	var last types.Task
	for time.Now().Before(deadline) {
		d, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{taskARN}})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Tasks) == 1 {
			last = d.Tasks[0]
			if f(last) {
				return last
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("task %s: condition not met within %s; last: status %s desired %s stopCode %s reason %q",
		taskARN, within, aws.ToString(last.LastStatus), aws.ToString(last.DesiredStatus), last.StopCode, aws.ToString(last.StoppedReason))
	return last
}

func runOne(t *testing.T, c *ecs.Client, family string) string {
	t.Helper()
	r, err := c.RunTask(context.Background(), &ecs.RunTaskInput{TaskDefinition: aws.String(family)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) > 0 || len(r.Tasks) != 1 {
		var reasons []string
		for _, f := range r.Failures {
			reasons = append(reasons, aws.ToString(f.Arn)+": "+aws.ToString(f.Reason)+" "+aws.ToString(f.Detail))
		}
		t.Fatalf("RunTask: %d tasks, failures %v", len(r.Tasks), reasons)
	}
	return aws.ToString(r.Tasks[0].TaskArn)
}

// TestTasksOnDocker runs tasks through RunTask on a real agent and Docker:
// the happy path and ECS's failure paths.
func TestTasksOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	startAgent(t, s, "us-east-1a")
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := context.Background()

	for family, in := range map[string]*ecs.RegisterTaskDefinitionInput{
		"sleeper": toolTaskDef("sleeper", []string{"term:0s:0", "sleep:1h"}),
		"exits":   toolTaskDef("exits", []string{"sleep:300ms", "exit:3"}),
		"missing": {Family: aws.String("missing"), ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String("127.0.0.1:1/berth/nope:latest"), Memory: aws.Int32(32)}}},
	} {
		if _, err := c.RegisterTaskDefinition(cx, in); err != nil {
			t.Fatalf("%s: %v", family, err)
		}
	}

	t.Run("runs and stops by user", func(t *testing.T) {
		arn := runOne(t, c, "sleeper")
		task := waitTask(t, c, "default", arn, 60*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" })
		if task.StartedAt == nil || task.PullStartedAt == nil || len(task.Containers) != 1 || aws.ToString(task.Containers[0].RuntimeId) == "" {
			t.Fatalf("running task lacks fields: %+v", task)
		}
		if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(arn), Reason: aws.String("done here")}); err != nil {
			t.Fatal(err)
		}
		task = waitTask(t, c, "default", arn, 30*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
		if task.StopCode != types.TaskStopCodeUserInitiated || aws.ToString(task.StoppedReason) != "done here" || task.StoppedAt == nil || task.StoppingAt == nil {
			t.Fatalf("stopped task: %s %q", task.StopCode, aws.ToString(task.StoppedReason))
		}
	})
	t.Run("essential container exits", func(t *testing.T) {
		arn := runOne(t, c, "exits")
		task := waitTask(t, c, "default", arn, 60*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
		if task.StopCode != types.TaskStopCodeEssentialContainerExited || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 3 {
			t.Fatalf("got stopCode %s exit %v reason %q", task.StopCode, task.Containers[0].ExitCode, aws.ToString(task.StoppedReason))
		}
	})
	t.Run("image that cannot be pulled", func(t *testing.T) {
		arn := runOne(t, c, "missing")
		task := waitTask(t, c, "default", arn, 60*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
		if task.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.HasPrefix(aws.ToString(task.StoppedReason), "CannotPullContainerError") {
			t.Fatalf("got stopCode %s reason %q", task.StopCode, aws.ToString(task.StoppedReason))
		}
	})
	t.Run("bad overrides", func(t *testing.T) {
		_, err := c.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String("sleeper"),
			Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("ghost")}}}})
		wantCode(t, err, "InvalidParameterException")
	})
}

// TestAgentKill9ReattachesAndWaitersWork kills a `berth agent` process with
// SIGKILL while its task runs: the container keeps running, the restarted
// agent re-attaches to it (same container, not restarted), and the AWS
// CLIs' tasks-running / tasks-stopped waiters succeed.
func TestAgentKill9ReattachesAndWaitersWork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	clis := berthtest.CLIs(t)
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := context.Background()
	tok, err := s.Daemon.JoinToken(cx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	md := berthtest.FreeAddr(t)
	startAgentProcess := func(token string) *exec.Cmd {
		cmd := exec.Command(berthtest.Binary(t), "agent", "--endpoint", s.Endpoint, "--data-dir", dir,
			"--join-token", token, "--metadata-addr", md, "--image-pull-behavior", "prefer-cached", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := berthtest.StartCommand(cmd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	agentProc := startAgentProcess(tok)
	t.Cleanup(func() {
		if st, err := agent.LoadState(dir); err == nil {
			berthtest.RemoveAgentContainers(t, st.ContainerInstanceArn)
		}
	})
	if _, err := c.RegisterTaskDefinition(cx, toolTaskDef("survivor", []string{"term:0s:0", "sleep:1h"})); err != nil {
		t.Fatal(err)
	}
	// The instance must be connected before placement can use it.
	deadline := time.Now().Add(berthtest.Scale(20 * time.Second))
	var arn string
	for arn == "" {
		r, err := c.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String("survivor")})
		if apiCode(err) == "ClusterNotFoundException" && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond) // the agent has not joined yet
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Tasks) == 1 {
			arn = aws.ToString(r.Tasks[0].TaskArn)
		} else if time.Now().After(deadline) {
			t.Fatalf("RunTask failures: %+v", r.Failures)
		} else {
			time.Sleep(200 * time.Millisecond)
		}
	}
	_, errOut, code := clis[0].Run(t, s, "ecs", "wait", "tasks-running", "--cluster", "default", "--tasks", arn)
	if code != 0 {
		t.Fatalf("wait tasks-running: %s", errOut)
	}
	before := waitTask(t, c, "default", arn, 5*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" })
	runtimeID := aws.ToString(before.Containers[0].RuntimeId)

	agentProc.Process.Signal(syscall.SIGKILL)
	agentProc.Wait()
	drv, err := dockerdriver.New(dockerdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Close()
	info, err := drv.InspectContainer(cx, runtimeID)
	if err != nil || !info.Running {
		t.Fatalf("container did not survive the agent's death: %v %+v", err, info)
	}

	startAgentProcess("") // identity comes from the state directory
	time.Sleep(2 * time.Second)
	after := waitTask(t, c, "default", arn, 20*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" })
	if aws.ToString(after.Containers[0].RuntimeId) != runtimeID {
		t.Fatalf("task restarted: container %s became %s", runtimeID, aws.ToString(after.Containers[0].RuntimeId))
	}
	if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = clis[len(clis)-1].Run(t, s, "ecs", "wait", "tasks-stopped", "--cluster", "default", "--tasks", arn)
	if code != 0 {
		t.Fatalf("wait tasks-stopped: %s", errOut)
	}
	final := waitTask(t, c, "default", arn, 5*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
	if aws.ToString(final.StoppedReason) != "Task stopped by user" {
		t.Fatalf("reason %q", aws.ToString(final.StoppedReason))
	}
}

// TestTaskPullsFromBerthRegistry pushes the test image into Berth's own
// registry (ECR API + docker push) and runs a task from it with pull
// behaviour "always": the agent gets the credentials itself.
func TestTaskPullsFromBerthRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	cx := context.Background()
	host := strings.TrimPrefix(s.Endpoint, "http://")
	repo, err := ecrsdk.NewFromConfig(s.AWSConfig()).CreateRepository(cx, &ecrsdk.CreateRepositoryInput{RepositoryName: aws.String("team/tool")})
	if err != nil {
		t.Fatal(err)
	}
	uri := aws.ToString(repo.Repository.RepositoryUri)
	if !strings.HasPrefix(uri, host+"/") {
		t.Fatalf("repositoryUri %s is not on the listener %s", uri, host)
	}
	tok, err := ecrsdk.NewFromConfig(s.AWSConfig()).GetAuthorizationToken(cx, &ecrsdk.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(tok.AuthorizationData[0].AuthorizationToken))
	_, password, _ := strings.Cut(string(raw), ":")
	cfgDir := t.TempDir()
	docker := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.Command("docker", args...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+cfgDir)
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
	}
	ref := uri + ":v1"
	docker(password, "login", "-u", "AWS", "--password-stdin", host)
	docker("", "tag", berthtest.ToolImage, ref)
	docker("", "push", ref)
	docker("", "rmi", ref) // the agent must pull it back

	tokJoin, err := s.Daemon.JoinToken(cx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a, err := daemon.StartAgent(cx, daemon.AgentConfig{Endpoint: s.Endpoint, Region: s.Region, DataDir: t.TempDir(),
		JoinToken: tokJoin, MetadataAddr: berthtest.FreeAddr(t), PullBehavior: dockerdriver.PullAlways, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(); berthtest.RemoveAgentContainers(t, a.State().ContainerInstanceArn) }()
	<-a.Ready()
	c := ecs.NewFromConfig(s.AWSConfig())
	in := toolTaskDef("from-registry", []string{"term:0s:0", "sleep:1h"})
	in.ContainerDefinitions[0].Image = aws.String(ref)
	if _, err := c.RegisterTaskDefinition(cx, in); err != nil {
		t.Fatal(err)
	}
	arn := runOne(t, c, "from-registry")
	task := waitTask(t, c, "default", arn, 60*time.Second, func(x types.Task) bool {
		return aws.ToString(x.LastStatus) != "PROVISIONING" && aws.ToString(x.LastStatus) != "PENDING" && aws.ToString(x.LastStatus) != "ACTIVATING"
	})
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Fatalf("task from Berth's registry: %s %s %q", aws.ToString(task.LastStatus), task.StopCode, aws.ToString(task.StoppedReason))
	}
	c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(arn)})
	waitTask(t, c, "default", arn, 30*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
	docker("", "rmi", "-f", ref)
}

// TestServerKill9WhileTasksRun kills the control plane with SIGKILL while
// an agent runs a task; after the restart the agent resumes its stream, the
// task is still RUNNING (same container) and can be stopped.
func TestServerKill9WhileTasksRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	berthtest.NeedDocker(t)
	dir := t.TempDir()
	addr := berthtest.FreeAddr(t)
	p := berthtest.StartProcessAt(t, addr, "server", dir, nil, "--throttle=false")
	cx := context.Background()
	tok, err := agentgw.CreateJoinToken(cx, p.Endpoint, p.Region, p.Creds.AccessKeyID, p.Creds.SecretAccessKey, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a, err := daemon.StartAgent(cx, daemon.AgentConfig{Endpoint: p.Endpoint, Region: p.Region, DataDir: t.TempDir(),
		JoinToken: tok.Token, MetadataAddr: berthtest.FreeAddr(t), PullBehavior: dockerdriver.PullPreferCached, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close(); berthtest.RemoveAgentContainers(t, a.State().ContainerInstanceArn) }()
	<-a.Ready()
	c := ecs.NewFromConfig(p.AWSConfig())
	if _, err := c.RegisterTaskDefinition(cx, toolTaskDef("steady", []string{"term:0s:0", "sleep:1h"})); err != nil {
		t.Fatal(err)
	}
	arn := runOne(t, c, "steady")
	before := waitTask(t, c, "default", arn, 60*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" })

	p.Kill9()
	p2 := berthtest.StartProcessAt(t, addr, "server", dir, nil, "--throttle=false")
	c2 := ecs.NewFromConfig(p2.AWSConfig())
	after := waitTask(t, c2, "default", arn, 10*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" })
	if aws.ToString(after.Containers[0].RuntimeId) != aws.ToString(before.Containers[0].RuntimeId) {
		t.Fatal("task restarted across a server restart")
	}
	// The agent is connected again and acts on new desired state.
	if _, err := c2.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	waitTask(t, c2, "default", arn, 30*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
}
