package scenario

import (
	"context"
	"fmt"
	"os/exec"
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
)

// TestLostHostPolicyOnDocker: `berth server` (default policy flags) and
// three `berth agent` processes in zones a, b and c; a service of 3 (one
// task per zone) and a standalone task on a and on b. Agent a is paused
// (SIGSTOP, as a partition or a frozen host looks); once it is shown
// disconnected, agent b is killed for good (SIGKILL, never restarted).
// Sampled every
// 250 ms until a resumes 30 s later: no standalone task is stopped or
// told to stop, the service's RUNNING tasks (DescribeTasks and
// DescribeServices) never drop below 3, and no task is placed on a or b.
// b's service task runs elsewhere within 20 s. After a resumes, exactly
// the surplus is stopped (one task, ServiceSchedulerInitiated, with ECS's
// service event), a's own tasks and containers keep running, and b's
// tasks are still shown RUNNING on the disconnected instance b.
func TestLostHostPolicyOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	srv := berthtest.StartProcess(t, "server", t.TempDir(), nil)
	c := ecs.NewFromConfig(srv.AWSConfig())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", srv.Output.String())
		}
	})
	cx := context.Background()
	tok, err := agentgw.CreateJoinToken(cx, srv.Endpoint, srv.Region, srv.Creds.AccessKeyID, srv.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := newDockerSvcEnv(t, c)
	t.Cleanup(func() { e.removeFamilyContainers("web", "solo") })
	agents := map[string]*agentProc{}
	for _, z := range []string{"zone-a", "zone-b", "zone-c"} {
		agents[z] = &agentProc{cmd: startAgentProcess(t, srv.Endpoint, t.TempDir(), tok.Token, freeAnyAddr(t), z)}
	}
	t.Cleanup(func() { agents["zone-a"].cmd.Process.Signal(syscall.SIGCONT) })
	eventuallyTrue(t, "three agents joined", 30*time.Second, func() bool { return instanceCount(t, c) == 3 })
	zoneOf := map[string]string{} // instance ARN -> zone
	{
		var d *ecs.DescribeContainerInstancesOutput
		eventuallyTrue(t, "three agents connected", 30*time.Second, func() bool {
			l, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{})
			if err != nil {
				return false
			}
			d, err = c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: l.ContainerInstanceArns})
			if err != nil {
				return false
			}
			n := 0
			for _, ci := range d.ContainerInstances {
				if ci.AgentConnected {
					n++
				}
			}
			return n == 3
		})
		for _, ci := range d.ContainerInstances {
			for _, a := range ci.Attributes {
				if aws.ToString(a.Name) == "ecs.availability-zone" {
					zoneOf[aws.ToString(ci.ContainerInstanceArn)] = aws.ToString(a.Value)
					agents[aws.ToString(a.Value)].arn = aws.ToString(ci.ContainerInstanceArn)
				}
			}
		}
	}
	paused, killed := agents["zone-a"], agents["zone-b"]

	webTD := e.register("web", []string{"term:0s:0", "sleep:1h"})
	soloTD := e.register("solo", []string{"term:0s:0", "sleep:1h"})
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(webTD), DesiredCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	solo := map[string]string{} // zone -> standalone task ARN
	for _, z := range []string{"zone-a", "zone-b"} {
		r, err := c.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String(soloTD), PlacementConstraints: []types.PlacementConstraint{{
			Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:ecs.availability-zone == " + z)}}})
		if err != nil || len(r.Tasks) != 1 {
			t.Fatalf("run a standalone task in %s: %v %s", z, err, failuresOf(r))
		}
		solo[z] = aws.ToString(r.Tasks[0].TaskArn)
	}
	e.waitStable("web", 60*time.Second)
	for _, arn := range solo {
		waitTask(t, c, "default", arn, 30*time.Second, func(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" })
	}
	before, err := e.tasks("web")
	if err != nil {
		t.Fatal(err)
	}
	perZone := map[string]int{}
	var pausedTask types.Task
	for _, tk := range liveTasks(before) {
		z := zoneOf[aws.ToString(tk.ContainerInstanceArn)]
		perZone[z]++
		if z == "zone-a" {
			pausedTask = tk
		}
	}
	if perZone["zone-a"] != 1 || perZone["zone-b"] != 1 || perZone["zone-c"] != 1 {
		t.Fatalf("service tasks per zone before: %v", perZone)
	}

	t0 := time.Now()
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var killedAt time.Time
	kill := func() {
		killed.cmd.Process.Signal(syscall.SIGKILL)
		killed.cmd.Wait()
		killedAt = time.Now()
	}

	// Sample until the paused agent resumes.
	var (
		mu         sync.Mutex
		violations []string
		samples    int
		replacedAt time.Duration // b's service task RUNNING elsewhere, from its kill
		sawAway    bool          // a shown disconnected with its tasks
	)
	violate := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(violations) < 20 {
			violations = append(violations, fmt.Sprintf("%5.1fs ", time.Since(t0).Seconds())+fmt.Sprintf(format, args...))
		}
	}
	resumeAt := t0.Add(30 * time.Second)
	for time.Now().Before(resumeAt) {
		time.Sleep(250 * time.Millisecond)
		// b is killed once a is seen disconnected (silent for 7 s), so
		// that b's replacement is placed knowing a is away.
		if killedAt.IsZero() {
			ci, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{paused.arn}})
			if err == nil && len(ci.ContainerInstances) == 1 && !ci.ContainerInstances[0].AgentConnected {
				t.Logf("LOST HOST paused agent shown disconnected after %s", time.Since(t0).Round(10*time.Millisecond))
				kill()
			}
		}
		ts, err := e.tasks("web")
		if err != nil {
			violate("describe tasks: %v", err)
			continue
		}
		running, elsewhere := 0, 0
		for _, tk := range liveTasks(ts) {
			running++
			inst := aws.ToString(tk.ContainerInstanceArn)
			if inst != killed.arn {
				elsewhere++
			}
			if (inst == paused.arn || inst == killed.arn) && tk.CreatedAt != nil && tk.CreatedAt.After(t0) {
				violate("task %s placed on a disconnected instance (%s)", aws.ToString(tk.TaskArn), zoneOf[inst])
			}
		}
		if running < 3 {
			violate("%d service tasks RUNNING, desired 3", running)
		}
		if elsewhere >= 3 && replacedAt == 0 && !killedAt.IsZero() {
			replacedAt = time.Since(killedAt)
		}
		if svc, err := e.describe("web"); err != nil || svc.RunningCount < 3 {
			violate("DescribeServices runningCount %d (err %v)", svc.RunningCount, err)
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{solo["zone-a"], solo["zone-b"]}})
		if err != nil || len(d.Tasks) != 2 {
			violate("describe standalone tasks: %v", err)
			continue
		}
		for _, tk := range d.Tasks {
			if aws.ToString(tk.LastStatus) != "RUNNING" || aws.ToString(tk.DesiredStatus) != "RUNNING" {
				violate("standalone task %s: last %s desired %s stopCode %s reason %q", aws.ToString(tk.TaskArn),
					aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), tk.StopCode, aws.ToString(tk.StoppedReason))
			}
		}
		samples++
		if !sawAway && time.Since(t0) > 20*time.Second {
			ci, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{paused.arn}})
			l, lerr := c.ListTasks(cx, &ecs.ListTasksInput{ContainerInstance: aws.String(paused.arn)})
			if err == nil && lerr == nil && len(ci.ContainerInstances) == 1 && !ci.ContainerInstances[0].AgentConnected &&
				strings.Contains(strings.Join(l.TaskArns, " "), solo["zone-a"]) && ci.ContainerInstances[0].RunningTasksCount == 2 {
				sawAway = true
			}
		}
	}
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("LOST HOST paused a + killed b: %d samples; b's service task RUNNING elsewhere after %s", samples, replacedAt.Round(10*time.Millisecond))
	for _, v := range violations {
		t.Error(v)
	}
	if replacedAt == 0 || replacedAt > 20*time.Second {
		t.Errorf("the killed agent's service task ran elsewhere after %s; want within 20 s", replacedAt)
	}
	if !sawAway {
		t.Error("the paused instance was never shown agentConnected false with its two tasks")
	}

	// a is back: the surplus (one task) is stopped; a's own tasks go on.
	var stopped []types.Task
	eventuallyTrue(t, "3 service tasks desired RUNNING on reachable instances, the surplus stopped", 30*time.Second, func() bool {
		ts, err := e.tasks("web")
		if err != nil {
			return false
		}
		stopped = nil
		live := 0
		for _, tk := range ts {
			switch {
			case aws.ToString(tk.DesiredStatus) == "STOPPED":
				stopped = append(stopped, tk)
			case aws.ToString(tk.ContainerInstanceArn) != killed.arn:
				live++
			}
		}
		return live == 3 && len(stopped) == 1
	})
	if s := stopped[0]; s.StopCode != types.TaskStopCodeServiceSchedulerInitiated || !strings.HasPrefix(aws.ToString(s.StoppedReason), "Scaling activity initiated by") {
		t.Errorf("surplus task: stopCode %s, reason %q", s.StopCode, aws.ToString(s.StoppedReason))
	}
	svc := e.mustDescribe("web")
	want := fmt.Sprintf("has stopped 1 running tasks: (task %s)", aws.ToString(stopped[0].TaskArn)[strings.LastIndex(aws.ToString(stopped[0].TaskArn), "/")+1:])
	found := false
	for _, ev := range svc.Events {
		found = found || strings.Contains(aws.ToString(ev.Message), want)
	}
	if !found {
		t.Errorf("no service event %q", want)
	}
	for _, arn := range []string{aws.ToString(pausedTask.TaskArn), solo["zone-a"], solo["zone-b"]} {
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{arn}})
		if err != nil || len(d.Tasks) != 1 || aws.ToString(d.Tasks[0].DesiredStatus) != "RUNNING" || aws.ToString(d.Tasks[0].LastStatus) != "RUNNING" {
			t.Errorf("task %s after the resume: %v %+v", arn, err, d)
		}
	}
	// The resumed agent left its containers running.
	for _, arn := range []string{aws.ToString(pausedTask.TaskArn), solo["zone-a"]} {
		d, _ := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{arn}})
		if len(d.Tasks) == 1 && len(d.Tasks[0].Containers) > 0 {
			if info, err := e.docker.InspectContainer(cx, aws.ToString(d.Tasks[0].Containers[0].RuntimeId)); err != nil || !info.Running {
				t.Errorf("container of %s not running after the resume: %+v %v", arn, info, err)
			}
		}
	}
	ci, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: []string{killed.arn, paused.arn}})
	if err != nil || len(ci.ContainerInstances) != 2 {
		t.Fatalf("describe instances: %v", err)
	}
	for _, in := range ci.ContainerInstances {
		wantConnected := aws.ToString(in.ContainerInstanceArn) == paused.arn
		if in.AgentConnected != wantConnected || in.RunningTasksCount != 2 {
			t.Errorf("instance %s: agentConnected %v (want %v), running %d (want 2)", zoneOf[aws.ToString(in.ContainerInstanceArn)],
				in.AgentConnected, wantConnected, in.RunningTasksCount)
		}
	}
}

// agentProc is a `berth agent` process and its container instance.
type agentProc struct {
	cmd *exec.Cmd
	arn string
}

func failuresOf(r *ecs.RunTaskOutput) string {
	if r == nil {
		return ""
	}
	var out []string
	for _, f := range r.Failures {
		out = append(out, aws.ToString(f.Arn)+": "+aws.ToString(f.Reason))
	}
	return strings.Join(out, "; ")
}
