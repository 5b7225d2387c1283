package scenario

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agent"
	"github.com/berthdev/berth/internal/berthtest"
)

// awslogsTaskDef is a task definition whose one container runs the tool
// with args and logs with awslogs.
func awslogsTaskDef(family string, args []string, opts map[string]string) *ecs.RegisterTaskDefinitionInput {
	in := toolTaskDef(family, args)
	in.ContainerDefinitions[0].LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: opts}
	return in
}

// streamMessages reads every event of a stream with FilterLogEvents.
func streamMessages(t *testing.T, c *cloudwatchlogs.Client, group, stream string) []string {
	t.Helper()
	var out []string
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group), LogStreamNames: []string{stream}}
	for {
		r, err := c.FilterLogEvents(context.Background(), in)
		if err != nil {
			t.Fatalf("FilterLogEvents: %v", err)
		}
		for _, e := range r.Events {
			out = append(out, aws.ToString(e.Message))
		}
		if r.NextToken == nil {
			return out
		}
		in.NextToken = r.NextToken
	}
}

// TestAwslogsThroughBerthUp runs tasks whose containers log with awslogs
// through `berth up` (the real binary, with its agent): their lines reach
// the stream prefix/container/task-id in FilterLogEvents, none is lost
// when the whole `berth up` is killed (-9) and restarted in the middle of
// the output, and a task whose group is missing (no awslogs-create-group)
// stops with ECS's reason.
func TestAwslogsThroughBerthUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	dir := t.TempDir()
	addr, md := berthtest.FreeAddr(t), freeAnyAddr(t)
	env := []string{"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached", "ECS_CONTAINER_STOP_TIMEOUT=2s"}
	args := []string{"--agent=true", "--metadata-addr", md}
	p := berthtest.StartProcessAt(t, addr, "up", dir, env, args...)
	t.Cleanup(func() {
		if st, err := agent.LoadState(filepath.Join(dir, "agent")); err == nil {
			berthtest.RemoveAgentContainers(t, st.ContainerInstanceArn)
		}
	})
	cx := context.Background()
	c := ecs.NewFromConfig(p.AWSConfig())
	lc := cloudwatchlogs.NewFromConfig(p.AWSConfig())
	waitInstances(t, c, 1)

	const group, n = "/berth/test/awslogs", 300
	// Only the tool's oldest steps (print, sleep): other test runs on this
	// machine may rebuild the shared tool image from older sources.
	var steps []string
	for i := 0; i < n; i++ {
		steps = append(steps, fmt.Sprintf("print:line %06d", i), "sleep:20ms")
	}
	td := awslogsTaskDef("logger", steps, map[string]string{
		"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app",
		"awslogs-create-group": "true", "mode": "non-blocking", "max-buffer-size": "1m"})
	// A second container groups a stack trace into one event.
	td.ContainerDefinitions = append(td.ContainerDefinitions, types.ContainerDefinition{
		Name: aws.String("trace"), Image: aws.String(berthtest.ToolImage), Memory: aws.Int32(32), Essential: aws.Bool(false),
		Command: []string{"print:ERROR boom", "print:  at main.go:1", "print:  at main.go:2", "print:INFO done", "sleep:3s"},
		LogConfiguration: &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
			"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app",
			"awslogs-multiline-pattern": "^(ERROR|INFO)"}}})
	if _, err := c.RegisterTaskDefinition(cx, td); err != nil {
		t.Fatal(err)
	}
	taskARN := runOne(t, c, "logger")
	taskID := taskARN[strings.LastIndex(taskARN, "/")+1:]
	stream := "app/main/" + taskID

	// Some lines are visible; then the whole berth up dies mid-output.
	// (The container starts on a saturated dockerd in CI: tens of seconds.)
	deadline := time.Now().Add(berthtest.Scale(60 * time.Second))
	for {
		if r, err := lc.FilterLogEvents(cx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(group),
			LogStreamNames: []string{stream}}); err == nil && len(r.Events) >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lines in %s %s\n%s", group, stream, p.Output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Kill9()
	time.Sleep(time.Second) // the container goes on writing to Docker meanwhile
	p2 := berthtest.StartProcessAt(t, addr, "up", dir, env, args...)
	c = ecs.NewFromConfig(p2.AWSConfig())
	lc = cloudwatchlogs.NewFromConfig(p2.AWSConfig())

	task := waitTask(t, c, "default", taskARN, 60*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	if task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 0 {
		t.Fatalf("container exit %v reason %q", task.Containers[0].ExitCode, aws.ToString(task.StoppedReason))
	}
	// Every line arrived, in order of time; a few may repeat (at least once).
	var msgs []string
	deadline = time.Now().Add(60 * time.Second)
	for {
		msgs = streamMessages(t, lc, group, stream)
		seen := map[string]bool{}
		for _, m := range msgs {
			seen[m] = true
		}
		if len(seen) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m]++
	}
	repeats := len(msgs) - len(seen)
	for i := 0; i < n; i++ {
		if seen[fmt.Sprintf("line %06d", i)] == 0 {
			t.Fatalf("line %d lost (%d events, %d distinct)\n%s", i, len(msgs), len(seen), p2.Output.String())
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d: %q", len(seen), n, msgs[:10])
	}
	t.Logf("%d lines in %s across a kill -9 of berth up; %d repeated", n, stream, repeats)
	// The trace container's shipper resumes on its own after the restart;
	// on a machine whose dockerd is saturated it may come after the main
	// stream's (CI saw Docker calls take 30 s).
	wantTrace := fmt.Sprintf("%q", []string{"ERROR boom\n  at main.go:1\n  at main.go:2\n", "INFO done\n"})
	var trace []string
	for deadline = time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		trace = streamMessages(t, lc, group, "app/trace/"+taskID)
		if fmt.Sprintf("%q", trace) == wantTrace || len(trace) > 2 || time.Now().After(deadline) {
			break
		}
	}
	if fmt.Sprintf("%q", trace) != wantTrace {
		t.Fatalf("multiline events %q\n%s", trace, p2.Output.String())
	}

	// A missing group without awslogs-create-group fails the task with
	// ECS's reason.
	if _, err := c.RegisterTaskDefinition(cx, awslogsTaskDef("nogroup", []string{"print:never", "sleep:1h"}, map[string]string{
		"awslogs-group": "/berth/test/missing", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app"})); err != nil {
		t.Fatal(err)
	}
	failed := runOne(t, c, "nogroup")
	task = waitTask(t, c, "default", failed, 30*time.Second, func(tk types.Task) bool { return aws.ToString(tk.LastStatus) == "STOPPED" })
	const want = "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: " +
		"failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist."
	if got := aws.ToString(task.StoppedReason); got != want {
		t.Fatalf("stoppedReason %q, want %q", got, want)
	}
	if got := aws.ToString(task.Containers[0].Reason); got != want {
		t.Fatalf("container reason %q", got)
	}
	if task.StopCode != types.TaskStopCodeTaskFailedToStart {
		t.Fatalf("stopCode %s", task.StopCode)
	}
	if _, err := lc.DescribeLogStreams(cx, &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String("/berth/test/missing")}); err == nil {
		t.Fatal("the missing group was created")
	}
}

// waitInstances waits until the default cluster has n container instances
// whose agents are connected (RunTask places only on those: an instance is
// listed a moment before its agent's assignment stream is up).
func waitInstances(t *testing.T, c *ecs.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(berthtest.Scale(30 * time.Second))
	for {
		connected := 0
		r, err := c.ListContainerInstances(context.Background(), &ecs.ListContainerInstancesInput{})
		if err == nil && len(r.ContainerInstanceArns) >= n {
			var d *ecs.DescribeContainerInstancesOutput
			d, err = c.DescribeContainerInstances(context.Background(), &ecs.DescribeContainerInstancesInput{ContainerInstances: r.ContainerInstanceArns})
			if err == nil {
				for _, ci := range d.ContainerInstances {
					if ci.AgentConnected {
						connected++
					}
				}
			}
		}
		if connected >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connected container instances, want %d (%v)", connected, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
