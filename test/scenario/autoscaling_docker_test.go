package scenario

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	aas "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling"
	aastypes "github.com/aws/aws-sdk-go-v2/service/applicationautoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/testimage"
)

// reactionLimit is the goal of issue 13: CPU breach to new tasks RUNNING.
const reactionLimit = 45 * time.Second

// autoscalingReaction runs `berth up` with its agent and a 5 s metrics
// period, a service of one task burning a core (CPUUtilization far above
// its 256 reserved units), and a target tracking policy on
// ECSServiceAverageCPUUtilization with a target of 50 %. The task idles
// for idle first (so the alarms have non-breaching datapoints, as a
// service that has been running has), then burns. It returns how long
// after the burn began the scaling activity started (the trigger) and a
// second task was RUNNING, and the activity's description and cause.
func autoscalingReaction(t testing.TB, period string, idle time.Duration) (trigger, reaction time.Duration, activity string) {
	berthtest.NeedDocker(t)
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	if err := testimage.BuildToolAs(bctx, dc, statsToolImage); err != nil {
		t.Fatal(err)
	}
	cancel()
	md := freeAnyAddrTB(t)
	p := berthtest.StartProcess(t, "up", t.TempDir(), []string{"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached"},
		"--agent=true", "--metadata-addr", md, "--metrics-period", period, "--throttle=false", "--log-level", "warn")
	cfg := p.AWSConfig()
	c := ecs.NewFromConfig(cfg)
	cx := context.Background()
	var instanceARN string
	waitFor(t, "agent joined", 60*time.Second, func() bool {
		out, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{})
		if err != nil || len(out.ContainerInstanceArns) == 0 {
			return false
		}
		instanceARN = out.ContainerInstanceArns[0]
		return true
	})
	t.Cleanup(func() { berthtest.RemoveAgentContainers(t, instanceARN) })
	// The burn outlasts three alarm periods with room to spare: 90 s with
	// 10 s alarm periods, 10 minutes with 60 s ones.
	burnFor := 90 * time.Second
	if period == "60s" {
		burnFor = 10 * time.Minute
	}
	if _, err := c.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("hot"), Cpu: aws.String("256"), Memory: aws.String("64"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("main"), Image: aws.String(statsToolImage), StopTimeout: aws.Int32(2),
			// Bounded, so that the tasks scaling adds do not keep the
			// machine busy for long.
			Command: []string{"sleep:" + idle.String(), "burn:" + burnFor.String(), "sleep:1h"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("hot"), TaskDefinition: aws.String("hot"), DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	as := aas.NewFromConfig(cfg)
	res := aws.String("service/default/hot")
	dim, ns := aastypes.ScalableDimensionECSServiceDesiredCount, aastypes.ServiceNamespaceEcs
	if _, err := as.RegisterScalableTarget(cx, &aas.RegisterScalableTargetInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim,
		MinCapacity: aws.Int32(1), MaxCapacity: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := as.PutScalingPolicy(cx, &aas.PutScalingPolicyInput{ServiceNamespace: ns, ResourceId: res, ScalableDimension: dim, PolicyName: aws.String("cpu50"),
		PolicyType: aastypes.PolicyTypeTargetTrackingScaling, TargetTrackingScalingPolicyConfiguration: &aastypes.TargetTrackingScalingPolicyConfiguration{
			TargetValue: aws.Float64(50), PredefinedMetricSpecification: &aastypes.PredefinedMetricSpecification{PredefinedMetricType: aastypes.MetricTypeECSServiceAverageCPUUtilization},
			ScaleOutCooldown: aws.Int32(60), ScaleInCooldown: aws.Int32(60)}}); err != nil {
		t.Fatal(err)
	}
	running := func() []time.Time {
		l, err := c.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String("hot"), DesiredStatus: types.DesiredStatusRunning})
		if err != nil || len(l.TaskArns) == 0 {
			return nil
		}
		d, err := c.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: l.TaskArns})
		if err != nil {
			return nil
		}
		var out []time.Time
		for _, tk := range d.Tasks {
			if aws.ToString(tk.LastStatus) == "RUNNING" && tk.StartedAt != nil {
				out = append(out, *tk.StartedAt)
			}
		}
		slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
		return out
	}
	var started []time.Time
	waitFor(t, "first task RUNNING", 90*time.Second, func() bool { started = running(); return len(started) >= 1 })
	waitFor(t, "a second task RUNNING", 12*time.Minute, func() bool { started = running(); return len(started) >= 2 })
	acts, err := as.DescribeScalingActivities(cx, &aas.DescribeScalingActivitiesInput{ServiceNamespace: ns, ResourceId: res})
	if err != nil || len(acts.ScalingActivities) == 0 {
		t.Fatalf("no scaling activity: %+v %v", acts, err)
	}
	last := acts.ScalingActivities[len(acts.ScalingActivities)-1]
	burn := started[0].Add(idle)
	return last.StartTime.Sub(burn), started[1].Sub(burn), aws.ToString(last.Description) + " | " + aws.ToString(last.Cause)
}

func freeAnyAddrTB(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t testing.TB, what string, within time.Duration, f func() bool) {
	t.Helper()
	within = berthtest.Scale(within)
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestAutoScalingTargetTrackingDocker: a CPU-burning service on real
// Docker scales out through target tracking, within the 45 s goal (twice
// that on a machine too loaded to measure; the benchmark records the
// figure).
func TestAutoScalingTargetTrackingDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	t.Parallel()
	trigger, took, act := autoscalingReaction(t, "5s", 0)
	t.Logf("CPU breach -> scaling activity in %v, second task RUNNING in %v (%s)", trigger, took, act)
	if took > 2*reactionLimit {
		t.Fatalf("scale-out took %v, goal %v", took, reactionLimit)
	}
}

// BenchmarkAutoscalingReaction measures CPU breach -> new task RUNNING
// with Berth's short metrics period (5 s: 10 s alarm periods) and, as the
// baseline, with ECS's 60 s period (AWS's alarm shape: 3 datapoints of a
// minute), each after four alarm periods of idle datapoints
// (go test ./test/scenario -run '^$' -bench AutoscalingReaction -benchtime 1x).
func BenchmarkAutoscalingReaction(b *testing.B) {
	for _, period := range []string{"5s", "60s"} {
		b.Run("metrics-period="+period, func(b *testing.B) {
			idle := 40 * time.Second
			if period == "60s" {
				idle = 4 * time.Minute
			}
			for range b.N {
				trigger, took, _ := autoscalingReaction(b, period, idle)
				b.ReportMetric(trigger.Seconds(), "s/trigger")
				b.ReportMetric(took.Seconds(), "s/reaction")
				b.Logf("metrics period %s: scaling activity %v and new task RUNNING %v after the breach began", period, trigger, took)
				if period == "5s" && took > reactionLimit {
					b.Errorf("reaction %v over the %v goal", took, reactionLimit)
				}
			}
		})
	}
}
