//go:build disruptive

package disruptive

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/placement"
)

func resource(rs []types.Resource, name string) int {
	for _, r := range rs {
		if aws.ToString(r.Name) == name {
			return int(r.IntegerValue)
		}
	}
	return -1
}

// instances returns the cluster's container instances, waiting until want
// are registered and connected.
func instances(t *testing.T, c *ecs.Client, want int) []types.ContainerInstance {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := c.ListContainerInstances(context.Background(), &ecs.ListContainerInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(l.ContainerInstanceArns) == want {
			d, err := c.DescribeContainerInstances(context.Background(), &ecs.DescribeContainerInstancesInput{
				ContainerInstances: l.ContainerInstanceArns})
			if err != nil {
				t.Fatal(err)
			}
			connected := 0
			for _, ci := range d.ContainerInstances {
				if ci.AgentConnected {
					connected++
				}
			}
			if connected == want {
				return d.ContainerInstances
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d container instances, want %d connected", len(l.ContainerInstanceArns), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTwoAgentsCompeteForLastMemory places N+2 tasks, from several
// concurrent RunTask callers, on two real agents where only N fit by
// memory: exactly N are placed, the other two fail with RESOURCE:MEMORY,
// and neither instance is ever overcommitted. Three rounds.
func TestTwoAgentsCompeteForLastMemory(t *testing.T) {
	berthtest.NeedDocker(t)
	s := berthtest.Start(t, nil)
	startAgent(t, s, "us-east-1a")
	startAgent(t, s, "us-east-1b")
	c := ecs.NewFromConfig(s.AWSConfig())
	cx := context.Background()

	cis := instances(t, c, 2)
	minMem := -1
	for _, ci := range cis {
		if m := resource(ci.RemainingResources, "MEMORY"); minMem < 0 || m < minMem {
			minMem = m
		}
	}
	// Both agents report this host's memory: a task of 2/5 of it plus one
	// MiB lets exactly two fit on each instance. The hard limit is never
	// used: the containers only sleep.
	mem := minMem*2/5 + 1
	n := 0
	for _, ci := range cis {
		n += resource(ci.RemainingResources, "MEMORY") / mem
	}
	t.Logf("instances have %d MiB; task memory %d MiB; %d fit", minMem, mem, n)
	if n < 2 {
		t.Fatalf("only %d tasks fit", n)
	}
	td := toolTaskDef("hog", []string{"term:0s:0", "sleep:1h"})
	td.ContainerDefinitions[0].Memory = aws.Int32(int32(mem))
	if _, err := c.RegisterTaskDefinition(cx, td); err != nil {
		t.Fatal(err)
	}

	for round := 0; round < 3; round++ {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			var (
				mu       sync.Mutex
				placed   []types.Task
				failures []types.Failure
				wg       sync.WaitGroup
				start    = make(chan struct{})
			)
			for i := 0; i < n+2; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := c.RunTask(cx, &ecs.RunTaskInput{TaskDefinition: aws.String("hog")})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("RunTask: %v", err)
						return
					}
					placed = append(placed, r.Tasks...)
					failures = append(failures, r.Failures...)
				}()
			}
			close(start)
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			if len(placed) != n || len(failures) != 2 {
				t.Errorf("placed %d, failures %d (%+v); want %d and 2", len(placed), len(failures), failures, n)
			}
			for _, f := range failures {
				if aws.ToString(f.Reason) != placement.ReasonMemory {
					t.Errorf("failure reason %q, want %s", aws.ToString(f.Reason), placement.ReasonMemory)
				}
			}
			// Never overcommitted: per-instance sums and remainingResources.
			perInstance := map[string]int{}
			for _, x := range placed {
				perInstance[aws.ToString(x.ContainerInstanceArn)] += mem
			}
			check := func(when string) {
				d, err := c.DescribeContainerInstances(cx, &ecs.DescribeContainerInstancesInput{
					ContainerInstances: []string{aws.ToString(cis[0].ContainerInstanceArn), aws.ToString(cis[1].ContainerInstanceArn)}})
				if err != nil {
					t.Fatal(err)
				}
				for _, ci := range d.ContainerInstances {
					arn := aws.ToString(ci.ContainerInstanceArn)
					reg, rem := resource(ci.RegisteredResources, "MEMORY"), resource(ci.RemainingResources, "MEMORY")
					if rem < 0 || perInstance[arn] > reg {
						t.Errorf("%s: instance %s overcommitted: registered %d, remaining %d, placed %d", when, arn, reg, rem, perInstance[arn])
					}
					if rem != reg-perInstance[arn] {
						t.Errorf("%s: instance %s remaining %d, want %d - %d", when, arn, rem, reg, perInstance[arn])
					}
				}
			}
			check("after placement")
			var arns []string
			for _, x := range placed {
				arns = append(arns, aws.ToString(x.TaskArn))
			}
			for _, a := range arns {
				waitTask(t, c, a, 60*time.Second, running)
			}
			check("running")
			for _, a := range arns {
				if _, err := c.StopTask(cx, &ecs.StopTaskInput{Task: aws.String(a)}); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range arns {
				waitTask(t, c, a, 30*time.Second, stopped)
			}
		})
		if t.Failed() {
			return
		}
	}
}
