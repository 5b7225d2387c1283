package scenario

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/berthtest"
)

// A `berth agent` whose container instance is deregistered stops at once
// and exits non-zero, saying why (it used to keep running, its stream
// open, until its next reconnect, and then stay up doing nothing).
func TestDeregisteredAgentProcessExits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary's agent on Docker")
	}
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := ctx(t)
	tok, err := s.Daemon.JoinToken(cx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	out := &berthtest.SyncBuffer{}
	cmd := exec.Command(berthtest.Binary(t), "agent", "--endpoint", s.Endpoint, "--data-dir", t.TempDir(),
		"--join-token", tok, "--metadata-addr", berthtest.FreeAddr(t), "--image-pull-behavior", "prefer-cached", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = out, out
	if err := berthtest.StartCommand(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select { // already received when the test saw the exit
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	})

	// Wait until the instance is connected.
	var arn string
	for deadline := time.Now().Add(30 * time.Second); ; {
		l, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{})
		if err == nil && len(l.ContainerInstanceArns) == 1 {
			d, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{ContainerInstances: l.ContainerInstanceArns})
			if err == nil && len(d.ContainerInstances) == 1 && d.ContainerInstances[0].AgentConnected {
				arn = aws.ToString(d.ContainerInstances[0].ContainerInstanceArn)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not connected: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	t0 := time.Now()
	if _, err := c.DeregisterContainerInstance(cx, &ecs.DeregisterContainerInstanceInput{ContainerInstance: aws.String(arn), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("agent exited with %v; want a non-zero exit\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "deregistered") {
			t.Fatalf("agent output does not say why it stopped:\n%s", out.String())
		}
		t.Logf("agent exited %s after the deregistration (code %d)", time.Since(t0).Round(time.Millisecond), ee.ExitCode())
	case <-time.After(15 * time.Second):
		t.Fatalf("agent still running 15 s after its instance was deregistered\n%s", out.String())
	}
}
