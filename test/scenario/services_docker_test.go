package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/dockerdriver"
)

// Service scenarios on REAL Docker: real agents (in-process
// daemon.StartAgent or `berth agent` processes) run the service's
// containers; everything is driven through the AWS SDK for Go v2. The
// scheduler-logic variants on hollow nodes are in services_test.go.

// dockerSvcEnv is a control plane, an ECS client and a Docker client.
type dockerSvcEnv struct {
	t      *testing.T
	ecs    *ecs.Client
	docker *dockerdriver.Driver
	// suffix makes task definition families unique on this Docker host, so
	// that containers can be counted by the family label.
	suffix string
}

func newDockerSvcEnv(t *testing.T, c *ecs.Client) *dockerSvcEnv {
	t.Helper()
	drv, err := dockerdriver.New(dockerdriver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	return &dockerSvcEnv{t: t, ecs: c, docker: drv, suffix: fmt.Sprintf("%06d", rand.IntN(1000000))}
}

// family is a task definition family unique to this test run.
func (e *dockerSvcEnv) family(name string) string { return name + "-" + e.suffix }

// register registers a tool-image task definition (stopTimeout 2 s) and
// returns its ARN.
func (e *dockerSvcEnv) register(name string, args []string, mod ...func(*types.ContainerDefinition)) string {
	e.t.Helper()
	in := toolTaskDef(e.family(name), args)
	in.ContainerDefinitions[0].StopTimeout = aws.Int32(2)
	for _, m := range mod {
		m(&in.ContainerDefinitions[0])
	}
	out, err := e.ecs.RegisterTaskDefinition(context.Background(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// containers lists the running containers of a family's tasks.
func (e *dockerSvcEnv) containers(name string) ([]dockerdriver.ContainerSummary, error) {
	return e.docker.ListContainers(context.Background(), dockerdriver.ListOptions{
		Labels: map[string]string{dockerdriver.LabelECSTaskFamily: e.family(name)}})
}

// removeFamilyContainers force-removes whatever the test left behind
// (containers of killed agents keep running).
func (e *dockerSvcEnv) removeFamilyContainers(names ...string) {
	for _, n := range names {
		cs, _ := e.docker.ListContainers(context.Background(), dockerdriver.ListOptions{All: true,
			Labels: map[string]string{dockerdriver.LabelECSTaskFamily: e.family(n)}})
		for _, c := range cs {
			e.docker.RemoveContainer(context.Background(), c.ID, dockerdriver.RemoveOptions{Force: true})
		}
	}
}

func (e *dockerSvcEnv) describe(name string) (types.Service, error) {
	out, err := e.ecs.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Services: []string{name}})
	if err != nil {
		return types.Service{}, err
	}
	if len(out.Services) != 1 {
		return types.Service{}, fmt.Errorf("describe %s: %+v", name, out.Failures)
	}
	return out.Services[0], nil
}

func (e *dockerSvcEnv) mustDescribe(name string) types.Service {
	e.t.Helper()
	svc, err := e.describe(name)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

// waitStable is `aws ecs wait services-stable` (one deployment, running ==
// desired) polled every 100 ms instead of 15 s. API errors are tolerated
// (the server may be restarting).
func (e *dockerSvcEnv) waitStable(name string, within time.Duration) types.Service {
	e.t.Helper()
	within = berthtest.Scale(within)
	deadline := time.Now().Add(within)
	var svc types.Service
	var err error
	for {
		svc, err = e.describe(name)
		if err == nil && len(svc.Deployments) == 1 && svc.RunningCount == svc.DesiredCount && aws.ToString(svc.Status) == "ACTIVE" {
			return svc
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(svc, "", " ")
			e.t.Fatalf("service %s not stable after %s (err %v):\n%s", name, within, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tasks describes the service's tasks, desired RUNNING and STOPPED.
func (e *dockerSvcEnv) tasks(name string) ([]types.Task, error) {
	cx := context.Background()
	// A task may move from the RUNNING list to the STOPPED one between
	// the two calls: count it once.
	var arns []string
	seen := map[string]bool{}
	for _, ds := range []types.DesiredStatus{types.DesiredStatusRunning, types.DesiredStatusStopped} {
		p := ecs.NewListTasksPaginator(e.ecs, &ecs.ListTasksInput{ServiceName: aws.String(name), DesiredStatus: ds})
		for p.HasMorePages() {
			out, err := p.NextPage(cx)
			if err != nil {
				return nil, err
			}
			for _, a := range out.TaskArns {
				if !seen[a] {
					seen[a] = true
					arns = append(arns, a)
				}
			}
		}
	}
	var tasks []types.Task
	for len(arns) > 0 {
		n := min(len(arns), 100)
		out, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: arns[:n]})
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, out.Tasks...)
		arns = arns[n:]
	}
	return tasks, nil
}

// liveTasks are the service's tasks desired and observed RUNNING.
func liveTasks(ts []types.Task) []types.Task {
	var out []types.Task
	for _, tk := range ts {
		if aws.ToString(tk.DesiredStatus) == "RUNNING" && aws.ToString(tk.LastStatus) == "RUNNING" {
			out = append(out, tk)
		}
	}
	return out
}

// boundsSampler samples, until stopped, that a service's tasks stay within
// its deployment bounds, from three sources: DescribeServices (running +
// pending <= maxTasks), DescribeTasks (not STOPPED <= maxTasks; desired and
// observed RUNNING, and HEALTHY for the healthChecked task definitions,
// >= minHealthy) and Docker (running containers of the
// families <= maxTasks, and >= minHealthy). Failed API calls (a server
// being restarted) are skipped; Docker keeps being sampled.
type boundsSampler struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples map[string]int
	maxSeen map[string]int
	minSeen map[string]int
	errs    []string
}

func (e *dockerSvcEnv) sampleBounds(name string, families []string, minHealthy, maxTasks int, healthChecked ...string) *boundsSampler {
	b := &boundsSampler{done: make(chan struct{}), samples: map[string]int{}, maxSeen: map[string]int{}, minSeen: map[string]int{}}
	record := func(src string, n int, checkMin bool) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.minSeen[src]; !ok || n < b.minSeen[src] {
			b.minSeen[src] = n
		}
		b.samples[src]++
		b.maxSeen[src] = max(b.maxSeen[src], n)
		if n > maxTasks {
			b.errs = append(b.errs, fmt.Sprintf("%s: %d tasks > maximum %d at %s", src, n, maxTasks, time.Now().Format("15:04:05.000")))
		}
		if checkMin && n < minHealthy {
			b.errs = append(b.errs, fmt.Sprintf("%s: %d healthy < minimum %d at %s", src, n, minHealthy, time.Now().Format("15:04:05.000")))
		}
	}
	loop := func(f func()) {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for {
				select {
				case <-b.done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				f()
			}
		}()
	}
	loop(func() {
		running := 0
		for _, f := range families {
			cs, err := e.containers(f)
			if err != nil {
				return
			}
			running += len(cs)
		}
		record("docker", running, false)
		// A running container may belong to a task being stopped, so
		// Docker bounds healthy tasks from above only; its count must
		// still never drop below the minimum.
		if running < minHealthy {
			record("docker-min", running, true)
		}
	})
	loop(func() {
		svc, err := e.describe(name)
		if err != nil {
			return
		}
		record("DescribeServices running+pending", int(svc.RunningCount+svc.PendingCount), false)
	})
	loop(func() {
		ts, err := e.tasks(name)
		if err != nil {
			return
		}
		notStopped := 0
		for _, tk := range ts {
			if aws.ToString(tk.LastStatus) != "STOPPED" {
				notStopped++
			}
		}
		record("DescribeTasks not STOPPED", notStopped, false)
		healthy := 0
		for _, tk := range liveTasks(ts) {
			if tk.HealthStatus != types.HealthStatusUnhealthy &&
				(!slices.Contains(healthChecked, aws.ToString(tk.TaskDefinitionArn)) || tk.HealthStatus == types.HealthStatusHealthy) {
				healthy++
			}
		}
		record("DescribeTasks healthy", healthy, true)
	})
	return b
}

// stop ends sampling and fails the test on a violation.
func (b *boundsSampler) stop(t *testing.T) {
	t.Helper()
	close(b.done)
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.errs {
		t.Error(s)
	}
	for src, n := range b.samples {
		if !strings.HasSuffix(src, "-min") && n < 3 {
			t.Errorf("%s: only %d samples", src, n)
		}
	}
	t.Logf("bounds samples %v; max seen %v; min seen %v", b.samples, b.maxSeen, b.minSeen)
}

// startAgentProcess runs `berth agent` against endpoint (a new join when
// token is set, else re-using the identity in dir).
func startAgentProcess(t *testing.T, endpoint, dir, token, md, az string) *exec.Cmd {
	t.Helper()
	args := []string{"agent", "--endpoint", endpoint, "--data-dir", dir, "--metadata-addr", md,
		"--image-pull-behavior", "prefer-cached", "--stop-timeout", "2s", "--log-level", "warn"}
	if token != "" {
		args = append(args, "--join-token", token)
	}
	if az != "" {
		args = append(args, "--availability-zone", az)
	}
	cmd := exec.Command(berthtest.Binary(t), args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := berthtest.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// freeAnyAddr is a free port on every interface, as "0.0.0.0:PORT" (the
// listener's own Addr() reads "[::]:PORT").
func freeAnyAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("0.0.0.0:%d", l.Addr().(*net.TCPAddr).Port)
}

func instanceCount(t *testing.T, c *ecs.Client) int {
	out, err := c.ListContainerInstances(context.Background(), &ecs.ListContainerInstancesInput{Status: types.ContainerInstanceStatusActive})
	if err != nil {
		return 0
	}
	return len(out.ContainerInstanceArns)
}

// TestServiceLifecycleOnDocker: create, scale, rolling update within the
// bounds, force new deployment, self-healing after `docker kill`, circuit
// breaker with rollback (image that cannot be pulled, container that exits
// at once), a DAEMON service across two zones, delete --force; two real
// agents on this machine in zones a and b.
func TestServiceLifecycleOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	startAgent(t, s, "zone-a")
	startAgent(t, s, "zone-b")
	c := ecs.NewFromConfig(s.AWSConfig())
	e := newDockerSvcEnv(t, c)
	t.Cleanup(func() { e.removeFamilyContainers("web", "node-logs") })
	cx := context.Background()

	td1 := e.register("web", []string{"term:0s:0", "sleep:1h"})
	out, err := c.CreateService(cx, &ecs.CreateServiceInput{
		ServiceName: aws.String("web"), TaskDefinition: aws.String(e.family("web")), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Service.TaskDefinition) != td1 {
		t.Fatalf("created with %s", aws.ToString(out.Service.TaskDefinition))
	}
	// checkRunning: the service is stable with n tasks of td, each backed
	// by a running container, and Docker runs no other container of it.
	checkRunning := func(n int, td string) []types.Task {
		t.Helper()
		svc := e.waitStable("web", 60*time.Second)
		if int(svc.RunningCount) != n {
			t.Fatalf("running %d, want %d", svc.RunningCount, n)
		}
		var live []types.Task
		eventuallyTrue(t, fmt.Sprintf("%d live tasks and containers", n), 20*time.Second, func() bool {
			ts, err := e.tasks("web")
			if err != nil {
				t.Fatal(err)
			}
			live = liveTasks(ts)
			notStopped := 0
			for _, tk := range ts {
				if aws.ToString(tk.LastStatus) != "STOPPED" {
					notStopped++
				}
			}
			cs, err := e.containers("web")
			if err != nil {
				t.Fatal(err)
			}
			return len(live) == n && notStopped == n && len(cs) == n
		})
		cs, _ := e.containers("web")
		ids := map[string]bool{}
		for _, c := range cs {
			ids[c.ID] = true
		}
		for _, tk := range live {
			if aws.ToString(tk.TaskDefinitionArn) != td || aws.ToString(tk.Group) != "service:web" ||
				!strings.HasPrefix(aws.ToString(tk.StartedBy), "ecs-svc/") || !ids[aws.ToString(tk.Containers[0].RuntimeId)] {
				t.Fatalf("task %s: td %s group %s startedBy %s container %s (running: %v)", aws.ToString(tk.TaskArn),
					aws.ToString(tk.TaskDefinitionArn), aws.ToString(tk.Group), aws.ToString(tk.StartedBy), aws.ToString(tk.Containers[0].RuntimeId), ids)
			}
		}
		return live
	}

	t0 := time.Now()
	live := checkRunning(2, td1)
	t.Logf("create: 2 tasks RUNNING and stable in %s", time.Since(t0).Round(10*time.Millisecond))
	// Default placement spreads over the zones: one task per agent.
	if aws.ToString(live[0].ContainerInstanceArn) == aws.ToString(live[1].ContainerInstanceArn) ||
		aws.ToString(live[0].AvailabilityZone) == aws.ToString(live[1].AvailabilityZone) {
		t.Fatalf("2 tasks not spread over the zones: %s %s", aws.ToString(live[0].AvailabilityZone), aws.ToString(live[1].AvailabilityZone))
	}

	t.Run("scale up and down", func(t *testing.T) {
		if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(4)}); err != nil {
			t.Fatal(err)
		}
		checkRunning(4, td1)
		if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		checkRunning(1, td1)
		if !hasEvent(e.mustDescribe("web"), "(service web) has stopped 3 running tasks:") {
			t.Errorf("no scale-in event: %+v", e.mustDescribe("web").Events)
		}
		if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(4)}); err != nil {
			t.Fatal(err)
		}
		checkRunning(4, td1)
	})

	// desired 4, minimumHealthyPercent 50 (2), maximumPercent 150 (6).
	td2 := e.register("web", []string{"term:0s:0", "sleep:2h"})
	t.Run("rolling update of the task definition", func(t *testing.T) {
		b := e.sampleBounds("web", []string{"web"}, 2, 6)
		t0 := time.Now()
		up, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(td2)})
		if err != nil {
			t.Fatal(err)
		}
		dep := aws.ToString(up.Service.Deployments[0].Id)
		svc := e.waitStable("web", 60*time.Second)
		t.Logf("rolling update of 4 tasks: stable in %s", time.Since(t0).Round(10*time.Millisecond))
		b.stop(t)
		if aws.ToString(svc.Deployments[0].Id) != dep || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
			t.Fatalf("deployments %+v", svc.Deployments)
		}
		checkRunning(4, td2)
	})

	t.Run("force new deployment", func(t *testing.T) {
		before := map[string]bool{}
		ts, _ := e.tasks("web")
		for _, tk := range liveTasks(ts) {
			before[aws.ToString(tk.TaskArn)] = true
		}
		b := e.sampleBounds("web", []string{"web"}, 2, 6)
		up, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), ForceNewDeployment: true})
		if err != nil {
			t.Fatal(err)
		}
		dep := aws.ToString(up.Service.Deployments[0].Id)
		svc := e.waitStable("web", 60*time.Second)
		b.stop(t)
		if aws.ToString(svc.Deployments[0].Id) != dep {
			t.Fatalf("deployments %+v", svc.Deployments)
		}
		for _, tk := range checkRunning(4, td2) {
			if before[aws.ToString(tk.TaskArn)] || aws.ToString(tk.StartedBy) != dep {
				t.Fatalf("task %s survived the forced deployment", aws.ToString(tk.TaskArn))
			}
		}
	})

	t.Run("docker kill of a service container", func(t *testing.T) {
		ts, _ := e.tasks("web")
		victim := liveTasks(ts)[0]
		cid := aws.ToString(victim.Containers[0].RuntimeId)
		t0 := time.Now()
		if out, err := exec.Command("docker", "kill", cid).CombinedOutput(); err != nil {
			t.Fatalf("docker kill: %v %s", err, out)
		}
		// Replaced: 4 tasks RUNNING again, none of them the victim.
		eventuallyTrue(t, "the killed task replaced", 30*time.Second, func() bool {
			ts, err := e.tasks("web")
			if err != nil {
				return false
			}
			live := liveTasks(ts)
			for _, tk := range live {
				if aws.ToString(tk.TaskArn) == aws.ToString(victim.TaskArn) {
					return false
				}
			}
			return len(live) == 4
		})
		elapsed := time.Since(t0)
		// The goal (5 s) is a benchmark (`berth bench services`), not an
		// assertion: the test shares the machine with the rest of the suite.
		t.Logf("RECOVERY docker kill -> replacement RUNNING in %s (goal 5 s)", elapsed.Round(10*time.Millisecond))
		got := waitTask(t, c, "default", aws.ToString(victim.TaskArn), 10*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" })
		if got.StopCode != types.TaskStopCodeEssentialContainerExited || got.Containers[0].ExitCode == nil || *got.Containers[0].ExitCode != 137 {
			t.Errorf("killed task: stopCode %s exit %v reason %q", got.StopCode, got.Containers[0].ExitCode, aws.ToString(got.StoppedReason))
		}
		checkRunning(4, td2)
	})

	// Circuit breaker with rollback. Desired 4: threshold max(3, 2) = 3.
	breaker := func(t *testing.T, bad string, minHealthy int) {
		good := aws.ToString(e.mustDescribe("web").TaskDefinition)
		b := e.sampleBounds("web", []string{"web"}, minHealthy, 6)
		t0 := time.Now()
		up, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(bad)})
		if err != nil {
			t.Fatal(err)
		}
		badDep := aws.ToString(up.Service.Deployments[0].Id)
		eventuallyTrue(t, "rollback to the good task definition", 60*time.Second, func() bool {
			svc, err := e.describe("web")
			return err == nil && aws.ToString(svc.TaskDefinition) == good && aws.ToString(svc.Deployments[0].TaskDefinition) == good &&
				aws.ToString(svc.Deployments[0].Id) != badDep
		})
		svc := e.waitStable("web", 60*time.Second)
		t.Logf("circuit breaker: rolled back and stable in %s", time.Since(t0).Round(10*time.Millisecond))
		for i := len(svc.Events) - 1; i >= 0; i-- {
			if ev := svc.Events[i]; ev.CreatedAt.After(t0.Add(-time.Second)) {
				t.Logf("event %s %s", ev.CreatedAt.Format("15:04:05.000"), aws.ToString(ev.Message))
			}
		}
		b.stop(t)
		if !hasEvent(svc, "(deployment "+badDep+") deployment failed: tasks failed to start.") {
			t.Errorf("events %+v", svc.Events)
		}
		checkRunning(4, good)
	}
	t.Run("circuit breaker: image that cannot be pulled", func(t *testing.T) {
		breaker(t, e.register("web", []string{"sleep:1h"}, func(cd *types.ContainerDefinition) {
			cd.Image = aws.String("127.0.0.1:1/berth/nope:1")
		}), 2)
	})
	t.Run("circuit breaker: container exits 1 at once", func(t *testing.T) {
		// A container that crashes at once is RUNNING for an instant, and
		// without a health check a RUNNING task is healthy (as on ECS): the
		// scheduler may stop old tasks against those, so only
		// maximumPercent is checked here.
		breaker(t, e.register("web", []string{"exit:1"}), 0)
	})

	t.Run("daemon service across two zones", func(t *testing.T) {
		td := e.register("node-logs", []string{"term:0s:0", "sleep:1h"})
		if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("node-logs"), TaskDefinition: aws.String(td),
			SchedulingStrategy: types.SchedulingStrategyDaemon}); err != nil {
			t.Fatal(err)
		}
		eventuallyTrue(t, "daemon desired 2", 20*time.Second, func() bool { svc, err := e.describe("node-logs"); return err == nil && svc.DesiredCount == 2 })
		e.waitStable("node-logs", 60*time.Second)
		ts, err := e.tasks("node-logs")
		if err != nil {
			t.Fatal(err)
		}
		zones := map[string]bool{}
		for _, tk := range liveTasks(ts) {
			zones[aws.ToString(tk.AvailabilityZone)] = true
		}
		cs, _ := e.containers("node-logs")
		if len(zones) != 2 || !zones["zone-a"] || !zones["zone-b"] || len(cs) != 2 {
			t.Fatalf("daemon tasks in zones %v, %d containers", zones, len(cs))
		}
		if _, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("node-logs")}); err != nil {
			t.Fatalf("a DAEMON service deletes without force: %v", err)
		}
		eventuallyTrue(t, "daemon service INACTIVE, containers gone", 30*time.Second, func() bool {
			svc, err := e.describe("node-logs")
			cs, _ := e.containers("node-logs")
			return err == nil && aws.ToString(svc.Status) == "INACTIVE" && len(cs) == 0
		})
	})

	t.Run("delete with force", func(t *testing.T) {
		_, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("web")})
		wantCode(t, err, "InvalidParameterException")
		t0 := time.Now()
		del, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("web"), Force: aws.Bool(true)})
		if err != nil || aws.ToString(del.Service.Status) != "DRAINING" {
			t.Fatalf("delete %+v %v", del, err)
		}
		eventuallyTrue(t, "service INACTIVE and its containers gone", 30*time.Second, func() bool {
			svc, err := e.describe("web")
			cs, _ := e.containers("web")
			return err == nil && aws.ToString(svc.Status) == "INACTIVE" && len(cs) == 0
		})
		t.Logf("delete --force: INACTIVE, containers gone in %s", time.Since(t0).Round(10*time.Millisecond))
		ts, _ := e.tasks("web")
		for _, tk := range ts {
			if aws.ToString(tk.LastStatus) != "STOPPED" {
				t.Fatalf("task left: %s %s", aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus))
			}
		}
	})
}

// TestServiceSurvivesAgentKill9OnDocker: one agent is a `berth agent`
// process (zone-a), the other in-process (zone-b). SIGKILL of the process
// → after the disconnect grace a replacement runs on the other agent while
// the task on the dead agent's instance stays RUNNING (its container does
// run on); the restarted agent re-attaches and does not stop it, and once
// it has settled the surplus is stopped by the service's scale-in order
// (spread by zone: the newer task in the crowded zone-b).
func TestServiceSurvivesAgentKill9OnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	e := newDockerSvcEnv(t, c)
	t.Cleanup(func() { e.removeFamilyContainers("api") })
	cx := context.Background()
	tok, err := s.Daemon.JoinToken(cx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dir, md := t.TempDir(), freeAnyAddr(t)
	proc := startAgentProcess(t, s.Endpoint, dir, tok, md, "zone-a")
	eventuallyTrue(t, "agent process joined", 30*time.Second, func() bool { return instanceCount(t, c) == 1 })
	startAgent(t, s, "zone-b")

	td := e.register("api", []string{"term:0s:0", "sleep:1h"})
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("api"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	e.waitStable("api", 60*time.Second)
	ts, err := e.tasks("api")
	if err != nil {
		t.Fatal(err)
	}
	var doomed types.Task
	for _, tk := range liveTasks(ts) {
		if aws.ToString(tk.AvailabilityZone) == "zone-a" {
			doomed = tk
		}
	}
	if doomed.TaskArn == nil {
		t.Fatalf("no task on the agent process (zone-a): %d live tasks", len(liveTasks(ts)))
	}
	doomedInst := aws.ToString(doomed.ContainerInstanceArn)

	t0 := time.Now()
	proc.Process.Signal(syscall.SIGKILL)
	proc.Wait()
	eventuallyTrue(t, "2 tasks RUNNING on the surviving agent", 40*time.Second, func() bool {
		ts, err := e.tasks("api")
		if err != nil {
			return false
		}
		n := 0
		for _, tk := range liveTasks(ts) {
			if aws.ToString(tk.ContainerInstanceArn) != doomedInst {
				n++
			}
		}
		return n == 2
	})
	elapsed := time.Since(t0)
	t.Logf("RECOVERY agent kill -9 -> task RUNNING on the other agent in %s", elapsed.Round(10*time.Millisecond))
	if elapsed > 20*time.Second {
		t.Errorf("replacement took %s; the goal is 20 s", elapsed)
	}
	still := waitTask(t, c, "default", aws.ToString(doomed.TaskArn), time.Second, func(x types.Task) bool { return true })
	if aws.ToString(still.LastStatus) != "RUNNING" || aws.ToString(still.DesiredStatus) != "RUNNING" {
		t.Errorf("task of the dead agent: last %s desired %s stopCode %s", aws.ToString(still.LastStatus), aws.ToString(still.DesiredStatus), still.StopCode)
	}
	eventuallyTrue(t, "runningCount 3 with the dead agent's task", 5*time.Second, func() bool { return e.mustDescribe("api").RunningCount == 3 })

	// The restarted agent re-attaches to the container (still running) and
	// keeps it; the surplus is stopped once it has settled.
	kept := aws.ToString(doomed.Containers[0].RuntimeId)
	startAgentProcess(t, s.Endpoint, dir, "", md, "zone-a")
	t1 := time.Now()
	var surplus types.Task
	eventuallyTrue(t, "the surplus task stopped", 30*time.Second, func() bool {
		ts, err := e.tasks("api")
		if err != nil {
			return false
		}
		for _, tk := range ts {
			if aws.ToString(tk.DesiredStatus) == "STOPPED" && aws.ToString(tk.TaskArn) != aws.ToString(doomed.TaskArn) {
				surplus = tk
				return true
			}
		}
		return false
	})
	t.Logf("agent back -> surplus stopped in %s", time.Since(t1).Round(10*time.Millisecond))
	if surplus.StopCode != types.TaskStopCodeServiceSchedulerInitiated || aws.ToString(surplus.AvailabilityZone) != "zone-b" {
		t.Errorf("surplus: stopCode %s, zone %s", surplus.StopCode, aws.ToString(surplus.AvailabilityZone))
	}
	svc := e.waitStable("api", 30*time.Second)
	if svc.RunningCount != 2 {
		t.Fatalf("running %d", svc.RunningCount)
	}
	after := waitTask(t, c, "default", aws.ToString(doomed.TaskArn), time.Second, func(x types.Task) bool { return true })
	if aws.ToString(after.LastStatus) != "RUNNING" || aws.ToString(after.DesiredStatus) != "RUNNING" {
		t.Errorf("the re-attached task: last %s desired %s", aws.ToString(after.LastStatus), aws.ToString(after.DesiredStatus))
	}
	if info, err := e.docker.InspectContainer(cx, kept); err != nil || !info.Running {
		t.Errorf("the re-attached task's container: %+v %v", info, err)
	}
	if _, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("api"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "containers gone after delete", 30*time.Second, func() bool { cs, _ := e.containers("api"); return len(cs) == 0 })
}

// TestServerKill9DuringRollingDeploymentOnDocker kills `berth server` with
// SIGKILL in the middle of a rolling deployment (new tasks health-checked,
// so the rollout takes a few seconds); after the restart the deployment
// completes, and RUNNING + PENDING never exceed maximumPercent (sampled from
// Docker throughout, and from DescribeServices / DescribeTasks whenever the
// server answers).
func TestServerKill9DuringRollingDeploymentOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
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
		JoinToken: tok.Token, MetadataAddr: freeAnyAddr(t), PullBehavior: dockerdriver.PullPreferCached, StopTimeout: 2 * time.Second, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	<-a.Ready()
	c := ecs.NewFromConfig(p.AWSConfig())
	e := newDockerSvcEnv(t, c)
	t.Cleanup(func() { e.removeFamilyContainers("roll") })

	td1 := e.register("roll", []string{"term:0s:0", "sleep:1h"})
	// desired 3, minimumHealthyPercent 50 (2), maximumPercent 150 (4):
	// the rollout replaces at most one task at a time.
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("roll"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(3),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150)}}); err != nil {
		t.Fatal(err)
	}
	e.waitStable("roll", 60*time.Second)
	// New revision: healthy only once its health check passed (ECS's
	// minimum interval, 5 s), so the rollout takes two rounds of ~5 s.
	td2 := e.register("roll", []string{"touch:/tmp/ok", "term:0s:0", "sleep:1h"}, func(cd *types.ContainerDefinition) {
		cd.HealthCheck = &types.HealthCheck{Command: []string{"CMD", "/tool", "check:/tmp/ok"}, Interval: aws.Int32(5), Retries: aws.Int32(1), Timeout: aws.Int32(2)}
	})

	b := e.sampleBounds("roll", []string{"roll"}, 2, 4, td2)
	up, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("roll"), TaskDefinition: aws.String(td2)})
	if err != nil {
		t.Fatal(err)
	}
	dep := aws.ToString(up.Service.Deployments[0].Id)
	// Mid-rollout: at least one new task RUNNING, old ones still there.
	eventuallyTrue(t, "rollout under way", 30*time.Second, func() bool {
		ts, err := e.tasks("roll")
		if err != nil {
			return false
		}
		newRunning, oldLive := 0, 0
		for _, tk := range ts {
			if aws.ToString(tk.TaskDefinitionArn) == td2 && aws.ToString(tk.LastStatus) == "RUNNING" {
				newRunning++
			}
			if aws.ToString(tk.TaskDefinitionArn) == td1 && aws.ToString(tk.DesiredStatus) == "RUNNING" {
				oldLive++
			}
		}
		return newRunning >= 1 && oldLive >= 1
	})
	p.Kill9()
	t.Log("server killed mid-rollout")
	time.Sleep(500 * time.Millisecond) // the agent keeps running its containers alone
	t0 := time.Now()
	p2 := berthtest.StartProcessAt(t, addr, "server", dir, nil, "--throttle=false")
	// c (and the sampler) keep working: same address, same root
	// credentials from the data directory.
	if p2.Creds != p.Creds {
		t.Fatal("root credentials changed across the restart")
	}
	svc := e.waitStable("roll", 60*time.Second)
	t.Logf("after the restart the deployment completed in %s", time.Since(t0).Round(10*time.Millisecond))
	b.stop(t)
	if aws.ToString(svc.Deployments[0].Id) != dep || svc.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
		t.Fatalf("deployments %+v", svc.Deployments)
	}
	eventuallyTrue(t, "3 new tasks and 3 containers", 20*time.Second, func() bool {
		ts, err := e.tasks("roll")
		if err != nil {
			return false
		}
		live := liveTasks(ts)
		for _, tk := range live {
			if aws.ToString(tk.TaskDefinitionArn) != td2 {
				return false
			}
		}
		cs, _ := e.containers("roll")
		return len(live) == 3 && len(cs) == 3
	})
	if _, err := c.DeleteService(cx, &ecs.DeleteServiceInput{Service: aws.String("roll"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "containers gone after delete", 30*time.Second, func() bool { cs, _ := e.containers("roll"); return len(cs) == 0 })
}
