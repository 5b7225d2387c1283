package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berthdev/berth/internal/bench"
	"github.com/berthdev/berth/internal/berthtest"
)

// TestServiceBehindALBThroughBinaryOnDocker: `berth up` (server and one
// agent, real containers) runs a service of three tasks of the test image
// serving HTTP behind an ALB listener, with the seeds' tuning (health
// checks every 5 s, threshold 2, deregistration delay 5 s). A Go client
// sends requests through the listener all along a rolling deployment to a
// new task definition revision and the kill of one container; the test
// counts failed requests (goal: zero).
func TestServiceBehindALBThroughBinaryOnDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs containers")
	}
	berthtest.NeedDocker(t)
	t.Parallel()
	p := berthtest.StartProcess(t, "up", t.TempDir(), []string{"ECS_IMAGE_PULL_BEHAVIOR=prefer-cached"},
		"--agent=true", "--metadata-addr", freeAnyAddrTB(t), "--throttle=false", "--log-level", "warn")
	cx := context.Background()
	c := ecs.NewFromConfig(p.AWSConfig())
	lbc := elb.NewFromConfig(p.AWSConfig())
	e := newDockerSvcEnv(t, c)
	var instanceARN string
	eventuallyTrue(t, "berth up's agent joined", 60*time.Second, func() bool {
		out, err := c.ListContainerInstances(cx, &ecs.ListContainerInstancesInput{})
		if err != nil || len(out.ContainerInstanceArns) == 0 {
			return false
		}
		instanceARN = out.ContainerInstanceArns[0]
		return true
	})
	t.Cleanup(func() { berthtest.RemoveAgentContainers(t, instanceARN) })
	t.Cleanup(func() { e.removeFamilyContainers("albweb") })

	lbOut, err := lbc.CreateLoadBalancer(cx, &elb.CreateLoadBalancerInput{Name: aws.String("albweb"), Subnets: []string{"subnet-a"}})
	if err != nil {
		t.Fatal(err)
	}
	tgOut, err := lbc.CreateTargetGroup(cx, &elb.CreateTargetGroupInput{Name: aws.String("albweb"), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(8080),
		TargetType: types.TargetTypeEnumInstance, VpcId: aws.String("vpc-1"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	tg := *tgOut.TargetGroups[0].TargetGroupArn
	if _, err := lbc.ModifyTargetGroupAttributes(cx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}}}); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	if _, err := lbc.CreateListener(cx, &elb.CreateListenerInput{LoadBalancerArn: lbOut.LoadBalancers[0].LoadBalancerArn, Protocol: types.ProtocolEnumHttp,
		Port: aws.Int32(port), DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(tg)}}}); err != nil {
		t.Fatal(err)
	}
	web := func(c *ecstypes.ContainerDefinition) {
		c.PortMappings = []ecstypes.PortMapping{{ContainerPort: aws.Int32(8080)}}
	}
	td1 := e.register("albweb", []string{"serve:8080", "term:0s:0", "sleep:1h"}, web)
	td2 := e.register("albweb", []string{"print:v2", "serve:8080", "term:0s:0", "sleep:1h"}, web)
	if _, err := c.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("albweb"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(3),
		LoadBalancers:                 []ecstypes.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("main"), ContainerPort: aws.Int32(8080)}},
		DeploymentConfiguration:       &ecstypes.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200)},
		HealthCheckGracePeriodSeconds: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	healthy := func() int {
		out, err := lbc.DescribeTargetHealth(cx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range out.TargetHealthDescriptions {
			if d.TargetHealth.State == types.TargetHealthStateEnumHealthy {
				n++
			}
		}
		return n
	}
	t0 := time.Now()
	eventuallyTrue(t, "three healthy targets", 60*time.Second, func() bool { return healthy() == 3 })
	e.waitStable("albweb", 30*time.Second)
	t.Logf("3 tasks healthy behind the listener in %s", time.Since(t0).Round(10*time.Millisecond))

	// The client load: two workers GET through the listener back to back.
	load := bench.StartLoad(cx, fmt.Sprintf("http://127.0.0.1:%d/", port), 2, 5*time.Millisecond, 10*time.Second)
	defer load.Stop()

	// Rolling deployment to revision 2.
	t1 := time.Now()
	if _, err := c.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("albweb"), TaskDefinition: aws.String(td2)}); err != nil {
		t.Fatal(err)
	}
	var last ecstypes.Service
	defer func() {
		if t.Failed() {
			b, _ := json.MarshalIndent(last, "", " ")
			t.Logf("service: %s", b)
			ts, _ := e.tasks("albweb")
			for _, tk := range ts {
				t.Logf("task %s td %s last %s desired %s reason %q", aws.ToString(tk.TaskArn), aws.ToString(tk.TaskDefinitionArn), aws.ToString(tk.LastStatus), aws.ToString(tk.DesiredStatus), aws.ToString(tk.StoppedReason))
			}
			out, _ := lbc.DescribeTargetHealth(cx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
			for _, d := range out.TargetHealthDescriptions {
				t.Logf("target %s:%d %s %s", *d.Target.Id, *d.Target.Port, d.TargetHealth.State, d.TargetHealth.Reason)
			}
		}
	}()
	eventuallyTrue(t, "the deployment completed", 90*time.Second, func() bool {
		svc := e.mustDescribe("albweb")
		last = svc
		return len(svc.Deployments) == 1 && aws.ToString(svc.Deployments[0].TaskDefinition) == td2 &&
			svc.Deployments[0].RolloutState == ecstypes.DeploymentRolloutStateCompleted && svc.RunningCount == 3 && healthy() == 3
	})
	rollSent, rollFailed := load.Counts()
	t.Logf("rolling deployment of 3 tasks in %s: %d requests, %d failed", time.Since(t1).Round(10*time.Millisecond), rollSent, rollFailed)

	// Kill one container (SIGKILL): the ALB ejects it, the service
	// replaces the task.
	cs, err := e.containers("albweb")
	if err != nil || len(cs) == 0 {
		t.Fatalf("containers: %v %v", cs, err)
	}
	t2 := time.Now()
	if err := e.docker.KillContainer(cx, cs[0].ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "the killed task replaced", 60*time.Second, func() bool {
		svc := e.mustDescribe("albweb")
		ts, _ := e.tasks("albweb")
		stopped := 0
		for _, tk := range ts {
			if aws.ToString(tk.LastStatus) == "STOPPED" && aws.ToString(tk.TaskDefinitionArn) == td2 {
				stopped++
			}
		}
		return stopped >= 1 && svc.RunningCount == 3 && healthy() == 3
	})
	load.Stop()
	sent, failed := load.Counts()
	killFailed := failed - rollFailed
	t.Logf("killed container replaced in %s: %d requests, %d failed; total %d requests, %d failed",
		time.Since(t2).Round(10*time.Millisecond), sent-rollSent, killFailed, sent, failed)
	if e := load.FirstError(); e != "" {
		t.Logf("first error: %s", e)
	}
	if os.Getenv("BERTH_LBSERVICE_REPORT") != "" {
		fmt.Printf("lbservice: rolling %d/%d failed, kill %d/%d failed\n", rollFailed, rollSent, killFailed, sent-rollSent)
	}
	if sent < 100 {
		t.Fatalf("only %d requests sent", sent)
	}
	if failed != 0 {
		t.Fatalf("%d of %d requests failed (rolling deployment %d, killed container %d)", failed, sent, rollFailed, killFailed)
	}
}
