//go:build disruptive

package disruptive

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/daemon"
	"github.com/berthdev/berth/internal/dockerdriver"
)

// startAgent runs a real node agent (Docker behind it) against s with its
// own data directory and metadata port. Its containers are removed when
// the test ends.
func startAgent(t *testing.T, s *berthtest.Server, az string) *daemon.Agent {
	t.Helper()
	tok, err := s.Daemon.JoinToken(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	// "0.0.0.0:port", not l.Addr()'s "[::]:port": the agent takes the
	// port after the first colon.
	mdAddr := fmt.Sprintf("0.0.0.0:%d", l.Addr().(*net.TCPAddr).Port)
	l.Close()
	a, err := daemon.StartAgent(context.Background(), daemon.AgentConfig{
		Endpoint: s.Endpoint, Region: s.Region, DataDir: t.TempDir(), JoinToken: tok,
		AvailabilityZone: az, MetadataAddr: mdAddr, StopTimeout: 5 * time.Second, Version: "test",
		PullBehavior: dockerdriver.PullPreferCached, // never reach for a registry outside this machine
		Log:          slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("agent", az),
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := a.State().ContainerInstanceArn
	t.Cleanup(func() {
		a.Close()
		removeContainers(t, dockerdriver.LabelInstance+"="+arn)
	})
	select {
	case <-a.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready")
	}
	return a
}

// removeContainers force-removes every container labelled label.
func removeContainers(t *testing.T, label string) {
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Log(err)
		return
	}
	defer dc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := dc.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", label)})
	if err != nil {
		t.Log(err)
		return
	}
	for _, s := range l.Items {
		dc.ContainerRemove(ctx, s.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
}

func toolTaskDef(family string, args []string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(berthtest.ToolImage), Memory: aws.Int32(64),
			Command: args, StopTimeout: aws.Int32(3),
		}},
	}
}

// waitTask polls DescribeTasks until f holds.
func waitTask(t *testing.T, c *ecs.Client, taskARN string, within time.Duration, f func(types.Task) bool) types.Task {
	t.Helper()
	deadline := time.Now().Add(within)
	var last types.Task
	for time.Now().Before(deadline) {
		d, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Tasks: []string{taskARN}})
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
	t.Fatalf("task %s: condition not met within %s; last: %s", taskARN, within, describe(last))
	return last
}

func describe(x types.Task) string {
	s := fmt.Sprintf("status %s desired %s stopCode %s reason %q", aws.ToString(x.LastStatus),
		aws.ToString(x.DesiredStatus), x.StopCode, aws.ToString(x.StoppedReason))
	for _, c := range x.Containers {
		s += fmt.Sprintf("; container %s %s exit %v reason %q", aws.ToString(c.Name), aws.ToString(c.LastStatus),
			aws.ToInt32(c.ExitCode), aws.ToString(c.Reason))
	}
	return s
}

func running(x types.Task) bool { return aws.ToString(x.LastStatus) == "RUNNING" }
func stopped(x types.Task) bool { return aws.ToString(x.LastStatus) == "STOPPED" }

// runOne runs one task of family and returns its ARN.
func runOne(t *testing.T, c *ecs.Client, family string) string {
	t.Helper()
	r, err := c.RunTask(context.Background(), &ecs.RunTaskInput{TaskDefinition: aws.String(family)})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) > 0 || len(r.Tasks) != 1 {
		t.Fatalf("RunTask failures: %+v", r.Failures)
	}
	return aws.ToString(r.Tasks[0].TaskArn)
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
