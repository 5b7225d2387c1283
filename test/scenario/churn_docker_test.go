package scenario

import (
	"context"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestTaskChurnOnDocker (issue 9, item 2: "a task that never stopped"):
// hundreds of RunTask and StopTask calls at random moments against a real
// `berth agent` process on Docker, the agent killed and restarted once in
// the middle. Afterwards every task is STOPPED and none of its containers
// still runs.
func TestTaskChurnOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers and the binary")
	}
	t.Parallel()
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	c := ecs.NewFromConfig(s.AWSConfig())
	e := newDockerSvcEnv(t, c)
	t.Cleanup(func() { e.removeFamilyContainers("churn") })
	cx := context.Background()
	tok, err := s.Daemon.JoinToken(cx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dir, md := t.TempDir(), freeAnyAddr(t)
	proc := startAgentProcess(t, s.Endpoint, dir, tok, md, "")
	eventuallyTrue(t, "agent process joined", 30*time.Second, func() bool { return instanceCount(t, c) == 1 })
	td := e.register("churn", []string{"sleep:1h"})

	const rounds = 50
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var mu sync.Mutex
	var all, live []string
	var stoppers sync.WaitGroup
	for i := 0; i < rounds; i++ {
		if i == rounds/2 {
			// The agent dies and comes back (same data dir: it resumes).
			proc.Process.Signal(syscall.SIGKILL)
			proc.Wait()
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			proc = startAgentProcess(t, s.Endpoint, dir, "", md, "")
		}
		out, err := c.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), Count: aws.Int32(int32(1 + rng.IntN(2)))})
		if err != nil {
			t.Fatalf("round %d: RunTask: %v", i, err)
		}
		mu.Lock()
		for _, tk := range out.Tasks {
			all = append(all, aws.ToString(tk.TaskArn))
			live = append(live, aws.ToString(tk.TaskArn))
		}
		// Stop a random live task after a random delay, at any stage of
		// its start.
		if len(live) > 0 && rng.IntN(3) > 0 {
			k := rng.IntN(len(live))
			victim := live[k]
			live = append(live[:k], live[k+1:]...)
			delay := time.Duration(rng.IntN(3000)) * time.Millisecond
			stoppers.Add(1)
			go func() {
				defer stoppers.Done()
				time.Sleep(delay)
				if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(victim), Reason: aws.String("churn")}); err != nil {
					t.Errorf("StopTask %s: %v", victim, err)
				}
			}()
		}
		mu.Unlock()
		time.Sleep(time.Duration(rng.IntN(120)) * time.Millisecond)
	}
	stoppers.Wait()
	for _, a := range live {
		if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(a)}); err != nil {
			t.Fatalf("StopTask %s: %v", a, err)
		}
	}

	// Every task ends STOPPED.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var notStopped []string
		for i := 0; i < len(all); i += 100 {
			d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: all[i:min(i+100, len(all))]})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Failures) > 0 {
				t.Fatalf("tasks missing: %+v", d.Failures)
			}
			for _, tk := range d.Tasks {
				if aws.ToString(tk.LastStatus) != "STOPPED" {
					notStopped = append(notStopped, aws.ToString(tk.TaskArn)+" "+aws.ToString(tk.LastStatus)+"/"+aws.ToString(tk.DesiredStatus))
				}
			}
		}
		if len(notStopped) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks not STOPPED: %v", len(notStopped), len(all), notStopped)
		}
		time.Sleep(time.Second)
	}
	// None of their containers runs.
	eventuallyTrue(t, "no container of the churn tasks running", 30*time.Second, func() bool {
		cs, err := e.containers("churn")
		return err == nil && len(cs) == 0
	})
	t.Logf("%d tasks run and stopped across an agent restart", len(all))
}
