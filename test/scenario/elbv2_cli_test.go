package scenario

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berthdev/berth/internal/berthtest"
)

// TestELBv2ThroughBinary drives the ALB flow through both AWS CLIs against
// the built binary (berth up): a load balancer, an ip target group with a
// loopback HTTP target, a listener and a rule, the three waiters, a
// response through the listener, AWS's error for a priority clash; then
// kills the server with SIGKILL and checks the listeners come back.
func TestELBv2ThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary")
	}
	t.Parallel()
	clis := berthtest.CLIs(t)
	dir := t.TempDir()
	p := berthtest.StartProcess(t, "up", dir, nil)
	type made struct {
		port    int32
		dns, lb string
	}
	results := make([]made, len(clis))
	t.Run("clis", func(t *testing.T) {
		berthtest.EachCLI(t, clis, func(t *testing.T, i int, cli berthtest.CLI) {
			run := func(args ...string) map[string]any {
				t.Helper()
				return cli.RunJSON(t, p.Server, append([]string{"elbv2"}, args...)...)
			}
			sdk := elb.NewFromConfig(p.AWSConfig())
			name := "alb-" + cli.Name
			lb := run("create-load-balancer", "--name", name, "--subnets", "subnet-1", "subnet-2")["LoadBalancers"].([]any)[0].(map[string]any)
			lbARN, dns := lb["LoadBalancerArn"].(string), lb["DNSName"].(string)
			run("wait", "load-balancer-available", "--load-balancer-arns", lbARN)
			host, bport := loopbackBackend(t, cli.Name)
			tg := run("create-target-group", "--name", "tg-"+cli.Name, "--protocol", "HTTP", "--port", fmt.Sprint(bport), "--target-type", "ip",
				"--vpc-id", "vpc-1", "--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2",
			)["TargetGroups"].([]any)[0].(map[string]any)
			tgARN := tg["TargetGroupArn"].(string)
			run("modify-target-group-attributes", "--target-group-arn", tgARN, "--attributes", "Key=deregistration_delay.timeout_seconds,Value=0")
			target := fmt.Sprintf("Id=%s,Port=%d", host, bport)
			run("register-targets", "--target-group-arn", tgARN, "--targets", target)
			lport := freePort(t)
			lis := run("create-listener", "--load-balancer-arn", lbARN, "--protocol", "HTTP", "--port", fmt.Sprint(lport),
				"--default-actions", "Type=forward,TargetGroupArn="+tgARN)["Listeners"].([]any)[0].(map[string]any)
			lisARN := lis["ListenerArn"].(string)
			fixed := `[{"Type":"fixed-response","FixedResponseConfig":{"StatusCode":"200","ContentType":"text/plain","MessageBody":"fixed"}}]`
			run("create-rule", "--listener-arn", lisARN, "--priority", "1", "--conditions", "Field=path-pattern,Values=/fixed", "--actions", fixed)
			_, errOut, code := cli.Run(t, p.Server, "elbv2", "create-rule", "--listener-arn", lisARN, "--priority", "1",
				"--conditions", "Field=path-pattern,Values=/other", "--actions", fixed)
			if code == 0 || !strings.Contains(errOut, "PriorityInUse") || !strings.Contains(errOut, "Priority '1' is currently in use") {
				t.Fatalf("priority clash: exit %d: %s", code, errOut)
			}
			// The CLI's waiters poll every 15 s: wait for the state with
			// the SDK first, so each waiter's first poll succeeds.
			waitHealth(t, sdk, tgARN, "healthy")
			run("wait", "target-in-service", "--target-group-arn", tgARN)
			if body := getThrough(t, lport, dns, "/hello", 200); body != cli.Name+" /hello" {
				t.Fatalf("through the listener: %q", body)
			}
			run("deregister-targets", "--target-group-arn", tgARN, "--targets", target)
			waitHealth(t, sdk, tgARN, "")
			run("wait", "target-deregistered", "--target-group-arn", tgARN, "--targets", target)
			results[i] = made{port: lport, dns: dns, lb: lbARN}
		})
	})
	if t.Failed() {
		return
	}
	// A crash and a restart: the listeners come back.
	p.Kill9()
	p2 := berthtest.StartProcess(t, "up", dir, nil)
	sdk := elb.NewFromConfig(p2.AWSConfig())
	for _, r := range results {
		if body := getThrough(t, r.port, r.dns, "/fixed", 200); body != "fixed" {
			t.Fatalf("after restart: %q", body)
		}
		out, err := sdk.DescribeLoadBalancers(context.Background(), &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{r.lb}})
		if err != nil || out.LoadBalancers[0].State.Code != types.LoadBalancerStateEnumActive {
			t.Fatalf("after restart: %+v %v", out, err)
		}
	}
}

// waitHealth polls until every target of the group is in state ("" : the
// group has no target left, draining ones included).
func waitHealth(t *testing.T, c *elb.Client, tgARN, state string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.DescribeTargetHealth(context.Background(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
		if err != nil {
			t.Fatal(err)
		}
		ok := len(out.TargetHealthDescriptions) > 0 || state == ""
		for _, d := range out.TargetHealthDescriptions {
			ok = ok && string(d.TargetHealth.State) == state
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("target health never %q: %+v", state, out.TargetHealthDescriptions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
