package scenario

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/agentgw"
	"github.com/berthdev/berth/internal/berthtest"
	"github.com/berthdev/berth/internal/hollow"
)

// TestServiceBehindLoadBalancerOnHollowNodes: a service with loadBalancers
// on hollow nodes (scheduler logic; the hollow tasks report made-up host
// ports, and the target group's health checks go to a test server through
// its health check port): validation with ECS's messages, registration and
// ECS's events, health gating, an unhealthy target's task replaced,
// deregistration and the drain gate (DEACTIVATING for the deregistration
// delay) on scale-in.
func TestServiceBehindLoadBalancerOnHollowNodes(t *testing.T) {
	t.Parallel()
	cx := ctx(t)
	s := berthtest.Start(t, nil)
	tok, err := agentgw.CreateJoinToken(cx, s.Endpoint, s.Region, s.Creds.AccessKeyID, s.Creds.SecretAccessKey, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Hostname 127.0.0.1: the instance targets resolve to loopback, where
	// the health check server listens.
	nodes, err := hollow.Start(cx, hollow.Config{Endpoint: s.Endpoint, Region: s.Region, JoinToken: tok.Token, Count: 2, Hostname: "127.0.0.1",
		Delays: hollow.Delays{Pull: 50 * time.Millisecond, Start: 50 * time.Millisecond, Stop: 50 * time.Millisecond}, StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodes.Close)
	e := &hollowEnv{s: s, ecs: ecs.NewFromConfig(s.AWSConfig()), nodes: nodes, token: tok.Token}
	lbc := elb.NewFromConfig(e.s.AWSConfig())
	var lbOut *elb.CreateLoadBalancerOutput

	var failing atomic.Bool
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(health.Close)
	hport := health.Listener.Addr().String()
	hport = hport[strings.LastIndexByte(hport, ':')+1:]

	lbOut, err = lbc.CreateLoadBalancer(cx, &elb.CreateLoadBalancerInput{Name: aws.String("svc"), Subnets: []string{"subnet-a"}})
	if err != nil {
		t.Fatal(err)
	}
	mkTG := func(name string, tt types.TargetTypeEnum) string {
		out, err := lbc.CreateTargetGroup(cx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: types.ProtocolEnumHttp, Port: aws.Int32(80),
			TargetType: tt, VpcId: aws.String("vpc-1"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
			HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2), HealthCheckPort: aws.String(hport)})
		if err != nil {
			t.Fatal(err)
		}
		return *out.TargetGroups[0].TargetGroupArn
	}
	tg := mkTG("svc", types.TargetTypeEnumInstance)
	lonely := mkTG("lonely", types.TargetTypeEnumInstance)
	ipTG := mkTG("svc-ip", types.TargetTypeEnumIp)
	for _, g := range []string{tg, ipTG} {
		if _, err := lbc.CreateListener(cx, &elb.CreateListenerInput{LoadBalancerArn: lbOut.LoadBalancers[0].LoadBalancerArn, Protocol: types.ProtocolEnumHttp,
			Port: aws.Int32(freePort(t)), DefaultActions: []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(g)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lbc.ModifyTargetGroupAttributes(cx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tg),
		Attributes: []types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("2")}}}); err != nil {
		t.Fatal(err)
	}
	tdOut, err := e.ecs.RegisterTaskDefinition(cx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("lbweb"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("web:1"), Memory: aws.Int32(64),
			Essential: aws.Bool(true), PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(80)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	td := *tdOut.TaskDefinition.TaskDefinitionArn

	// Bad input, with ECS's messages.
	for _, c := range []struct {
		lb   ecstypes.LoadBalancer
		want string
	}{
		{ecstypes.LoadBalancer{TargetGroupArn: aws.String(lonely), ContainerName: aws.String("web"), ContainerPort: aws.Int32(80)},
			"The target group with targetGroupArn " + lonely + " does not have an associated load balancer."},
		{ecstypes.LoadBalancer{TargetGroupArn: aws.String(tg), ContainerName: aws.String("api"), ContainerPort: aws.Int32(80)},
			"The container api does not exist in the task definition."},
		{ecstypes.LoadBalancer{TargetGroupArn: aws.String(tg), ContainerName: aws.String("web"), ContainerPort: aws.Int32(8080)},
			"The container web did not have a container port 8080 defined."},
		{ecstypes.LoadBalancer{TargetGroupArn: aws.String(ipTG), ContainerName: aws.String("web"), ContainerPort: aws.Int32(80)},
			"has target type ip, which is incompatible with the bridge network mode specified in the task definition."},
		{ecstypes.LoadBalancer{TargetGroupArn: aws.String(strings.Replace(tg, "/svc/", "/nope/", 1)), ContainerName: aws.String("web"), ContainerPort: aws.Int32(80)},
			"Unable to assume role and validate the specified targetGroupArn."},
	} {
		_, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("bad"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1),
			LoadBalancers: []ecstypes.LoadBalancer{c.lb}})
		var ae smithy.APIError
		if err == nil || !strings.Contains(err.Error(), "InvalidParameterException") || !errorsAs(err, &ae) || !strings.Contains(ae.ErrorMessage(), c.want) {
			t.Fatalf("CreateService with %+v: %v, want %q", c.lb, err, c.want)
		}
	}

	lbs := []ecstypes.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("web"), ContainerPort: aws.Int32(80)}}
	if _, err := e.ecs.CreateService(cx, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2),
		LoadBalancers: lbs, HealthCheckGracePeriodSeconds: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	targets := func() map[string]string {
		out, err := lbc.DescribeTargetHealth(cx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg)})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, d := range out.TargetHealthDescriptions {
			m[*d.Target.Id+":"+strconv.Itoa(int(*d.Target.Port))] = string(d.TargetHealth.State)
		}
		return m
	}
	countState := func(state string) int {
		n := 0
		for _, s := range targets() {
			if s == state {
				n++
			}
		}
		return n
	}
	eventuallyTrue(t, "two healthy targets", 20*time.Second, func() bool { return countState("healthy") == 2 })
	svc := e.waitStable(t, "web", 20*time.Second)
	if len(svc.LoadBalancers) != 1 || *svc.LoadBalancers[0].TargetGroupArn != tg || *svc.HealthCheckGracePeriodSeconds != 1 {
		t.Fatalf("service load balancers: %+v", svc.LoadBalancers)
	}
	eventuallyTrue(t, "registration event", 5*time.Second, func() bool {
		return hasEvent(e.describe(t, "web"), "targets in (target-group "+tg+")") && hasEvent(e.describe(t, "web"), "(service web) registered ")
	})

	// Scale in: the stopped task is deregistered, held DEACTIVATING for
	// the deregistration delay (2 s), then stopped.
	if _, err := e.ecs.UpdateService(cx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var held string
	eventuallyTrue(t, "a task DEACTIVATING", 10*time.Second, func() bool {
		for _, task := range e.serviceTaskList(t, "web", ecstypes.DesiredStatusStopped) {
			if aws.ToString(task.LastStatus) == "DEACTIVATING" {
				held = *task.TaskArn
				return true
			}
		}
		return false
	})
	t0 := time.Now()
	eventuallyTrue(t, "deregistration event", 5*time.Second, func() bool {
		return hasEvent(e.describe(t, "web"), "(service web) deregistered 1 targets in (target-group "+tg+")")
	})
	eventuallyTrue(t, "the held task stopped", 15*time.Second, func() bool {
		out, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: []string{held}})
		return err == nil && len(out.Tasks) == 1 && aws.ToString(out.Tasks[0].LastStatus) == "STOPPED"
	})
	if d := time.Since(t0); d < time.Second {
		t.Fatalf("the held task stopped %s after deregistration; the delay is 2 s", d)
	}
	if n := countState("healthy"); n != 1 {
		t.Fatalf("after scale-in: %v", targets())
	}

	// The target turns unhealthy: its task is stopped with ECS's reason
	// and replaced.
	failing.Store(true)
	eventuallyTrue(t, "unhealthy event", 25*time.Second, func() bool {
		return hasEvent(e.describe(t, "web"), "is unhealthy in (target-group "+tg+") due to (reason Health checks failed).")
	})
	found := false
	for _, task := range e.serviceTaskList(t, "web", ecstypes.DesiredStatusStopped) {
		if aws.ToString(task.StoppedReason) == "Task failed ELB health checks in (target-group "+tg+")" {
			found = true
		}
	}
	if !found {
		t.Fatal("no task stopped with ECS's ELB health check reason")
	}
	failing.Store(false)
	eventuallyTrue(t, "a healthy replacement", 20*time.Second, func() bool { return countState("healthy") == 1 })
}

func errorsAs(err error, ae *smithy.APIError) bool {
	for e := err; e != nil; {
		if x, ok := e.(smithy.APIError); ok {
			*ae = x
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// serviceTaskList describes a service's tasks with a desired status.
func (e *hollowEnv) serviceTaskList(t *testing.T, name string, desired ecstypes.DesiredStatus) []ecstypes.Task {
	t.Helper()
	cx := context.Background()
	l, err := e.ecs.ListTasks(cx, &ecs.ListTasksInput{ServiceName: aws.String(name), DesiredStatus: desired})
	if err != nil || len(l.TaskArns) == 0 {
		return nil
	}
	out, err := e.ecs.DescribeTasks(cx, &ecs.DescribeTasksInput{Tasks: l.TaskArns})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}
